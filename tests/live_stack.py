"""Fixtures for the live stack: the simulated PBX over TCP, the real AMI client, the bridge and the
channel layer in the test's event loop, plus logged-in WebSocket clients of the real ASGI app.

Import the fixtures you use into a test module: `from tests.live_stack import live_bridge  # noqa: F401`.
"""

import asyncio
import json
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from supervision.ami.fakepbx import FakePBX
from supervision.bridge_host import build_bridge

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


def _session_cookie(user):
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


session_cookie = database_sync_to_async(_session_cookie)


async def open_dashboard(user=None, *, origin=ORIGIN, language=None, connect=True):
    """A WebSocket client of the real ASGI stack (origin check, session auth, routing)."""
    from supervision.asgi import websocket_application

    headers = [(b"host", b"127.0.0.1:8000")]
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        headers.append((b"cookie", (await session_cookie(user)).encode()))
    if language:
        headers.append((b"accept-language", language.encode()))
    socket = WebsocketCommunicator(websocket_application, "/ws/dashboard/", headers=headers)
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
