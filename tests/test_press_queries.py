"""A press reaches the PBX's Originate after ONE fresh read and the audit row's INSERT, counted
from the page's frame on: the socket forwards a press with its login session sealed (no query of
its own), and the bridge reads the user, his permissions, the phone and its owner, his own phone
and that session in one SELECT. Counted on the database thread both the consumer's and the
bridge's steps run on, up to the moment the PBX parses the Originate.

A press whose session has ended is refused by that same read: recorded, nothing sent, its socket
closed. Run on SQLite and, with DATABASE_URL=postgres://..., on PostgreSQL. (Before the one read:
8 queries for a spy, pickup or dial press, 11 for a playback.)"""

import datetime

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import sessions
from accounts.models import User
from supervision import consumers, policy
from supervision.models import Outcome, Recording, Sharing
from tests.live_stack import (  # noqa: F401
    ORIGIN,
    channel_layer,
    login_session_key,
    originates,
    ringing_call,
    roster,
    rows,
    session_cookie,
    started_bridge,
    until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

MOST_QUERIES_BEFORE_THE_ORIGINATE = 2  # the press's one SELECT and its audit row's INSERT


async def socket_of(cookie):
    from channels.testing import WebsocketCommunicator

    from supervision.asgi import websocket_application

    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", ORIGIN), (b"cookie", cookie.encode())]
    socket = WebsocketCommunicator(websocket_application, "/ws/dashboard/", headers=headers)
    socket.scope["client"] = ["127.0.0.1", 50000]
    connected, _code = await socket.connect(timeout=5)
    assert connected
    return socket


class QueriesUntilOriginate:
    """The queries of the database thread (where the consumer's and the bridge's database steps
    run), and how many of them had run when the PBX parsed an Originate."""

    def __init__(self, pbx):
        self.pbx, self.at_originate = pbx, []

    async def __aenter__(self):
        def start():
            context = CaptureQueriesContext(connections["default"])  # that thread's connection itself
            context.__enter__()
            return context

        self.context = await sync_to_async(start)()
        dispatch = self.pbx._dispatch

        async def counted(session, message):
            if (message.get("Action") or "").lower() == "originate":
                self.at_originate.append(len(self.context.captured_queries))
            await dispatch(session, message)

        self.pbx._dispatch = counted
        return self

    async def __aexit__(self, *exc):
        await sync_to_async(self.context.__exit__)(None, None, None)

    def before_originate(self):
        [count] = self.at_originate
        return [query["sql"] for query in self.context.captured_queries[:count]]


async def live_call(pbx, bridge, device):
    name = await pbx.inbound_call(device)
    await until(lambda: (bridge.board.channel(name) or {}).get("state") == "up")
    return name


@pytest.mark.parametrize("kind", ["spy", "pickup", "dial", "playback"])
async def test_a_press_reaches_the_originate_after_one_read_and_its_audit_row(fakepbx, channel_layer, roster, kind):
    people, phones = roster
    curator = people["petrova"]
    async with started_bridge(fakepbx, channel_layer) as bridge:
        if kind == "spy":
            await live_call(fakepbx, bridge, "SIP/105")
            command = {"type": "spy", "target": phones["anna"].pk, "mode": "listen"}
        elif kind == "pickup":
            await ringing_call(fakepbx, bridge, "SIP/105")
            command = {"type": "pickup", "target": phones["anna"].pk}
        elif kind == "dial":
            command = {"type": "dial", "number": "5551234"}
        else:
            lesson = await sync_to_async(Recording.objects.create)(
                title="Lesson 1", path=f"{settings.RECORDINGS_ROOT}/lesson-1", owner=curator)
            command = {"type": "playback", "recording": lesson.pk}
        socket = await socket_of(await session_cookie(curator))
        async with QueriesUntilOriginate(fakepbx) as queries:
            await socket.send_json_to(command)
            await until(lambda: queries.at_originate)
        await socket.disconnect()
    sql = queries.before_originate()
    assert len(sql) <= MOST_QUERIES_BEFORE_THE_ORIGINATE, "\n".join(sql)
    select, insert = sql
    assert select.startswith("SELECT") and "django_session" in select  # the session is checked in the read
    assert insert.startswith("INSERT") and "supervision_monitoringsession" in insert
    [row] = await rows(user_id=curator.pk)
    assert row["outcome"] != Outcome.DENIED and row["kind"] == kind


async def test_a_press_from_an_ended_session_is_refused_recorded_and_closes_its_socket(fakepbx, channel_layer, roster):
    """The session row is gone without any signal (deleted in the database, `clearsessions`): the
    press's read finds out; nothing is sent to the PBX, the refusal is recorded, the socket closes."""
    people, phones = roster
    curator = people["petrova"]
    async with started_bridge(fakepbx, channel_layer) as bridge:
        await live_call(fakepbx, bridge, "SIP/105")
        cookie = await session_cookie(curator)
        socket = await socket_of(cookie)
        await sync_to_async(Session.objects.filter(session_key=cookie.split("=", 1)[1]).delete)()
        await socket.send_json_to({"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
        while True:
            output = await socket.receive_output(timeout=10)
            if output["type"] == "websocket.close":
                break
        assert output.get("code") == consumers.SESSION_ENDED_CLOSE_CODE
    [row] = await rows(user_id=curator.pk)
    assert (row["outcome"], row["reason"]) == (Outcome.DENIED, policy.SESSION_ENDED)
    assert originates(fakepbx) == []


# --- the session in the read agrees with Django's own test ------------------------------------------


_session_of = login_session_key


CHANGES = {
    "none": lambda user, key: None,
    "password": lambda user, key: (user.set_password("a-new-Password-9"), user.save()),
    "deactivated": lambda user, key: User.objects.filter(pk=user.pk).update(is_active=False),
    "expired": lambda user, key: Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - datetime.timedelta(seconds=1)),
    "deleted": lambda user, key: Session.objects.filter(session_key=key).delete(),
    "another_users": lambda user, key: Session.objects.filter(session_key=key).update(session_data=Session.objects.get(
        session_key=_session_of(User.objects.exclude(pk=user.pk).first())).session_data),
}


@pytest.mark.parametrize("change", CHANGES)
def test_the_reads_session_check_agrees_with_djangos(roster_sync, change, fast_password_hashing):
    people, phones = roster_sync
    user = people["petrova"]
    key = _session_of(user)
    CHANGES[change](user, key)
    read = policy.read_press(user.pk, ("listen",), phones["anna"].pk, session_key=key)
    live = sessions.live_user_id(key) == user.pk
    assert read.session_ended == (not live)
    assert live == (change == "none")
    if read.session_ended:
        assert read.decisions["listen"].reason == policy.SESSION_ENDED


def test_a_press_without_a_session_or_with_a_forged_one():
    assert sessions.key_of({"type": "spy"}) is None  # handed to the bridge directly: not asked
    sealed = sessions.seal("abc123")
    assert sessions.unseal(sealed) == "abc123" and sealed != sessions.seal("abc123")  # a fresh nonce each time
    assert "abc123" not in sealed
    forged = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    assert sessions.key_of({"sealed_session": forged}) == ""  # refused, never looked up
    assert sessions.key_of({"sealed_session": 42}) == "" and sessions.unseal("@@") == ""


def test_a_sealed_session_opens_only_for_a_short_while_and_survives_a_key_rotation(settings):
    import time

    old = sessions._sealer().encrypt_at_time(b"abc123", int(time.time()) - sessions.SEAL_TTL_SECONDS - 5).decode()
    assert sessions.unseal(old) == ""  # copied out of Redis minutes ago: opens nothing
    sealed = sessions.seal("abc123")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    assert sessions.unseal(sealed) == "abc123"  # sealed just before the rotation
    settings.SECRET_KEY_FALLBACKS = []
    assert sessions.unseal(sealed) == ""  # sealed with a key no longer held


def test_a_pages_own_frame_cannot_carry_a_session():
    with pytest.raises(consumers.ShapeError):
        consumers.check_command({"type": "spy", "target": 1, "mode": "listen", sessions.SEALED_FIELD: "x"})


def test_only_presses_skip_the_sockets_own_check():
    assert sessions.forwarded({"type": "spy.stop", "session": 3}, "key") == {"type": "spy.stop", "session": 3}
    assert sessions.forwarded({"type": "spy"}, None) == {"type": "spy"}  # no session: the socket checks it
    assert sessions.key_of(sessions.forwarded({"type": "dial"}, "key")) == "key"


@pytest.fixture
def roster_sync(db):
    from tests.live_stack import _roster

    return _roster()


def test_a_recording_is_shared_with_whom_the_library_says(roster_sync):
    """`policy.shared_with` (told from rows the press already read) agrees with
    `Recording.objects.playable_by` for every person, every owner and every sharing."""
    people, _phones = roster_sync
    admin = User.objects.create_user(username="root", password=None, role="admin")
    inactive = User.objects.create_user(username="gone", password=None, role="curator", is_active=False)
    superuser = User.objects.create_user(username="boss", password=None, role="curator", is_superuser=True)
    everyone = [*people.values(), admin, inactive, superuser]
    recordings = [Recording.objects.create(title=f"{owner.username} {sharing}", path=f"{settings.RECORDINGS_ROOT}/a",
                                           owner=owner, sharing=sharing)
                  for owner in everyone if owner.role != "trainee" for sharing in Sharing.values]
    for user in [*everyone, None]:
        playable = set(Recording.objects.playable_by(user).values_list("pk", flat=True))
        for recording in recordings:
            assert policy.shared_with(recording, user) == (recording.pk in playable), (user, recording)
