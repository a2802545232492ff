"""Why a press ended, stored as a reason code and its arguments (supervision.reasons) and put in
words in the language of whoever reads the audit: the audit page, the admin's audit list and the
CSV say a row pressed on a Russian page in English on an English page, and the other way round.
Rows without a code (older ones, a PBX's own words) show their text as it came."""

import csv
import io

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import Role, User
from supervision.models import MonitoringSession, Outcome
from supervision.reasons import TEXTS, Why, render, row_fields
from tests.live_stack import Inbox, bridge, press_on_page, roster, rows, until  # noqa: F401

pytestmark = pytest.mark.django_db

# Arguments for the codes that take some (so every text can be rendered in full).
SAMPLE_ARGS = {"name": "Anna", "title": "Lesson 1", "mode": "whisper", "action": "pickup", "state": "down",
               "detail": "-", "why": Why("line_busy"), "number": "+79161234567", "root": "/var/lib/x",
               "count": 3, "code": "42"}


def words(code, language):
    with translation.override(language):
        return str(Why(code, **SAMPLE_ARGS))


@pytest.mark.parametrize("code", sorted(TEXTS))
def test_every_reason_has_words_in_english_and_russian(code):
    english, russian = words(code, "en"), words(code, "ru")
    assert english and russian and english != russian
    assert "%(" not in english and "%(" not in russian
    assert any("а" <= letter <= "я" for letter in russian.lower()), russian


def test_arguments_of_our_own_are_worded_and_the_pbxs_words_are_kept_as_they_came():
    why = Why("stop_refused", why="Permission denied", name="Anna")
    nested = Why("phone_not_connected", why=Why("line_busy"))
    with translation.override("ru"):
        assert "Permission denied" in str(why)
        assert str(nested) == "Ваш телефон не подключился: занято."
        assert str(Why("not_for_role", mode="barge")) == "Ваша роль позволяет только прослушивание, не вмешательство."
    assert row_fields(nested)["outcome_args"] == {"why": {"code": "line_busy", "args": {}}}
    assert row_fields("Permission denied") == {"outcome_code": "", "outcome_args": {},
                                               "outcome_detail": "Permission denied"}
    assert render("no_such_code", {}) is None
    assert render("call_ended", {"wrong": "x"}) is None  # args that do not fit: the stored text instead


@pytest.fixture
def people():
    admin = User.objects.create_user("boss", password=None, role=Role.ADMIN, first_name="Boss", is_staff=True,
                                     is_superuser=True)
    curator = User.objects.create_user("petrova", password=None, role=Role.CURATOR, first_name="Olga")
    trainee = User.objects.create_user("anna", password=None, role=Role.TRAINEE, curator=curator, first_name="Anna")
    return admin, curator, trainee


def written(language, curator, trainee, why):
    """A row ended the way the bridge ends one, while `language` (the presser's page's) is active."""
    row = MonitoringSession.objects.create(user=curator, user_label="Olga", target_user=trainee, target_label="Anna",
                                           mode="listen", modes="listen")
    with translation.override(language):
        MonitoringSession.objects.filter(pk=row.pk).update(outcome=Outcome.FAILED, **row_fields(why))
    return row


def page_text(client, url, language):
    client.cookies["django_language"] = language
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


WHY = Why("phone_not_connected", why=Why("line_busy"))
ENGLISH, RUSSIAN = "Your phone did not connect: busy.", "Ваш телефон не подключился: занято."


@pytest.mark.parametrize("written_in, read_in, expected, not_expected", [
    ("ru", "en", ENGLISH, RUSSIAN), ("en", "ru", RUSSIAN, ENGLISH)])
def test_the_audit_page_and_the_admin_list_say_why_in_the_readers_language(
        client, people, written_in, read_in, expected, not_expected):
    admin, curator, trainee = people
    written(written_in, curator, trainee, WHY)
    client.force_login(admin)
    for url in (reverse("audit"), reverse("admin:supervision_monitoringsession_changelist")):
        text = page_text(client, url, read_in)
        assert expected in text and not_expected not in text, url


@pytest.mark.parametrize("read_in, expected, heading", [("en", ENGLISH, "why"), ("ru", RUSSIAN, "причина")])
def test_the_csv_says_why_in_the_language_of_the_page_it_is_downloaded_from(client, people, read_in, expected, heading):
    admin, curator, trainee = people
    written("ru" if read_in == "en" else "en", curator, trainee, WHY)
    client.force_login(admin)
    header, row = list(csv.reader(io.StringIO(page_text(client, reverse("audit_csv"), read_in))))
    assert row[header.index(heading)] == expected
    assert row[header.index(heading) + 1] == "phone_not_connected"


def test_a_row_without_a_code_shows_its_text_as_it_came(client, people):
    admin, curator, trainee = people
    written("ru", curator, trainee, "Permission denied (old words)")
    client.force_login(admin)
    assert "Permission denied (old words)" in page_text(client, reverse("audit"), "en")


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_refusal_pressed_on_a_russian_page_reads_in_english_for_an_english_reader(bridge, roster):
    """Through the real press path: the policy's refusal is stored as a code with the name."""
    from asgiref.sync import sync_to_async

    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await press_on_page(bridge, people["petrova"], {"type": "spy", "target": phones["vera"].pk, "mode": "listen"},
                        "ru")
    refused = await inbox.next(state="denied")
    [row] = await rows()
    assert refused["text"] == row["outcome_detail"] == "Vera — не из вашей команды."
    session = await sync_to_async(MonitoringSession.objects.get)(pk=row["id"])
    assert (session.outcome_code, session.outcome_args) == ("not_your_team", {"name": "Vera"})
    with translation.override("en"):
        assert session.why() == "Vera is not in your team."


def test_every_reason_the_code_writes_has_words_and_nothing_writes_bare_text():
    """A static look at the writers: every Why("code") is in the catalogue (a path no test runs
    would otherwise raise only in production), and outcome_detail is written only through
    reasons.row_fields, beside its code."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "supervision"
    sources = {path.name: path.read_text() for path in root.glob("*.py")}
    used = {code for text in sources.values() for code in re.findall(r'\bWhy\(\s*"([a-z_]+)"', text)}
    assert {"not_your_team", "link_lost", "phone_not_connected", "stop_refused"} <= used  # the scan works
    assert sorted(used - set(TEXTS)) == []
    writers = sorted(name for name, text in sources.items()
                     if re.search(r"outcome_detail\b[\"']?\s*[=:]", text) and name != "models.py")
    assert writers == ["presses.py", "reasons.py"]  # row_fields, and the burst's fallback for a row without a code
