"""The audit export holds no spreadsheet formula in any piece of any cell, and no query parameter
of any page is a server error."""

import csv
import io
import re

import pytest
from django.urls import reverse

from accounts.models import Role, User
from supervision.audit_views import spreadsheet_safe
from supervision.models import MonitoringSession, Outcome, Recording

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

PAYLOADS = [
    "1;=cmd|'/C calc'!A0;",
    "5551234,=HYPERLINK(\"http://evil.example\")",
    "x\t@SUM(A1)",
    "ok; +1+cmd|' /C notepad'!A0",
    " -2+3",
    "\r=1",
    "=1",
]
DANGEROUS = re.compile(r"[=+\-@\t\r]")
NUMBER = re.compile(r"\s*[+-]?[0-9]+(\.[0-9]+)?\s*")


@pytest.fixture
def boss():
    return User.objects.create_user("boss", password=None, role=Role.ADMIN, first_name="Boss")


def pieces_of(cell):
    return re.split(r"[,;\t]", cell)


def formula_pieces(text):
    return [piece for piece in pieces_of(text) if DANGEROUS.match(piece.lstrip(" ")) and not NUMBER.fullmatch(piece)]


def test_no_piece_of_any_exported_cell_starts_a_formula(client, boss):
    for payload in PAYLOADS:
        MonitoringSession.objects.create(user=boss, user_label=payload, target_label=payload, mode="listen", modes="listen",
                                         outcome=Outcome.DENIED, outcome_detail=payload, reason="bad_number",
                                         target_device=payload, client_address="-1")
    client.force_login(boss)
    response = client.get(reverse("audit_csv"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "'=cmd|'/C calc'!A0" in text  # still readable, as text
    # However a spreadsheet splits a cell (`,` `;` or tab), no piece is a formula ...
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            assert formula_pieces(cell) == [], cell
    # ... nor when it ignores the quotes and splits the whole file.    assert formula_pieces(text.replace("\r\n", ",").replace('"', "")) == []


@pytest.mark.parametrize("text,expected", [
    ("1;=cmd|'/C calc'!A0;", "1;'=cmd|'/C calc'!A0;"),
    ("-5", "-5"),
    ("+79161234567", "+79161234567"),
    ("1,-2;3", "1,-2;3"),
    ("-x", "'-x"),
    ("a;@b", "a;'@b"),
    ("Anna Petrova", "Anna Petrova"),
])
def test_spreadsheet_safe(text, expected):
    assert spreadsheet_safe(text) == expected


# --- query parameters: a form's error, never a 500 ---------------------------------------------------

NASTY = ["9999-12-31", "0001-01-01", "99999-01-01", "2026-02-30", "-1", "1e309", "\x00", "a" * 5000, "%00", "[]",
         "NaN", "2026-01-01'--", "ok\u202e", "../../etc/passwd", "9" * 40]


def test_the_far_end_of_the_calendar_is_a_form_error(client, boss):
    client.force_login(boss)
    for params in ({"date_to": "9999-12-31"}, {"date_from": "0001-01-01"}, {"date_from": "9999-12-31", "date_to": "9999-12-31"}):
        page = client.get(reverse("audit"), params)
        assert page.status_code == 200
        assert page.context["form"].errors
        assert client.get(reverse("audit_csv"), params).status_code == 200


@pytest.mark.parametrize("value", NASTY)
def test_every_query_parameter_of_every_page_is_answered(client, boss, value):
    Recording.objects.create(owner=boss, title="S-1", path="/var/lib/asterisk/sounds/training/s1")
    client.force_login(boss)
    pages = {
        reverse("audit"): ["person", "mode", "outcome", "date_from", "date_to", "page"],
        reverse("audit_csv"): ["person", "mode", "outcome", "date_from", "date_to"],
        reverse("library"): ["page", "recording"],
        reverse("dashboard"): ["next"],
        "/admin/supervision/monitoringsession/": ["requested_at__gte", "requested_at__year", "outcome__exact", "q", "o", "p"],
        "/admin/accounts/user/": ["q", "o", "p", "curator", "role__exact"],
        "/admin/axes/accessattempt/": ["q", "attempt_time__gte"],
        "/admin/supervision/recording/": ["q", "o", "p", "sharing__exact"],
        "/i18n/setlang/": ["next", "language"],
    }
    for path, names in pages.items():
        for name in names:
            response = client.get(path, {name: value})
            assert response.status_code < 500, (path, name, value)
    client.logout()
    for name in ["next", "username"]:
        assert client.get(reverse("login"), {name: value}).status_code < 500
