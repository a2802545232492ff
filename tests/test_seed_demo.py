"""`manage.py seed_demo`: the demo roster, idempotent, logins printed."""

import pytest
from django.core.management import call_command

from accounts.demo import DEMO_PEOPLE
from accounts.models import Extension, Role, User


@pytest.mark.django_db
def test_seed_creates_the_documented_roster(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Created demo users: admin, petrova, smirnov, ivanov, kuznetsova, sokolov, popova, lebedev" in out
    for username, *_rest in DEMO_PEOPLE:
        assert f"demo-{username}" in out
    admin = User.objects.get(username="admin")
    assert (admin.role, admin.is_staff, admin.is_superuser) == (Role.ADMIN, True, True)
    assert User.objects.get(username="petrova").check_password("demo-petrova")
    trainees = User.objects.filter(role=Role.TRAINEE)
    assert sorted((t.username, t.curator.username) for t in trainees) == [
        ("ivanov", "petrova"),
        ("kuznetsova", "petrova"),
        ("lebedev", "smirnov"),
        ("popova", "smirnov"),
        ("sokolov", "petrova"),
    ]
    devices = {ext.user.username: (ext.device, ext.phone_preset) for ext in Extension.objects.select_related("user")}
    assert devices["petrova"] == ("SIP/201", "call-info")
    assert devices["lebedev"] == ("SIP/105", "call-info")
    assert User.objects.get(username="popova").get_full_name() == "Olga Popova"


@pytest.mark.django_db
def test_seed_again_changes_nothing_and_keeps_passwords(capsys):
    call_command("seed_demo")
    petrova = User.objects.get(username="petrova")
    petrova.set_password("my-own-secret-1")
    petrova.save()
    capsys.readouterr()
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Created" not in out
    assert "Already there (passwords unchanged): admin, petrova" in out
    assert "petrova      demo-petrova" in out  # the logins table is printed again
    assert User.objects.count() == 8 and Extension.objects.count() == 8
    assert User.objects.get(username="petrova").check_password("my-own-secret-1")


@pytest.mark.django_db
def test_seed_repairs_the_roster_and_can_reset_passwords(capsys):
    call_command("seed_demo")
    User.objects.filter(username="ivanov").update(curator=User.objects.get(username="smirnov"), first_name="X")
    Extension.objects.filter(resource="101").delete()
    User.objects.filter(username="petrova").update(password="!")
    call_command("seed_demo", "--reset-passwords")
    ivanov = User.objects.get(username="ivanov")
    assert (ivanov.curator.username, ivanov.first_name) == ("petrova", "Dmitry")
    assert ivanov.extensions.get().device == "SIP/101"
    assert User.objects.get(username="petrova").check_password("demo-petrova")
    assert "passwords reset" in capsys.readouterr().out


@pytest.mark.django_db
def test_seed_leaves_a_taken_device_alone(capsys):
    call_command("seed_demo")
    Extension.objects.filter(resource="105").update(user=User.objects.get(username="popova"))
    call_command("seed_demo")
    assert "SIP/105 belongs to popova; left there" in capsys.readouterr().out


@pytest.mark.django_db
def test_demo_roster_fixture_gives_named_objects(demo_roster):
    assert [user.username for user in demo_roster.curators] == ["petrova", "smirnov"]
    assert [user.username for user in demo_roster.trainees_of(demo_roster.users["smirnov"])] == ["popova", "lebedev"]
    assert demo_roster.extensions["ivanov"].device == "SIP/101"
    assert demo_roster.admin.is_superuser
