"""`policy.decide_each`: one fresh read serving several actions decides exactly as `policy.can`
does action by action, for every demo person on every demo phone."""

import pytest
from django.contrib.auth.models import Permission

from accounts.demo import seed_demo_roster
from accounts.models import Extension, User
from supervision import policy

pytestmark = pytest.mark.django_db

ASKED = (*policy.ACTIONS, "format_disk", None)


def test_decide_each_agrees_with_can_for_everyone_on_every_phone():
    seed_demo_roster()
    curator = User.objects.get(username="petrova")
    curator.user_permissions.add(Permission.objects.get(codename="listen"))
    Extension.objects.filter(user__username="ivanov").update(monitorable=False)
    for user in User.objects.all():
        for extension in [*Extension.objects.all(), None]:
            target = extension.pk if extension is not None else None
            fresh_user, fresh_extension, decisions = policy.decide_each(user.pk, ASKED, target)
            assert fresh_user == user and fresh_extension == extension
            for action in ASKED:
                assert decisions[action] == policy.can(user.pk, action, target), (user, extension, action)


def test_decide_each_of_a_missing_user_or_phone():
    seed_demo_roster()
    phone = Extension.objects.first()
    user, extension, decisions = policy.decide_each(10**9, policy.MODES, phone.pk)
    assert user is None and extension == phone
    assert {d.reason for d in decisions.values()} == {"inactive"}
    someone = User.objects.first()
    _user, extension, decisions = policy.decide_each(someone.pk, policy.MODES, 10**9)
    assert extension is None and {d.reason for d in decisions.values()} == {"not_found"}


def test_decide_cards_agrees_with_can_for_everyone_on_every_phone():
    seed_demo_roster()
    Extension.objects.filter(user__username="ivanov").update(monitorable=False)
    User.objects.filter(username="lebedev").update(is_active=False)
    phones = list(Extension.objects.select_related("user"))
    for user in User.objects.all():
        cards = policy.decide_cards(user, phones)
        assert set(cards) == {phone.pk for phone in phones}
        for phone in phones:
            for action in (*policy.MODES, "pickup"):
                assert cards[phone.pk][action] == policy.can(user.pk, action, phone.pk), (user, phone, action)


def test_a_dashboards_cards_cost_the_same_queries_with_ten_more_trainees():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Role
    from supervision import audience

    roster = seed_demo_roster()
    curator = roster.users["petrova"]
    with CaptureQueriesContext(connection) as few:
        small = audience.build_view(curator)
    for i in range(10):
        trainee = User.objects.create(username=f"extra{i}", role=Role.TRAINEE, curator=curator)
        Extension.objects.create(user=trainee, technology="SIP", resource=f"77{i:02d}")
    with CaptureQueriesContext(connection) as many:
        large = audience.build_view(curator)
    assert len(large.people) == len(small.people) + 10 and len(large.devices) == len(small.devices) + 10
    assert len(many.captured_queries) == len(few.captured_queries)
