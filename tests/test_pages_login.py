"""A login costs one password hash and nothing more; the hasher itself stays strong."""

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import MD5PasswordHasher, get_hasher
from django.urls import reverse

from accounts.models import Role, User

pytestmark = pytest.mark.django_db


class CountingHasher(MD5PasswordHasher):
    """MD5 (fast) that counts every hash it computes: verifying or encoding a password."""

    computed = 0

    def encode(self, password, salt):
        CountingHasher.computed += 1
        return super().encode(password, salt)


@pytest.fixture
def counted(settings):
    settings.PASSWORD_HASHERS = ["tests.test_pages_login.CountingHasher"]
    user = User.objects.create_user("petrova", password="a long enough password", role=Role.CURATOR)
    CountingHasher.computed = 0
    return user


def log_in(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR="192.0.2.7")


def test_a_right_password_is_hashed_once(client, counted):
    response = log_in(client, "petrova", "a long enough password")
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert CountingHasher.computed == 1


def test_a_wrong_password_is_hashed_once(client, counted):
    assert log_in(client, "petrova", "not it").status_code == 200
    assert CountingHasher.computed == 1


def test_an_unknown_name_costs_one_hash_too(client, counted):
    # Django hashes the typed password anyway, so a name's existence does not show in the timing.
    assert log_in(client, "nobody", "whatever").status_code == 200
    assert CountingHasher.computed == 1


def test_the_site_keeps_a_strong_password_hasher():
    # OWASP's figure for PBKDF2-HMAC-SHA256 is 600,000 iterations; Django 5.2's default is 1,000,000.
    hasher = get_hasher()
    assert django_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    assert hasher.algorithm == "pbkdf2_sha256" and hasher.iterations >= 600_000
