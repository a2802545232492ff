"""The roster model: roles, one curator per trainee, device uniqueness, default groups and permissions."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction

from accounts.models import Extension, Role, User


@pytest.mark.django_db
def test_every_trainee_has_exactly_one_curator_and_a_curator_has_many(demo_roster):
    petrova, smirnov = demo_roster.users["petrova"], demo_roster.users["smirnov"]
    assert sorted(petrova.trainees.values_list("username", flat=True)) == ["ivanov", "kuznetsova", "sokolov"]
    assert sorted(smirnov.trainees.values_list("username", flat=True)) == ["lebedev", "popova"]
    assert all(trainee.curator.role == Role.CURATOR for trainee in demo_roster.trainees)


@pytest.mark.django_db
def test_reassigning_a_trainee_is_one_field(demo_roster):
    ivanov = demo_roster.users["ivanov"]
    ivanov.curator = demo_roster.users["smirnov"]
    ivanov.full_clean()
    ivanov.save()
    assert list(demo_roster.users["smirnov"].trainees.order_by("username").values_list("username", flat=True)) == [
        "ivanov",
        "lebedev",
        "popova",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role,curator_name,message",
    [
        (Role.TRAINEE, None, "A trainee must have a curator."),
        (Role.TRAINEE, "lebedev", "The curator must have the curator role."),
        (Role.TRAINEE, "admin", "The curator must have the curator role."),
        (Role.CURATOR, "petrova", "Only trainees have a curator."),
        (Role.ADMIN, "petrova", "Only trainees have a curator."),
    ],
)
def test_curator_rules_are_checked_by_full_clean(demo_roster, role, curator_name, message):
    user = User(username="newcomer", role=role, curator=demo_roster.users.get(curator_name))
    with pytest.raises(ValidationError) as caught:
        user.full_clean(exclude=["password"])
    assert message in caught.value.messages


@pytest.mark.django_db
def test_database_refuses_a_trainee_without_curator(demo_roster):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(username="ivanov").update(curator=None)


@pytest.mark.django_db
def test_a_curator_with_trainees_cannot_change_role(demo_roster):
    petrova = demo_roster.users["petrova"]
    petrova.role = Role.ADMIN
    with pytest.raises(ValidationError) as caught:
        petrova.full_clean(exclude=["password"])
    assert "Reassign this curator's trainees before changing the role." in caught.value.messages


@pytest.mark.django_db
def test_a_trainee_cannot_be_his_own_curator(demo_roster):
    smirnov = demo_roster.users["smirnov"]
    smirnov.trainees.update(curator=demo_roster.users["petrova"])
    smirnov.role, smirnov.curator = Role.TRAINEE, smirnov
    with pytest.raises(ValidationError) as caught:
        smirnov.full_clean(exclude=["password"])
    assert "A trainee cannot be his own curator." in caught.value.messages


@pytest.mark.django_db
@pytest.mark.parametrize(
    "technology,resource,context",
    [("SIP", "104", ""), ("SIP", "104", "phones"), ("SIP", "104", "other-context")],
)
def test_the_same_device_cannot_belong_to_two_extensions(demo_roster, technology, resource, context):
    """SIP/104 is popova's phone: with or without an originate context it is still SIP/104."""
    duplicate = Extension(
        user=demo_roster.users["ivanov"], technology=technology, resource=resource, originate_context=context
    )
    assert duplicate.device == "SIP/104"
    with pytest.raises(ValidationError) as caught:
        duplicate.full_clean()
    assert "SIP/104 already belongs to Olga Popova." in caught.value.message_dict["resource"]
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


@pytest.mark.django_db
def test_local_devices_are_unique_per_context(demo_roster):
    ivanov = demo_roster.users["ivanov"]
    Extension.objects.create(user=ivanov, technology="Local", resource="500", originate_context="phones")
    other_context = Extension(user=ivanov, technology="Local", resource="500", originate_context="lab")
    other_context.full_clean()  # Local/500@lab is another device
    same = Extension(user=demo_roster.users["popova"], technology="Local", resource="500", originate_context="phones")
    with pytest.raises(ValidationError) as caught:
        same.full_clean()
    assert "Local/500@phones already belongs to Dmitry Ivanov." in caught.value.message_dict["resource"]
    with pytest.raises(IntegrityError), transaction.atomic():
        same.save()


@pytest.mark.django_db
def test_same_resource_on_another_technology_is_another_device(demo_roster):
    Extension(user=demo_roster.users["ivanov"], technology="PJSIP", resource="104").full_clean()


@pytest.mark.django_db
def test_an_extension_does_not_collide_with_itself(demo_roster):
    extension = demo_roster.extensions["popova"]
    extension.display_name = "Popova desk"
    extension.full_clean()


@pytest.mark.django_db
def test_local_extension_needs_its_context(demo_roster):
    with pytest.raises(ValidationError) as caught:
        Extension(user=demo_roster.users["ivanov"], technology="Local", resource="500").full_clean()
    assert caught.value.message_dict["originate_context"] == ["A Local extension needs its context."]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "technology,context,preset,device,dial_string,variables",
    [
        ("SIP", "", "call-info", "SIP/104", "SIP/104", ['SIPADDHEADER="Call-Info:\\;answer-after=0"']),
        ("SIP", "", "alert-info", "SIP/104", "SIP/104", ['SIPADDHEADER="Alert-Info: Ring Answer"']),
        ("SIP", "", "none", "SIP/104", "SIP/104", []),
        ("PJSIP", "phones", "call-info", "PJSIP/104", "Local/104@phones", ["AUTOANSWER=call-info"]),
        ("PJSIP", "phones", "alert-info", "PJSIP/104", "Local/104@phones", ["AUTOANSWER=alert-info"]),
        ("PJSIP", "", "call-info", "PJSIP/104", "PJSIP/104", []),
        ("IAX2", "", "call-info", "IAX2/104", "IAX2/104", []),
        ("DAHDI", "", "none", "DAHDI/104", "DAHDI/104", []),
        ("Local", "phones", "call-info", "Local/104@phones", "Local/104@phones", ["AUTOANSWER=call-info"]),
    ],
)
def test_device_dial_string_and_autoanswer_follow_the_phone(technology, context, preset, device, dial_string, variables):
    extension = Extension(technology=technology, resource="104", originate_context=context, phone_preset=preset)
    assert (extension.device, extension.dial_string, extension.autoanswer_variables()) == (
        device,
        dial_string,
        variables,
    )


@pytest.mark.django_db
def test_monitored_users(demo_roster):
    users = demo_roster.users
    assert {u.username for u in users["petrova"].monitored_users()} == {"ivanov", "kuznetsova", "sokolov"}
    assert {u.username for u in users["popova"].monitored_users()} == {"smirnov"}
    assert {u.username for u in users["admin"].monitored_users()} == set(users) - {"admin"}


def perms(user):
    user = User.objects.get(pk=user.pk)  # a fresh object: permission caches are per instance
    return {perm for perm in ("listen", "whisper", "barge") if user.has_perm(f"supervision.{perm}")}


@pytest.mark.django_db
def test_default_groups_grant_the_monitoring_permissions(demo_roster):
    assert perms(demo_roster.users["petrova"]) == {"listen", "whisper", "barge"}
    assert perms(demo_roster.users["ivanov"]) == {"listen"}
    assert {group.name for group in demo_roster.users["ivanov"].groups.all()} == {"Trainees"}


@pytest.mark.django_db
def test_admins_group_may_manage_the_roster(demo_roster):
    admins = Group.objects.get(name="Admins")
    codenames = set(admins.permissions.values_list("codename", flat=True))
    assert {"change_user", "add_extension", "barge"} <= codenames


@pytest.mark.django_db
def test_a_role_change_moves_the_user_to_the_new_group(demo_roster):
    ivanov = demo_roster.users["ivanov"]
    ivanov.role, ivanov.curator = Role.CURATOR, None
    ivanov.save()
    assert [group.name for group in ivanov.groups.all()] == ["Curators"]
    assert perms(ivanov) == {"listen", "whisper", "barge"}


@pytest.mark.django_db
def test_removing_barge_from_curators_sticks_across_migrate(demo_roster):
    curators = Group.objects.get(name="Curators")
    curators.permissions.remove(Permission.objects.get(content_type__app_label="supervision", codename="barge"))
    assert perms(demo_roster.users["petrova"]) == {"listen", "whisper"}
    call_command("migrate", verbosity=0)  # runs post_migrate again, as a deploy would
    assert perms(demo_roster.users["petrova"]) == {"listen", "whisper"}
    assert perms(demo_roster.users["smirnov"]) == {"listen", "whisper"}


@pytest.mark.django_db
def test_a_missing_role_group_is_recreated_with_its_permissions(demo_roster):
    Group.objects.filter(name="Trainees").delete()
    popova = demo_roster.users["popova"]
    popova.save()
    assert perms(popova) == {"listen"}


@pytest.mark.django_db
def test_createsuperuser_makes_an_admin():
    user = User.objects.create_superuser("root", "root@example.com", "x")
    assert user.role == Role.ADMIN and user.is_superuser


def test_a_login_does_not_tell_the_open_dashboards_to_look_again(demo_roster, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import update_last_login

    petrova = demo_roster.users["petrova"]
    with django_capture_on_commit_callbacks() as logged_in:
        update_last_login(None, petrova)  # what Django's login does
    with django_capture_on_commit_callbacks() as renamed:
        petrova.first_name = "Anya"
        petrova.save()
    assert logged_in == [] and len(renamed) == 1
