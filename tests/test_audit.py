"""The audit trail: who may read it, its filters, the CSV export, the read-only Django admin."""

import csv
import datetime
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from supervision.models import MonitoringSession, Outcome

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    admin = User.objects.create_user("boss", password=None, role=Role.ADMIN, first_name="Boss")
    c1 = User.objects.create_user("petrova", password=None, role=Role.CURATOR, first_name="Olga")
    c2 = User.objects.create_user("smirnov", password=None, role=Role.CURATOR, first_name="Ivan")
    t1 = User.objects.create_user("anna", password=None, role=Role.TRAINEE, curator=c1, first_name="Anna")
    t2 = User.objects.create_user("vera", password=None, role=Role.TRAINEE, curator=c2, first_name="Vera")
    return {u.username: u for u in [admin, c1, c2, t1, t2]}


def session(user, target, mode="listen", outcome=Outcome.ENDED, days_ago=0, **extra):
    row = MonitoringSession.objects.create(
        user=user, user_label=str(user), target_user=target, target_label=str(target), mode=mode, modes=mode,
        outcome=outcome, **extra,
    )
    if days_ago:
        MonitoringSession.objects.filter(pk=row.pk).update(requested_at=timezone.now() - datetime.timedelta(days=days_ago))
    return row


@pytest.fixture
def trail(people):
    return [
        session(people["petrova"], people["anna"], "listen", Outcome.ENDED),
        session(people["petrova"], people["anna"], "barge", Outcome.FAILED, outcome_detail="busy"),
        session(people["smirnov"], people["vera"], "whisper", Outcome.SPYING),
        session(people["smirnov"], people["anna"], "listen", Outcome.DENIED, reason="not_your_team", days_ago=3),
        session(people["anna"], people["petrova"], "listen", Outcome.ENDED),
    ]


def shown(client, **params):
    response = client.get(reverse("audit"), params)
    assert response.status_code == 200
    return sorted((row.user_label, row.target_label, row.mode) for row in response.context["page"])


def test_an_admin_sees_every_session(client, people, trail):
    client.force_login(people["boss"])
    assert len(shown(client)) == 5


def test_a_curator_sees_his_own_sessions_only(client, people, trail):
    client.force_login(people["petrova"])
    assert shown(client) == [("Olga", "Anna", "barge"), ("Olga", "Anna", "listen")]


def test_a_trainee_has_no_audit_page(client, people, trail):
    client.force_login(people["anna"])
    assert client.get(reverse("audit")).status_code == 403
    assert client.get(reverse("audit_csv")).status_code == 403


def test_anonymous_visitors_are_sent_to_login(client, trail):
    response = client.get(reverse("audit"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_nav_links_the_audit_for_those_who_may_see_it(client, people):
    client.force_login(people["petrova"])
    assert reverse("audit").encode() in client.get(reverse("audit")).content
    client.force_login(people["anna"])
    assert b'href="/audit/"' not in client.get(reverse("dashboard")).content


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"person": "vera"}, [("Ivan", "Vera", "whisper")]),
        ({"person": "Olga"}, [("Anna", "Olga", "listen"), ("Olga", "Anna", "barge"), ("Olga", "Anna", "listen")]),
        ({"mode": "barge"}, [("Olga", "Anna", "barge")]),
        ({"outcome": "denied"}, [("Ivan", "Anna", "listen")]),
        ({"outcome": "spying", "mode": "whisper"}, [("Ivan", "Vera", "whisper")]),
    ],
)
def test_filters(client, people, trail, params, expected):
    client.force_login(people["boss"])
    assert shown(client, **params) == expected


def test_date_filters(client, people, trail):
    client.force_login(people["boss"])
    today = timezone.localdate()
    assert shown(client, date_to=(today - datetime.timedelta(days=2)).isoformat()) == [("Ivan", "Anna", "listen")]
    assert len(shown(client, date_from=today.isoformat())) == 4
    assert len(shown(client, date_from=today.isoformat(), date_to=today.isoformat())) == 4


@pytest.mark.parametrize(
    "params",
    [{"date_from": "yesterday"}, {"mode": "hijack"}, {"outcome": "<script>"}, {"date_from": "2030-01-02", "date_to": "2030-01-01"}],
)
def test_bad_filters_show_an_error_and_no_rows(client, people, trail, params):
    client.force_login(people["boss"])
    response = client.get(reverse("audit"), params)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert list(response.context["page"]) == []
    assert b"<script>" not in response.content


def read_csv(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_csv_export_uses_the_same_filters_and_rights(client, people, trail):
    client.force_login(people["boss"])
    header, *rows = read_csv(client.get(reverse("audit_csv"), {"mode": "barge"}))
    assert header[:4] == ["requested", "who", "from phone", "on whom or what"]
    assert [(r[1], r[3], r[7], r[10], r[11]) for r in rows] == [("Olga", "Anna", "barge", "failed", "busy")]

    client.force_login(people["smirnov"])
    _header, *rows = read_csv(client.get(reverse("audit_csv")))
    assert sorted(r[3] for r in rows) == ["Anna", "Vera"]


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(client, people):
    evil = User.objects.create_user("evil", password=None, role=Role.TRAINEE, curator=people["petrova"])
    MonitoringSession.objects.create(user=people["petrova"], user_label="Olga", target_user=evil,
                                     target_label='=HYPERLINK("http://x")', mode="listen", outcome=Outcome.DENIED)
    client.force_login(people["boss"])
    _header, row = read_csv(client.get(reverse("audit_csv")))
    assert row[3] == "'=HYPERLINK(\"http://x\")"


def test_the_django_admin_is_read_only(client, people, trail):
    root = User.objects.create_superuser("root", password="x")
    client.force_login(root)
    changelist = reverse("admin:supervision_monitoringsession_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(reverse("admin:supervision_monitoringsession_add")).status_code == 403
    row = trail[0]
    change = reverse("admin:supervision_monitoringsession_change", args=[row.pk])
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change, {"outcome": "denied"}).status_code == 403
    assert client.post(reverse("admin:supervision_monitoringsession_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert row.outcome == Outcome.ENDED


def test_interrupt_open_closes_only_sessions_in_flight(people):
    for outcome in Outcome.values:
        session(people["petrova"], people["anna"], outcome=outcome)
    assert MonitoringSession.objects.interrupt_open("bridge restarted") == 4
    remaining = sorted(MonitoringSession.objects.values_list("outcome", flat=True))
    assert remaining == sorted(["denied", "failed", "ended", "interrupted", "interrupted", "interrupted", "interrupted", "interrupted"])
    assert not MonitoringSession.objects.live().exists()
    assert MonitoringSession.objects.filter(outcome="interrupted", outcome_detail="bridge restarted",
                                            ended_at__isnull=False).count() == 4
