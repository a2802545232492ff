"""Every roster value that can reach AMI is refused at the model, in the admin and in the import."""

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Extension, User
from accounts.roster_import import RosterImportError, import_roster


pytestmark = pytest.mark.usefixtures("fast_password_hashing")

# (field, bad value, words expected in the message)
BAD_RESOURCES = [
    ("104\r\nAction: Originate", "carriage return"),
    ("104\nAction: Originate", "line feed"),
    ("104\r", "carriage return"),
    ("10,4", "comma"),
    ("10|4", "pipe"),
    ("104(q)", "parenthesis"),
    ("104)", "parenthesis"),
    ("10 4", "space"),
    ("10\t4", "tab"),
    ("104;x", "semicolon"),
    ("104\x00", "NUL"),
    ("SIP/104", "only letters"),
    ("104@ctx", "only letters"),
    ("104&SIP/105", "only letters"),
    ("104:x", "only letters"),
    ('"104"', "only letters"),
    ("тест", "only letters"),
    ("１０４", "only letters"),  # full-width digits are not ASCII
    ("", "blank"),
    ("1" * 41, "at most 40"),
]
BAD_CONTEXTS = [
    ("phones\r\nAction: Command", "carriage return"),
    ("phones\n", "line feed"),
    ("pho,nes", "comma"),
    ("pho|nes", "pipe"),
    ("phones(1)", "parenthesis"),
    ("my phones", "space"),
    ("phones;x", "semicolon"),
    ("phones#", "only letters"),
    ("phones*", "only letters"),
    ("phones@x", "only letters"),
    ("phones/x", "only letters"),
]
BAD_DISPLAY = [
    ("Anna\r\nAction: Hangup", "line breaks"),
    ("Anna\nPetrova", "line breaks"),
    ("Anna\x1b[31m", "control"),
    ("Anna\x85", "control"),
    ('Anna "Boss"', "double quote"),
    ("Anna <201>", "angle bracket"),
    ("Anna\\", "backslash"),
]


@pytest.fixture
def owner(demo_roster):
    return demo_roster.users["ivanov"]


def extension_errors(**fields):
    with pytest.raises(ValidationError) as caught:
        Extension(**fields).full_clean()
    return caught.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", BAD_RESOURCES)
def test_full_clean_rejects_bad_resource(owner, value, why):
    errors = extension_errors(user=owner, technology="SIP", resource=value)
    assert why in " ".join(errors["resource"])


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", BAD_CONTEXTS)
def test_full_clean_rejects_bad_originate_context(owner, value, why):
    errors = extension_errors(user=owner, technology="PJSIP", resource="391", originate_context=value)
    assert why in " ".join(errors["originate_context"])


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", BAD_DISPLAY)
def test_full_clean_rejects_bad_display_name(owner, value, why):
    errors = extension_errors(user=owner, technology="SIP", resource="391", display_name=value)
    assert why in " ".join(errors["display_name"])


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", BAD_DISPLAY)
@pytest.mark.parametrize("name_field", ["first_name", "last_name"])
def test_full_clean_rejects_bad_person_name(owner, name_field, value, why):
    setattr(owner, name_field, value)
    with pytest.raises(ValidationError) as caught:
        owner.full_clean()
    assert why in " ".join(caught.value.messages)


@pytest.mark.django_db
@pytest.mark.parametrize("technology", ["SIP", "sip ", "Zap", "SIP/104", "PJSIP\r\n"])
def test_full_clean_rejects_unknown_technology(owner, technology):
    if technology == "SIP":
        Extension(user=owner, technology=technology, resource="391").full_clean()  # the good one passes
        return
    errors = extension_errors(user=owner, technology=technology, resource="391")
    assert "technology" in errors


@pytest.mark.django_db
@pytest.mark.parametrize(
    "resource,context",
    [("104", ""), ("a.b-c_d+e*f#1", ""), ("ABC", "from-internal"), ("1", "phones.v2+x_y-z")],
)
def test_full_clean_accepts_good_values(owner, resource, context):
    extension = Extension(user=owner, technology="PJSIP", resource=resource, originate_context=context)
    extension.full_clean()
    assert extension.dial_string == (f"Local/{resource}@{context}" if context else f"PJSIP/{resource}")


def user_change_data(user, **changes):
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
        "extensions-TOTAL_FORMS": "1",
        "extensions-INITIAL_FORMS": "0",
        "extensions-MIN_NUM_FORMS": "0",
        "extensions-MAX_NUM_FORMS": "1000",
        "extensions-0-technology": "SIP",
        "extensions-0-resource": "391",
        "extensions-0-display_name": "",
        "extensions-0-phone_preset": "call-info",
        "extensions-0-originate_context": "",
        "extensions-0-monitorable": "on",
    }
    data.update(changes)
    return data


def post_user(admin_client, user, **changes):
    response = admin_client.post(f"/admin/accounts/user/{user.pk}/change/", user_change_data(user, **changes))
    assert response.status_code == 200, "the form should come back with errors, not save"
    return response


# A form field strips surrounding whitespace (so "104\r" arrives as a harmless "104") and refuses
# NUL with its own message; every other case reaches the model's validators.
ADMIN_BAD_RESOURCES = [(value, why) for value, why in BAD_RESOURCES if value.strip() == value and value]


def form_why(value, why):
    return "Null characters are not allowed" if "\x00" in value else why


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", ADMIN_BAD_RESOURCES)
def test_admin_form_rejects_bad_resource(admin_client, owner, value, why):
    response = post_user(admin_client, owner, **{"extensions-0-resource": value})
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert form_why(value, why) in " ".join(errors["resource"])
    assert value not in set(Extension.objects.values_list("resource", flat=True))  # no NUL in a query: PostgreSQL refuses it


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", [(value, why) for value, why in BAD_CONTEXTS if value.strip() == value])
def test_admin_form_rejects_bad_originate_context(admin_client, owner, value, why):
    response = post_user(
        admin_client, owner, **{"extensions-0-technology": "PJSIP", "extensions-0-originate_context": value}
    )
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert why in " ".join(errors["originate_context"])
    assert not owner.extensions.filter(resource="391").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", [(value, why) for value, why in BAD_DISPLAY if value.strip() == value])
def test_admin_form_rejects_bad_names(admin_client, owner, value, why):
    response = post_user(admin_client, owner, first_name=value, **{"extensions-0-display_name": value})
    user_errors = response.context["adminform"].form.errors
    assert why in " ".join(user_errors.get("__all__", []) + user_errors.get("first_name", []))
    assert why in " ".join(response.context["inline_admin_formsets"][0].formset.errors[0]["display_name"])
    owner.refresh_from_db()
    assert owner.first_name == "Dmitry"


def import_one(resource="391", context="", display_name="", first_name="Olga", technology="SIP"):
    header = "username,first_name,role,curator,technology,resource,display_name,originate_context\n"
    row = ["newbie", first_name, "trainee", "petrova", technology, resource, display_name, context]
    quoted = ",".join('"' + cell.replace('"', '""') + '"' for cell in row)
    with pytest.raises(RosterImportError) as caught:
        import_roster((header + quoted + "\n").encode())
    assert not User.objects.filter(username="newbie").exists()
    return caught.value.errors


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", [case for case in BAD_RESOURCES if case[0]])
def test_import_rejects_bad_resource(demo_roster, value, why):
    errors = import_one(resource=value)
    assert {(error.line, error.column) for error in errors} == {(2, "resource")}
    assert any(why in error.message for error in errors)


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", BAD_CONTEXTS)
def test_import_rejects_bad_originate_context(demo_roster, value, why):
    errors = import_one(context=value, technology="PJSIP")
    assert {(error.line, error.column) for error in errors} == {(2, "originate_context")}
    assert any(why in error.message for error in errors)


@pytest.mark.django_db
@pytest.mark.parametrize("value,why", BAD_DISPLAY)
def test_import_rejects_bad_names(demo_roster, value, why):
    errors = import_one(display_name=value, first_name=value)
    assert {(error.line, error.column) for error in errors} == {(2, "display_name"), (2, "first_name")}
    assert all(why in error.message for error in errors)
