"""The policy, decided against the database as it is now: every role x relation x mode, with and
without the group permission, and with the target phone marked not monitorable."""

import pytest
from django.contrib.auth.models import Group, Permission

from accounts.models import ROLE_GROUPS, Extension, Role, User
from supervision import policy

pytestmark = pytest.mark.django_db


def make_user(username, role, curator=None, **extra):
    user = User.objects.create_user(username=username, password=None, role=role, curator=curator, **extra)
    return user


def make_phone(user, resource, **extra):
    return Extension.objects.create(user=user, technology="SIP", resource=resource, **extra)


@pytest.fixture
def people():
    adm = make_user("adm", Role.ADMIN)
    adm2 = make_user("adm2", Role.ADMIN)
    c1 = make_user("c1", Role.CURATOR)
    c2 = make_user("c2", Role.CURATOR)
    t1 = make_user("t1", Role.TRAINEE, curator=c1)
    t1b = make_user("t1b", Role.TRAINEE, curator=c1)
    t2 = make_user("t2", Role.TRAINEE, curator=c2)
    for number, user in enumerate([adm, adm2, c1, c2, t1, t1b, t2], start=101):
        make_phone(user, str(number))
    return {u.username: u for u in [adm, adm2, c1, c2, t1, t1b, t2]}


# (actor, relation, target username, modes allowed by default, reason for the others)
TABLE = [
    ("adm", "self", "adm", set(), "own_call"),
    ("adm", "a trainee", "t1", {"listen", "whisper", "barge"}, None),
    ("adm", "a curator", "c1", {"listen", "whisper", "barge"}, None),
    ("adm", "another admin", "adm2", {"listen", "whisper", "barge"}, None),
    ("c1", "self", "c1", set(), "own_call"),
    ("c1", "own trainee", "t1", {"listen", "whisper", "barge"}, None),
    ("c1", "other team's trainee", "t2", set(), "not_your_team"),
    ("c1", "other curator", "c2", set(), "not_your_team"),
    ("c1", "admin", "adm", set(), "not_your_team"),
    ("t1", "self", "t1", set(), "own_call"),
    ("t1", "own curator", "c1", {"listen"}, "not_for_role"),
    ("t1", "other curator", "c2", set(), "not_your_team"),
    ("t1", "teammate", "t1b", set(), "not_your_team"),
    ("t1", "other team's trainee", "t2", set(), "not_your_team"),
    ("t1", "admin", "adm", set(), "not_your_team"),
]

CASES = [
    pytest.param(actor, target, mode, variant, allowed, reason, id=f"{actor}-{relation}-{mode}-{variant}")
    for actor, relation, target, allowed, reason in TABLE
    for mode in policy.MODES
    for variant in ("default", "without_permission", "not_monitorable")
]


def take_permission(role, codename):
    group = Group.objects.get(name=ROLE_GROUPS[role])
    group.permissions.remove(Permission.objects.get(content_type__app_label="supervision", codename=codename))


@pytest.mark.parametrize("actor, target, mode, variant, default_allowed, default_reason", CASES)
def test_policy_table(people, actor, target, mode, variant, default_allowed, default_reason):
    user = people[actor]
    phone = people[target].extensions.get()
    allowed_by_role = mode in default_allowed
    if variant == "without_permission":
        take_permission(user.role, mode)
        expected = "no_permission" if allowed_by_role else default_reason
    elif variant == "not_monitorable":
        Extension.objects.filter(pk=phone.pk).update(monitorable=False)
        expected = "not_monitorable" if allowed_by_role else default_reason
    else:
        expected = "ok" if allowed_by_role else default_reason

    decision = policy.can(user, mode, phone)

    assert decision.reason == expected
    assert bool(decision) is (expected == "ok")
    assert decision.message


def test_a_reassigned_trainee_is_no_longer_monitorable_by_the_old_curator(people):
    c1, c2, t1 = people["c1"], people["c2"], people["t1"]
    phone = t1.extensions.get()
    assert policy.can(c1, "listen", phone)
    # Another process (the admin page) moves the trainee; our objects in memory are stale.
    User.objects.filter(pk=t1.pk).update(curator=c2)

    assert policy.can(c1, "listen", phone).reason == "not_your_team"
    assert policy.can(c2, "listen", phone).allowed


def test_a_permission_taken_away_counts_despite_the_cached_permissions(people):
    c1, phone = people["c1"], people["t1"].extensions.get()
    assert c1.has_perm("supervision.barge")  # fills Django's per-object permission cache
    take_permission(Role.CURATOR, "barge")

    assert c1.has_perm("supervision.barge")  # the stale object still says yes...
    assert policy.can(c1, "barge", phone).reason == "no_permission"  # ...the policy does not


def test_an_inactive_user_can_do_nothing(people):
    adm = people["adm"]
    User.objects.filter(pk=adm.pk).update(is_active=False)
    for action in policy.ACTIONS:
        assert policy.can(adm, action, people["t1"].extensions.get()).reason == "inactive"


def test_an_inactive_target_cannot_be_monitored(people):
    User.objects.filter(pk=people["t1"].pk).update(is_active=False)
    assert policy.can(people["c1"], "listen", people["t1"].extensions.get()).reason == "inactive"


@pytest.mark.parametrize("action", ["", "spy", "listen ", "LISTEN", None, "hangup"])
def test_an_unknown_action_is_refused(people, action):
    assert policy.can(people["adm"], action, people["t1"].extensions.get()).reason == "unknown_action"


@pytest.mark.parametrize("target", [None, 999999])
def test_a_missing_or_forged_target_is_refused(people, target):
    decision = policy.can(people["adm"], "listen", target)
    assert decision.reason == "not_found"
    assert not decision


def test_a_target_given_by_id_is_read_from_the_database(people):
    assert policy.can(people["c1"], "listen", people["t1"].extensions.get().pk).allowed


def test_a_deleted_user_is_inactive(people):
    ghost = User(pk=424242, username="ghost")
    assert policy.can(ghost, "listen", people["t1"].extensions.get()).reason == "inactive"


@pytest.mark.parametrize(
    "actor, target, expected",
    [
        ("t1", "t1", "ok"),  # own ringing phone
        ("c1", "t1", "ok"),  # his trainee's
        ("c1", "t2", "not_your_team"),
        ("t1", "c1", "not_your_team"),
        ("t1", "t1b", "not_your_team"),
        ("adm", "t2", "ok"),
    ],
)
def test_pickup(people, actor, target, expected):
    assert policy.can(people[actor], "pickup", people[target].extensions.get()).reason == expected


def test_pickup_is_gated_by_its_permission(people):
    take_permission(Role.TRAINEE, "pickup")
    assert policy.can(people["t1"], "pickup", people["t1"].extensions.get()).reason == "no_permission"


@pytest.mark.parametrize("action", ["dial", "playback"])
def test_dial_and_playback_ring_only_ones_own_phone(people, action):
    assert policy.can(people["t1"], action, people["t1"].extensions.get()).allowed
    assert policy.can(people["c1"], action, people["t1"].extensions.get()).reason == "not_your_team"


def test_allowed_actions_are_the_card_buttons(people):
    t1_phone, c1_phone = people["t1"].extensions.get(), people["c1"].extensions.get()
    assert policy.allowed_actions(people["c1"], t1_phone) == ["listen", "whisper", "barge"]
    assert policy.allowed_actions(people["t1"], c1_phone) == ["listen"]
    assert policy.allowed_actions(people["t1"], t1_phone) == []
    assert policy.holds_every_mode(people["c1"], t1_phone)
    assert not policy.holds_every_mode(people["t1"], c1_phone)
    take_permission(Role.CURATOR, "whisper")
    assert policy.allowed_actions(people["c1"], t1_phone) == ["listen", "barge"]
    assert not policy.holds_every_mode(people["c1"], t1_phone)


def test_visible_extensions(people):
    def devices(username):
        return sorted(e.resource for e in policy.visible_extensions(people[username]))

    assert devices("adm") == ["101", "102", "103", "104", "105", "106", "107"]
    assert devices("c1") == ["103", "105", "106"]  # himself and his two trainees
    assert devices("t1") == ["103", "105"]  # himself and his curator
    User.objects.filter(pk=people["t1"].pk).update(is_active=False)
    assert devices("t1") == []
    assert devices("c1") == ["103", "106"]
