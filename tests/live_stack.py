"""Fixtures for the live stack: the simulated PBX over TCP, the real AMI client, the bridge and the
channel layer in the test's event loop, plus logged-in WebSocket clients of the real ASGI app.

Import the fixtures you use into a test module: `from tests.live_stack import live_bridge  # noqa: F401`.
"""

import asyncio
import contextlib
import json
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.backends.db import SessionStore

from accounts.models import ROLE_GROUPS, Extension, Role, User
from fakepbx import FakePBX
from supervision.bridge import BRIDGE_CHANNEL, CommandRequest, user_group
from supervision.bridge_host import build_bridge
from supervision.models import MonitoringSession

ORIGIN = b"http://127.0.0.1:8000"


@dataclass
class LiveBridge:
    pbx: FakePBX
    bridge: object
    layer: object

    async def restart_pbx(self, **kwargs):
        """A new simulated PBX on the same port (Asterisk restarted)."""
        self.pbx = FakePBX(port=self.pbx.port, **kwargs)
        await self.pbx.start()
        return self.pbx


async def wait_for(predicate, timeout=5.0, interval=0.01):
    """Poll until `predicate()` is true; the timeout only guards against a hang."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(interval)


@pytest.fixture
async def channel_layer():
    layer = get_channel_layer()
    await layer.flush()
    yield layer
    await layer.flush()


@pytest.fixture
async def live_bridge(channel_layer):
    """A started bridge logged in to a simulated PBX (idle scenario, every phone answers), with no
    command handlers: a test registers its own, or calls `bridge.install_command_modules()`."""
    pbx = FakePBX(port=0)
    await pbx.start()
    bridge = build_bridge(channel_layer, port=pbx.port, command_modules=())
    await bridge.start()
    await bridge.client.wait_until("up", timeout=5)
    stack = LiveBridge(pbx, bridge, channel_layer)
    yield stack
    await bridge.stop()
    await stack.pbx.stop()


def login_session_key(user):
    """A login session of `user` as `django.contrib.auth.login` leaves it (database sessions); the
    benches use it too."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


def _session_cookie(user):
    return f"{settings.SESSION_COOKIE_NAME}={login_session_key(user)}"


session_cookie = database_sync_to_async(_session_cookie)


async def open_dashboard(user=None, *, origin=ORIGIN, language=None, connect=True, path="/ws/dashboard/"):
    """A WebSocket client of the real ASGI stack (origin check, session auth, routing)."""
    from supervision.asgi import websocket_application

    headers = [(b"host", b"127.0.0.1:8000")]
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        headers.append((b"cookie", (await session_cookie(user)).encode()))
    if language:
        headers.append((b"accept-language", language.encode()))
    socket = WebsocketCommunicator(websocket_application, path, headers=headers)
    # The app task has not run yet, so the scope can still get what daphne would put there.
    socket.scope["client"] = ["127.0.0.1", 50000]
    if connect:
        connected, _code = await socket.connect(timeout=5)
        assert connected
    return socket


async def receive_until(socket, predicate, timeout=5.0):
    """Frames up to and including the first one matching `predicate` (heartbeats included)."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await socket.receive_from(timeout=timeout))
            frames.append(frame)
            if predicate(frame):
                return frames


def devices_in(frames):
    """Every device named anywhere in these frames' channels and diffs."""
    found = set()
    for frame in frames:
        for channel in frame.get("channels", []):
            found.add(channel["device"])
        for diff in frame.get("diffs", []):
            found.add(diff["channel"]["device"] if diff["op"] == "upsert" else diff["device"])
    return found


# --- the command modules' harness: a small roster, a bridge with every command module, each
# user's messages, presses handed to the bridge as the consumer hands them ------------------------

WAIT = 10.0  # seconds a condition may take before the test gives up (not a speed assertion)
AUTOANSWER = 'Variable: SIPADDHEADER="Call-Info:\\;answer-after=0"\r\n'


def _roster():
    def person(username, role, curator=None, first_name=""):
        return User.objects.create_user(username=username, password=None, role=role, curator=curator,
                                        first_name=first_name)

    c1 = person("petrova", Role.CURATOR, first_name="Olga")
    c2 = person("smirnov", Role.CURATOR, first_name="Ivan")
    t1 = person("anna", Role.TRAINEE, c1, first_name="Anna")
    t1050 = person("boris", Role.TRAINEE, c1, first_name="Boris")
    t2 = person("vera", Role.TRAINEE, c2, first_name="Vera")
    phones = {}
    for user, resource in [(c1, "104"), (t1, "105"), (t2, "106"), (c2, "107"), (t1050, "1050")]:
        phones[user.username] = Extension.objects.create(user=user, technology="SIP", resource=resource)
    return {u.username: u for u in [c1, c2, t1, t1050, t2]}, phones


@pytest.fixture
async def roster():
    """({username: User}, {username: Extension}): curators petrova (104) and smirnov (107), petrova's
    trainees anna (105) and boris (1050), smirnov's trainee vera (106)."""
    return await sync_to_async(_roster)()


@contextlib.asynccontextmanager
async def started_bridge(pbx, layer=None):
    """A bridge with the product's command modules, logged in to `pbx` (on its own in-memory layer
    unless given one), stopped afterwards."""
    bridge = build_bridge(layer or InMemoryChannelLayer(), host="127.0.0.1", port=pbx.port, username="dashboard",
                          secret="dashboard-demo")
    await bridge.spy_monitor.startup
    await bridge.start()
    await bridge.client.wait_until("up", timeout=WAIT)
    try:
        yield bridge
    finally:
        await bridge.stop()


@pytest.fixture
async def bridge(fakepbx, roster):
    """A started bridge with the product's command modules, on its own in-memory layer."""
    async with started_bridge(fakepbx) as bridge:
        yield bridge


class Inbox:
    """Everything the bridge sends to one user's dashboards; `states()` of its spy.status messages."""

    status = "spy.status"

    def __init__(self, layer, user_id):
        self.layer, self.user_id, self.messages, self.channel = layer, user_id, [], None

    async def open(self):
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(user_group(self.user_id), self.channel)
        return self

    async def next(self, **match):
        async with asyncio.timeout(WAIT):
            while True:
                message = (await self.layer.receive(self.channel))["message"]
                self.messages.append(message)
                if all(message.get(k) == v for k, v in match.items()):
                    return message

    def states(self):
        return [m["state"] for m in self.messages if m.get("type") == self.status]


class Statuses(Inbox):
    """The call.status messages (pickup, dial, playback) one user's pages receive."""

    status = "call.status"

    async def next(self, **match):
        return await super().next(type=self.status, **match)


async def until(condition):
    await wait_for(condition, timeout=WAIT)


async def ringing_call(pbx, bridge, device):
    """A customer call ringing `device` that nobody answers by himself, once the board has it."""
    name = await pbx.inbound_call(device, answer=False)
    await until(lambda: (bridge.board.channel(name) or {}).get("state") == "ringing")
    return name


async def press(bridge, user, command, client="192.0.2.7"):
    """A press handed straight to the command's handler (shape already checked, as by the consumer)."""
    await bridge.handlers[command["type"]](bridge, CommandRequest(bridge, command, user.pk, None, client))


async def press_on_page(bridge, user, command, language, client="192.0.2.7"):
    """A press the way the dashboard socket forwards it: over the channel layer, with its page's language."""
    await bridge.layer.send(BRIDGE_CHANNEL, {"type": "bridge.command", "command": command, "user_id": user.pk,
                                             "reply_to": None, "client": client, "language": language})


def originates(pbx):
    return [a for a in pbx.actions if a.get("Action") == "Originate"]


def raw_originate(pbx):
    return [r for r in pbx.raw_actions if r.startswith(b"Action: Originate\r\n")]


@sync_to_async
def rows(**filters):
    return list(MonitoringSession.objects.filter(**filters).order_by("pk").values())


@sync_to_async
def take_permission(role, codename):
    Group.objects.get(name=ROLE_GROUPS[role]).permissions.remove(
        Permission.objects.get(content_type__app_label="supervision", codename=codename))
