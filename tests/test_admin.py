"""Roster management in the Django admin."""

import pytest
from django.contrib.messages import get_messages

from accounts.models import Extension, Role, User

USERS = "/admin/accounts/user/"


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def names_in_changelist(response):
    return {user.username for user in response.context["cl"].result_list}


@pytest.mark.django_db
def test_user_list_searches_by_extension_resource_and_name(admin_client, demo_roster):
    assert names_in_changelist(admin_client.get(USERS, {"q": "104"})) == {"popova"}
    assert names_in_changelist(admin_client.get(USERS, {"q": "Petrova"})) == {"petrova"}
    assert names_in_changelist(admin_client.get(USERS, {"q": "kuznetsova"})) == {"kuznetsova"}


@pytest.mark.django_db
def test_user_list_filters_by_role_and_curator(admin_client, demo_roster):
    assert names_in_changelist(admin_client.get(USERS, {"role__exact": "curator"})) == {"petrova", "smirnov"}
    smirnov = demo_roster.users["smirnov"]
    assert names_in_changelist(admin_client.get(USERS, {"curator": smirnov.pk})) == {"popova", "lebedev"}


@pytest.mark.django_db
def test_user_list_shows_devices(admin_client, demo_roster):
    response = admin_client.get(USERS, {"q": "popova"})
    assert "SIP/104" in response.content.decode()


@pytest.mark.django_db
def test_curator_page_lists_trainees_inline_and_extensions(admin_client, demo_roster):
    petrova = demo_roster.users["petrova"]
    response = admin_client.get(f"{USERS}{petrova.pk}/change/")
    formsets = {formset.formset.prefix: formset.formset for formset in response.context["inline_admin_formsets"]}
    assert {form.instance.username for form in formsets["trainees"].forms} == {"ivanov", "kuznetsova", "sokolov"}
    assert [form.instance.device for form in formsets["extensions"].forms] == ["SIP/201"]


@pytest.mark.django_db
def test_trainee_page_has_no_trainee_inline(admin_client, demo_roster):
    response = admin_client.get(f"{USERS}{demo_roster.users['ivanov'].pk}/change/")
    assert [formset.formset.prefix for formset in response.context["inline_admin_formsets"]] == ["extensions"]


def add_user(admin_client, **fields):
    data = {"username": "novak", "usable_password": "true", "password1": "Zx9!long-enough", "password2": "Zx9!long-enough"}
    data.update(inline_rows(("SIP", "310", "")))
    data.update(fields)
    return admin_client.post(f"{USERS}add/", data)


@pytest.mark.django_db
def test_adding_a_trainee_with_curator_and_password(admin_client, demo_roster):
    response = add_user(admin_client, role="trainee", curator=demo_roster.users["petrova"].pk)
    assert response.status_code == 302
    novak = User.objects.get(username="novak")
    assert (novak.role, novak.curator.username) == ("trainee", "petrova")
    assert novak.check_password("Zx9!long-enough")
    assert [ext.device for ext in novak.extensions.all()] == ["SIP/310"]
    assert [group.name for group in novak.groups.all()] == ["Trainees"]


@pytest.mark.django_db
def test_adding_a_trainee_without_curator_is_refused(admin_client, demo_roster):
    response = add_user(admin_client, role="trainee")
    assert response.status_code == 200
    assert "A trainee must have a curator." in response.context["adminform"].form.errors["curator"]
    assert not User.objects.filter(username="novak").exists()


@pytest.mark.django_db
def test_curator_choices_hold_only_curators(admin_client, demo_roster):
    response = admin_client.get(f"{USERS}add/")
    choices = {user.username for user in response.context["adminform"].form.fields["curator"].queryset}
    assert choices == {"petrova", "smirnov"}


def run_action(admin_client, users, **extra):
    data = {"action": "assign_to_curator", "_selected_action": [user.pk for user in users], **extra}
    return admin_client.post(USERS, data)


@pytest.mark.django_db
def test_assign_to_curator_shows_an_intermediate_page(admin_client, demo_roster):
    ivanov, popova = demo_roster.users["ivanov"], demo_roster.users["popova"]
    response = run_action(admin_client, [ivanov, popova])
    assert response.status_code == 200
    assert response.templates[0].name == "admin/accounts/user/assign_curator.html"
    assert {user.username for user in response.context["trainees"]} == {"ivanov", "popova"}
    assert User.objects.get(pk=popova.pk).curator.username == "smirnov"  # nothing changed yet


@pytest.mark.django_db
def test_assign_to_curator_reassigns_every_selected_trainee(admin_client, demo_roster):
    trainees = [demo_roster.users[name] for name in ("ivanov", "kuznetsova", "popova")]
    smirnov = demo_roster.users["smirnov"]
    response = run_action(admin_client, trainees, apply="1", curator=smirnov.pk)
    assert response.status_code == 302
    assert set(smirnov.trainees.values_list("username", flat=True)) == {"ivanov", "kuznetsova", "popova", "lebedev"}
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["2 trainees now have the curator Igor Smirnov."]


@pytest.mark.django_db
def test_assign_to_curator_refuses_non_trainees(admin_client, demo_roster):
    selected = [demo_roster.users["ivanov"], demo_roster.users["petrova"]]
    response = run_action(admin_client, selected, apply="1", curator=demo_roster.users["smirnov"].pk)
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Only trainees have a curator; not a trainee: petrova. Nothing was changed."]
    assert User.objects.get(username="ivanov").curator.username == "petrova"


@pytest.mark.django_db
def test_assign_to_curator_refuses_a_non_curator_choice(admin_client, demo_roster):
    response = run_action(admin_client, [demo_roster.users["ivanov"]], apply="1", curator=demo_roster.users["admin"].pk)
    assert response.status_code == 200  # the page again, with the form's error
    assert "curator" in response.context["form"].errors
    assert User.objects.get(username="ivanov").curator.username == "petrova"


def inline_rows(*rows):
    data = {
        "extensions-TOTAL_FORMS": str(len(rows)),
        "extensions-INITIAL_FORMS": "0",
        "extensions-MIN_NUM_FORMS": "0",
        "extensions-MAX_NUM_FORMS": "1000",
    }
    for index, (technology, resource, context) in enumerate(rows):
        data.update(
            {
                f"extensions-{index}-technology": technology,
                f"extensions-{index}-resource": resource,
                f"extensions-{index}-originate_context": context,
                f"extensions-{index}-phone_preset": "call-info",
                f"extensions-{index}-monitorable": "on",
            }
        )
    return data


def change_user(admin_client, user, rows):
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "role": user.role,
        "curator": user.curator_id or "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "10:00:00",
        **inline_rows(*rows),
    }
    return admin_client.post(f"{USERS}{user.pk}/change/", data)


@pytest.mark.django_db
def test_extension_inline_adds_phones(admin_client, demo_roster):
    ivanov = demo_roster.users["ivanov"]
    response = change_user(admin_client, ivanov, [("PJSIP", "301", "phones"), ("SIP", "302", "")])
    assert response.status_code == 302
    assert sorted(ext.device for ext in ivanov.extensions.all()) == ["PJSIP/301", "SIP/101", "SIP/302"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rows,why",
    [
        ([("SIP", "301", ""), ("SIP", "301", "phones")], "SIP/301 is already on another row."),
        ([("Local", "5", "lab"), ("Local", "5", "lab")], "Local/5@lab is already on another row."),
        ([("SIP", "104", "")], "SIP/104 already belongs to Olga Popova."),
    ],
)
def test_extension_inline_refuses_a_device_twice(admin_client, demo_roster, rows, why):
    ivanov = demo_roster.users["ivanov"]
    response = change_user(admin_client, ivanov, rows)
    assert response.status_code == 200
    errors = [error for form_errors in response.context["inline_admin_formsets"][0].formset.errors for error in form_errors.get("resource", [])]
    assert why in errors
    assert ivanov.extensions.count() == 1


@pytest.mark.django_db
def test_extension_list_filters_and_search(admin_client, demo_roster):
    Extension.objects.filter(resource="102").update(monitorable=False, phone_preset="alert-info")
    url = "/admin/accounts/extension/"
    devices = lambda response: {ext.device for ext in response.context["cl"].result_list}  # noqa: E731
    assert devices(admin_client.get(url, {"monitorable__exact": "0"})) == {"SIP/102"}
    assert devices(admin_client.get(url, {"phone_preset__exact": "alert-info"})) == {"SIP/102"}
    assert len(devices(admin_client.get(url, {"technology__exact": "SIP"}))) == 8
    assert devices(admin_client.get(url, {"q": "Sokolov"})) == {"SIP/103"}


@pytest.mark.django_db
def test_extension_bulk_not_monitorable(admin_client, demo_roster):
    chosen = Extension.objects.filter(resource__in=["101", "102"])
    response = admin_client.post(
        "/admin/accounts/extension/",
        {"action": "mark_not_monitorable", "_selected_action": [ext.pk for ext in chosen]},
    )
    assert response.status_code == 302
    assert set(Extension.objects.filter(monitorable=False).values_list("resource", flat=True)) == {"101", "102"}


@pytest.mark.django_db
def test_a_curator_cannot_open_the_admin(client, demo_roster):
    client.force_login(demo_roster.users["petrova"])
    response = client.get(USERS)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")


@pytest.mark.django_db
def test_a_staff_admin_without_superuser_manages_the_roster_through_the_group(client, demo_roster):
    keeper = User.objects.create_user("keeper", role=Role.ADMIN, is_staff=True)
    client.force_login(keeper)
    assert client.get(USERS).status_code == 200
    assert client.get(f"{USERS}{demo_roster.users['ivanov'].pk}/change/").status_code == 200
