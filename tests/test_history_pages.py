"""Call history pages: who sees which calls (server side, 404 otherwise), the filters, the CSV
export (safe in a spreadsheet), the call page with its monitors, in English and Russian."""

import csv
import datetime
import io

import pytest
from django.utils import timezone

from accounts.models import Extension, Role, User
from history.calls import Ended, join_modes, other_party, placed_by_phone
from history.causes import cause_text
from history.models import CallRecord
from supervision.models import Kind, MonitoringSession, Outcome

pytestmark = pytest.mark.django_db

DAY = datetime.datetime(2026, 11, 20, 10, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def team(fast_password_hashing):
    def person(username, role, curator=None, first_name=""):
        return User.objects.create_user(username=username, password="pw-" + username, role=role, curator=curator,
                                        first_name=first_name)

    admin = person("boss", Role.ADMIN, first_name="Boss")
    admin.is_staff = True
    admin.save()
    petrova = person("petrova", Role.CURATOR, first_name="Olga")
    smirnov = person("smirnov", Role.CURATOR, first_name="Ivan")
    anna = person("anna", Role.TRAINEE, petrova, first_name="Anna")
    vera = person("vera", Role.TRAINEE, smirnov, first_name="Vera")
    for user, resource in [(petrova, "104"), (anna, "105"), (vera, "106"), (smirnov, "107")]:
        Extension.objects.create(user=user, technology="SIP", resource=resource)
    return {u.username: u for u in [admin, petrova, smirnov, anna, vera]}


def call(person, minutes=0, **fields):
    start = DAY + datetime.timedelta(minutes=minutes)
    values = {
        "uniqueid": f"1795000000.{CallRecord.objects.count() + 1}", "linkedid": "1795000000.1", "channel": "SIP/105-1",
        "device": person.extensions.first().device, "extension": person.extensions.first(), "person": person,
        "person_label": str(person), "direction": "in", "other_number": "5551234", "other_name": "Customer",
        "ring_started_at": start, "answered_at": start + datetime.timedelta(seconds=5),
        "ended_at": start + datetime.timedelta(seconds=65), "ring_seconds": 5.0, "talk_seconds": 60.0,
        "hangup_cause": 16,
    }
    values.update(fields)
    return CallRecord.objects.create(**values)


def login(client, user):
    client.force_login(user)
    return client


def listed(response):
    return [row.pk for row in response.context["page"]]


def test_a_trainee_sees_his_own_calls_only(client, team):
    own = call(team["anna"])
    other = call(team["vera"])
    login(client, team["anna"])

    page = client.get("/history/")

    assert listed(page) == [own.pk]
    assert "person" not in page.context["form"].fields
    assert client.get(f"/history/call/{own.pk}/").status_code == 200
    assert client.get(f"/history/call/{other.pk}/").status_code == 404


def test_a_curator_sees_his_team_and_can_pick_one_person(client, team):
    anna, own, vera = call(team["anna"]), call(team["petrova"], 1), call(team["vera"], 2)
    login(client, team["petrova"])

    assert sorted(listed(client.get("/history/"))) == sorted([anna.pk, own.pk])
    assert listed(client.get("/history/", {"person": team["anna"].pk})) == [anna.pk]
    assert client.get(f"/history/call/{vera.pk}/").status_code == 404
    # Someone else's trainee is not a choice: the form says so and lists nothing.
    refused = client.get("/history/", {"person": team["vera"].pk})
    assert listed(refused) == [] and refused.context["form"].errors["person"]


def test_an_admin_sees_everyone(client, team):
    calls = [call(team[name], index) for index, name in enumerate(["anna", "vera", "smirnov"])]
    login(client, team["boss"])
    assert sorted(listed(client.get("/history/"))) == sorted(c.pk for c in calls)


def test_logged_out_is_sent_to_log_in(client, team):
    own = call(team["anna"])
    for path in ("/history/", "/history/export.csv", f"/history/call/{own.pk}/"):
        response = client.get(path)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_filters(client, team):
    anna = team["anna"]
    early = call(anna, 0, direction="out", talk_seconds=10)
    late = call(anna, 60 * 24 * 3, direction="in", talk_seconds=300, monitored=True, monitor_modes="listen")
    missed = call(anna, 60 * 24 * 3 + 5, answered_at=None, talk_seconds=0, hangup_cause=19)
    login(client, anna)

    assert listed(client.get("/history/", {"direction": "out"})) == [early.pk]
    assert listed(client.get("/history/", {"date_from": "2026-11-23", "date_to": "2026-11-23"})) == [missed.pk, late.pk]
    assert listed(client.get("/history/", {"date_to": "2026-11-20"})) == [early.pk]
    assert listed(client.get("/history/", {"min_talk": "60"})) == [late.pk]
    assert listed(client.get("/history/", {"max_talk": "10"})) == [missed.pk, early.pk]
    assert listed(client.get("/history/", {"monitored": "yes"})) == [late.pk]
    assert listed(client.get("/history/", {"monitored": "no"})) == [missed.pk, early.pk]
    bad = client.get("/history/", {"min_talk": "100", "max_talk": "5"})
    assert listed(bad) == [] and bad.context["form"].non_field_errors()
    assert listed(client.get("/history/", {"min_talk": "-1"})) == []


def test_evaluated_filter(client, team):
    from django.apps import apps

    if not apps.is_installed("coaching"):
        pytest.skip("the coaching app is not installed")
    from coaching.models import Band, Evaluation

    anna = team["anna"]
    graded, plain = call(anna, 0), call(anna, 1)
    Evaluation(trainee=anna, call_uniqueid=graded.uniqueid, evaluator=team["petrova"], evaluator_label="Olga",
               scorecard_name="Basics", scale_max=5, pass_threshold=70, good_threshold=85, percent=90,
               band=Band.values[0]).save()
    login(client, team["petrova"])

    assert listed(client.get("/history/", {"evaluated": "yes"})) == [graded.pk]
    assert listed(client.get("/history/", {"evaluated": "no"})) == [plain.pk]
    rows = list(csv.reader(io.StringIO(client.get("/history/export.csv").content.decode())))
    assert [row[-1] for row in rows] == ["evaluated", "False", "True"]


def test_csv_export_has_the_filters_and_is_spreadsheet_safe(client, team):
    call(team["anna"], 0, other_name="=HYPERLINK(\"http://x\")", other_number="5550001", direction="out")
    call(team["anna"], 1, other_name="Plain")
    login(client, team["petrova"])

    response = client.get("/history/export.csv", {"direction": "out"})

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header, [row] = rows[0], rows[1:]
    assert header[:4] == ["ring started", "person", "phone", "direction"]
    values = dict(zip(header, row))
    assert values["other party's name"].startswith("'=HYPERLINK")
    assert values["other party's number"] == "5550001"
    assert values["hang-up cause in words"] == "normal clearing"
    other = client.get("/history/export.csv", {"person": team["vera"].pk})
    assert len(list(csv.reader(io.StringIO(other.content.decode())))) == 1  # header only


def test_call_page_shows_details_and_monitors_with_audit_links(client, team):
    anna_call = call(team["anna"], monitored=True, monitor_modes="listen,barge")
    row = MonitoringSession.objects.create(
        kind=Kind.SPY, user=team["petrova"], user_label="Olga", target_user=team["anna"], target_label="Anna",
        target_uniqueid=anna_call.uniqueid, mode="barge", modes="listen,barge", outcome=Outcome.ENDED,
        spying_started_at=timezone.now())
    login(client, team["boss"])

    page = client.get(f"/history/call/{anna_call.pk}/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "listen → barge" in text and "normal clearing" in text and "5551234" in text
    assert f"/admin/supervision/monitoringsession/{row.pk}/change/" in text
    login(client, team["petrova"])
    text = client.get(f"/history/call/{anna_call.pk}/").content.decode()
    assert "Olga" in text and "/audit/?date_from=" in text
    # The trainee sees how he was monitored, not the audit rows.
    login(client, team["anna"])
    text = client.get(f"/history/call/{anna_call.pk}/").content.decode()
    assert "listen → barge" in text and "/audit/" not in text.split("<main")[1]


def test_the_pages_speak_russian(client, team):
    own = call(team["anna"], hangup_cause=17, direction="out")
    login(client, team["anna"])
    client.cookies["django_language"] = "ru"

    listing = client.get("/history/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    page = client.get(f"/history/call/{own.pk}/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    assert "История звонков" in listing and "исходящий" in listing and "абонент занят" in listing
    assert "Кто слушал" not in page and "Время разговора" in page


def test_pagination(client, team):
    for minute in range(55):
        call(team["anna"], minute)
    login(client, team["anna"])
    first, second = client.get("/history/"), client.get("/history/", {"page": 2})
    assert len(listed(first)) == 50 and len(listed(second)) == 5


# --- the pure parts ----------------------------------------------------------------------------


def test_cause_words_in_both_languages():
    from django.utils import translation

    assert [cause_text(code) for code in (16, 17, 19, 21, 26, None)] == [
        "normal clearing", "user busy", "no answer", "call rejected", "answered elsewhere", ""]
    assert cause_text(250) == "cause 250"
    with translation.override("ru"):
        assert cause_text(16) == "нормальное завершение"
        assert cause_text(26) == "отвечен в другом месте"


def test_modes_are_joined_in_the_order_used():
    assert join_modes([("listen,whisper", "whisper"), ("", "barge"), ("listen", "listen")]) == "listen,whisper,barge"


def channel(**fields):
    base = {"name": "SIP/105-1", "uniqueid": "1.2", "linkedid": "1.1", "device": "SIP/105", "caller_num": "",
            "caller_name": "", "connected_num": "", "connected_name": "", "dialled": None, "answered_at": None,
            "created_at": 1.0}
    base.update(fields)
    return base


def test_who_placed_the_call_and_the_other_party():
    # click-to-call on chan_sip: the connected line is the phone's own number, the number is `dialled`
    click = Ended(channel(dialled="5551234", connected_num="105", uniqueid="1.1"), 10.0, first_state="0")
    assert placed_by_phone(click) and other_party(click, True, "105") == ("5551234", "")
    # dialled by the phone itself: Ring at Newchannel, the number in the Hangup's Exten
    dialled = Ended(channel(caller_num="105", uniqueid="1.1"), 10.0, first_state="4", exten="5553322")
    assert placed_by_phone(dialled) and other_party(dialled, True, "105") == ("5553322", "")
    # rung by the PBX: the caller in the connected line
    rung = Ended(channel(connected_num="5557001", connected_name="Ivan"), 10.0, first_state="0")
    assert not placed_by_phone(rung) and other_party(rung, False, "105") == ("5557001", "Ivan")
    # seen only after a login (no Newchannel): the call's first channel placed it
    assert placed_by_phone(Ended(channel(uniqueid="1.1", linkedid="1.1"), 10.0))
    assert not placed_by_phone(Ended(channel(), 10.0))


def test_the_demo_history_is_seeded_once_the_same_every_time(demo_roster):
    from history.demo import seed_demo_history

    today = datetime.date(2026, 12, 1)  # a Tuesday: the five working days before it start on Tuesday 24th
    added = seed_demo_history(demo_roster, today=today)
    first = list(CallRecord.objects.order_by("uniqueid").values_list("uniqueid", "person__username", "other_number",
                                                                     "direction", "talk_seconds"))
    assert added == len(first) > 100
    assert seed_demo_history(demo_roster, today=today) == 0  # history there already: nothing added
    days = {call.ring_started_at.astimezone(timezone.get_current_timezone()).date() for call in CallRecord.objects.all()}
    assert min(days) == datetime.date(2026, 11, 24) and max(days) == datetime.date(2026, 11, 30)
    assert all(day.weekday() < 5 for day in days)
    assert {p for _u, p, *_rest in first} >= {user.username for user in demo_roster.trainees}
    assert {d for *_x, d, _t in first} == {"in", "out", "internal"}
    # the calls listened to have their audit rows, by the trainee's curator
    for record in CallRecord.objects.filter(monitored=True).select_related("person"):
        [row] = MonitoringSession.objects.filter(target_uniqueid=record.uniqueid)
        assert row.user == record.person.curator and row.modes == record.monitor_modes
        assert record.ring_started_at < row.requested_at < record.ended_at

    CallRecord.objects.all().delete()
    MonitoringSession.objects.all().delete()
    seed_demo_history(demo_roster, today=today)
    assert list(CallRecord.objects.order_by("uniqueid").values_list(
        "uniqueid", "person__username", "other_number", "direction", "talk_seconds")) == first


def test_seed_demo_with_history_says_what_it_did(fast_password_hashing):
    from django.core.management import call_command

    first, again = io.StringIO(), io.StringIO()
    call_command("seed_demo", "--history", stdout=first)
    call_command("seed_demo", "--history", stdout=again)

    added = CallRecord.objects.count()
    assert f"Call history: {added} past calls added" in first.getvalue() and added > 100
    assert "Call history: already there, left as it is" in again.getvalue()
    assert CallRecord.objects.count() == added
