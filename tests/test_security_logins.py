"""Login throttling: too many wrong passwords for one user name, or from one address, and logins
from there are refused (even with the right password) until the wait is over or an admin unlocks;
the roster admin's login is throttled the same way."""

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.utils import translation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

LIMIT = 10  # settings.AXES_FAILURE_LIMIT (LOGIN_FAILURE_LIMIT)


def log_in(client, username, password, *, address="192.0.2.10", path="/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(response):
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def test_the_right_password_after_too_many_wrong_ones_is_refused(client, demo_roster, settings):
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    for _attempt in range(LIMIT - 1):
        assert log_in(client, "petrova", "guess").status_code == 200
    assert log_in(client, "petrova", "guess").status_code == 429  # the failure that reaches the limit
    response = log_in(client, "petrova", demo_roster.passwords["petrova"])
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page and "ask an admin to unlock it" in page
    assert "_auth_user_id" not in client.session


def test_the_user_name_is_locked_from_every_address(client, demo_roster):
    for attempt in range(LIMIT):
        log_in(client, "petrova", "guess", address=f"198.51.100.{attempt + 1}")
    assert log_in(client, "petrova", demo_roster.passwords["petrova"], address="203.0.113.9").status_code == 429


def test_one_address_guessing_many_names_is_locked_for_every_name(client, demo_roster):
    for attempt in range(LIMIT):
        log_in(client, f"nobody{attempt}", "guess")
    assert log_in(client, "smirnov", demo_roster.passwords["smirnov"]).status_code == 429
    # Another address and another user are not concerned.
    assert logged_in(log_in(client, "smirnov", demo_roster.passwords["smirnov"], address="203.0.113.9"))


def test_a_forwarded_for_header_from_the_client_does_not_dodge_the_throttle(client, demo_roster):
    for attempt in range(LIMIT):
        client.post("/login/", {"username": f"nobody{attempt}", "password": "guess"}, REMOTE_ADDR="192.0.2.10",
                    HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}")
    response = client.post("/login/", {"username": "smirnov", "password": demo_roster.passwords["smirnov"]},
                           REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert response.status_code == 429


def test_fewer_failures_than_the_limit_still_let_the_right_password_in(client, demo_roster):
    for _attempt in range(LIMIT - 1):
        log_in(client, "petrova", "guess")
    assert logged_in(log_in(client, "petrova", demo_roster.passwords["petrova"]))


def test_the_admin_login_is_throttled_too(client, demo_roster):
    admin = demo_roster.admin.username
    for _attempt in range(LIMIT - 1):
        assert log_in(client, admin, "guess", path="/admin/login/").status_code == 200
    log_in(client, admin, "guess", path="/admin/login/")
    assert log_in(client, admin, demo_roster.passwords[admin], path="/admin/login/").status_code == 429


def test_an_admin_unlocks_a_user_in_the_roster_admin(client, admin_client, demo_roster):
    for _attempt in range(LIMIT):
        log_in(client, "petrova", "guess")
    assert log_in(client, "petrova", demo_roster.passwords["petrova"]).status_code == 429
    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "petrova" in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.filter(username="petrova").values_list("pk", flat=True)]
    response = admin_client.post("/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids,
                                                                "post": "yes"})
    assert response.status_code == 302
    assert logged_in(log_in(client, "petrova", demo_roster.passwords["petrova"], address="192.0.2.99"))


def test_a_management_command_unlocks_a_user(client, demo_roster):
    for _attempt in range(LIMIT):
        log_in(client, "petrova", "guess", address="198.51.100.1")
    call_command("axes_reset_username", "petrova")
    assert logged_in(log_in(client, "petrova", demo_roster.passwords["petrova"], address="203.0.113.5"))


def test_the_lockout_page_speaks_russian(client, demo_roster):
    for _attempt in range(LIMIT):
        log_in(client, "petrova", "guess")
    with translation.override("en"):  # the request activates Russian in this thread; not for later tests
        response = client.post("/login/", {"username": "petrova", "password": "guess"}, REMOTE_ADDR="192.0.2.10",
                               HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 429
    assert "Слишком много неудачных попыток входа" in response.content.decode()
