"""The admin and the pages around it, server side: the product's name, Russian titles and app
names, the roster import's preview and all-or-nothing apply, the error pages."""

import base64

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from accounts.models import Extension, Role, User
from supervision.audit_views import REASONS, mode_words
from supervision.models import MonitoringSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

IMPORT = "/admin/accounts/user/import/"
GOOD = (
    "username,first_name,last_name,role,curator,technology,resource\n"
    "orlova,Maria,Orlova,trainee,petrova,SIP,106\n"
    "petrova,Anna,Petrova,curator,,SIP,201\n"
).encode()


def upload(client, data, name="roster.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(IMPORT, {"file": SimpleUploadedFile(name, data, content_type="text/csv")})


def test_the_admin_names_the_product(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Call supervision · roster" in page and "Django administration" not in page
    assert "supervision/favicon.svg" in page


def test_the_russian_admin_names_apps_models_and_pages_in_russian(admin_client, demo_roster):
    admin_client.cookies["django_language"] = "ru"
    index = admin_client.get("/admin/").content.decode()
    for words in ("Контроль звонков · состав", "Состав", "Пользователи", "Внутренние номера", "Журнал действий", "Учебные записи"):
        assert words in index
    for english in ("Live supervision", "Roster", "Users"):
        assert f">{english}<" not in index
    users = admin_client.get("/admin/accounts/user/")
    assert users.context["title"] == "Выберите пользователя для изменения"
    petrova = demo_roster.users["petrova"]
    assert admin_client.get(f"/admin/accounts/user/{petrova.pk}/change/").context["title"] == "Изменение пользователя"


def test_the_preview_saves_nothing_and_shows_every_row(admin_client, demo_roster):
    response = upload(admin_client, GOOD)
    assert response.status_code == 200
    assert [(row["username"], str(row["action"])) for row in response.context["users"]] == [
        ("orlova", "created"), ("petrova", "unchanged")]
    assert [(row["device"], str(row["action"])) for row in response.context["extensions"]] == [
        ("SIP/106", "created"), ("SIP/201", "unchanged")]
    assert not User.objects.filter(username="orlova").exists()
    assert not Extension.objects.filter(resource="106").exists()


def test_confirming_imports_what_was_previewed(admin_client, demo_roster):
    preview = upload(admin_client, GOOD)
    fields = preview.context["apply_form"].initial
    response = admin_client.post(IMPORT, {**fields, "apply": "1"})
    assert response.status_code == 302 and response["Location"] == reverse("admin:accounts_user_changelist")
    orlova = User.objects.get(username="orlova")
    assert orlova.role == Role.TRAINEE and orlova.curator == demo_roster.users["petrova"]
    assert [extension.device for extension in orlova.extensions.all()] == ["SIP/106"]


def test_a_bad_file_lists_every_problem_and_changes_nothing(admin_client, demo_roster):
    bad = b"username,role,curator\nnova,trainee,ghost\nivanov,curator,petrova\n"
    response = upload(admin_client, bad, "bad.csv")
    problems = [str(problem) for problem in response.context["problems"]]
    assert problems == [
        "line 2, column curator: no user 'ghost' in this file or in the database",
        "line 3, column curator: only trainees have a curator (ivanov is curator)",
    ]
    assert "apply_form" not in response.context
    assert not User.objects.filter(username="nova").exists()
    assert User.objects.get(username="ivanov").role == Role.TRAINEE


def test_applying_checks_again_and_is_all_or_nothing(admin_client, demo_roster):
    preview = upload(admin_client, GOOD)
    fields = preview.context["apply_form"].initial
    # Meanwhile SIP/106 went to someone else: the confirmed file no longer fits, nothing is saved.
    Extension.objects.create(user=demo_roster.users["sokolov"], technology="SIP", resource="106")
    response = admin_client.post(IMPORT, {**fields, "apply": "1"})
    assert response.status_code == 200
    assert [str(problem) for problem in response.context["problems"]] == [
        "line 2, column resource: SIP/106 already belongs to sokolov in the database"]
    assert not User.objects.filter(username="orlova").exists()


def test_a_damaged_confirmation_is_refused(admin_client, demo_roster):
    response = admin_client.post(IMPORT, {"data": "not base64 !", "name": "x.csv", "apply": "1"})
    assert response.status_code == 200 and response.context["apply_form"].errors
    assert not User.objects.filter(username="orlova").exists()
    ok = base64.b64encode(GOOD).decode()
    assert admin_client.post(IMPORT, {"data": ok, "name": "x.csv", "apply": "1"}).status_code == 302


def test_only_those_who_may_add_and_change_users_import(client, demo_roster):
    petrova = demo_roster.users["petrova"]
    petrova.is_staff = True
    petrova.save()
    client.force_login(petrova)
    assert client.get(IMPORT).status_code == 403
    assert upload(client, GOOD).status_code == 403
    assert not User.objects.filter(username="orlova").exists()


def test_the_server_error_page_has_the_apps_header():
    response = server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert 'class="brand"' in page and "Call supervision" in page and "supervision/app.css" in page


def test_the_audit_says_modes_and_decisions_in_words():
    row = MonitoringSession(mode="barge", modes="listen,whisper,barge")
    assert mode_words(row) == "listen → whisper → barge"
    assert mode_words(MonitoringSession(kind="dial")) == ""
    assert str(REASONS["not_your_team"]) == "not in the team"


def test_a_refused_form_gets_the_apps_page(client, demo_roster):
    checking = type(client)(enforce_csrf_checks=True)
    response = checking.post("/login/", {"username": "petrova", "password": "demo-petrova"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "The form has expired" in page and 'class="brand"' in page and "supervision/favicon.svg" in page


def test_the_admins_audit_list_says_what_a_dial_or_playback_was_on(admin_client, demo_roster):
    ivanov = demo_roster.users["ivanov"]
    MonitoringSession.objects.create(kind="dial", user=ivanov, user_label=str(ivanov), target_label="5551234")
    MonitoringSession.objects.create(kind="playback", user=ivanov, user_label=str(ivanov), target_label="Welcome call")
    page = admin_client.get("/admin/supervision/monitoringsession/").content.decode()
    assert "number 5551234" in page and "recording “Welcome call”" in page


def test_every_decision_the_product_writes_has_words_on_the_audit_page():
    """The reason codes of audit rows, as the press code writes them (a refusal's first argument,
    a verdict's code, a finish's reason=), each have the audit page's words."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "supervision"
    source = "".join((root / name).read_text() for name in ("policy.py", "cti.py", "monitoring.py", "presses.py"))
    patterns = [r'\b_deny\(\s*"([a-z_]+)"', r'\brefuse\(\s*"([a-z_]+)"', r'\breason="([a-z_]+)"',
                r'return "([a-z_]+)", ', r'_refuse_press\([^)]*?"([a-z_]+)"', r'^RATE_LIMITED = "([a-z_]+)"$',
                r'Decision\(True, "([a-z_]+)"']
    codes = set()
    for pattern in patterns:
        codes |= set(re.findall(pattern, source, re.MULTILINE | re.DOTALL))
    assert {"ok", "not_your_team", "rate_limited", "spy_not_started", "no_phone"} <= codes  # the scan works
    assert sorted(codes - set(REASONS)) == []
