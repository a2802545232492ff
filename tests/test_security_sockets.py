"""An open socket lives only as long as its login session, and only the site's own pages open one.

Through the real ASGI stack (origin check, session auth, routing): a logout, a password change,
deactivation, deletion or expiry ends the socket with SESSION_ENDED_CLOSE_CODE, and a command on a
socket whose session is gone never reaches the bridge's channel (a press that rings a phone carries
its session, sealed, to the bridge, whose read refuses it: tests/test_press_queries.py)."""

import asyncio
import datetime
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import AsyncClient, override_settings
from django.utils import timezone

from accounts import sessions
from supervision import consumers
from supervision.bridge import BRIDGE_CHANNEL
from tests.live_stack import channel_layer, roster, session_cookie  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

SITE = b"http://127.0.0.1:8000"
BARGE = {"type": "spy", "target": 1, "mode": "barge"}
CLOSED = consumers.SESSION_ENDED_CLOSE_CODE


async def socket_of(cookie, *, origin=SITE, host=b"127.0.0.1:8000", path="/ws/dashboard/", scheme="ws", connect=True):
    from supervision.asgi import websocket_application

    headers = [(b"host", host), (b"cookie", cookie.encode())]
    if origin is not None:
        headers.append((b"origin", origin))
    socket = WebsocketCommunicator(websocket_application, path, headers=headers)
    socket.scope["client"] = ["127.0.0.1", 50000]
    socket.scope["scheme"] = scheme
    if connect:
        connected, _code = await socket.connect(timeout=5)
        assert connected
    return socket


async def closed_with(socket):
    """The code the server closed the socket with (frames before it are skipped)."""
    async with asyncio.timeout(10):
        while True:
            output = await socket.receive_output(timeout=10)
            if output["type"] == "websocket.close":
                return output.get("code")


async def nothing_reached_the_bridge(layer):
    """The bridge's channel holds nothing before a marker sent now (the layer keeps order)."""
    await layer.send(BRIDGE_CHANNEL, {"type": "test.marker"})
    first = await asyncio.wait_for(layer.receive(BRIDGE_CHANNEL), 5)
    return first["type"] == "test.marker"


async def drain_bridge(layer):
    await layer.send(BRIDGE_CHANNEL, {"type": "test.marker"})
    while (await asyncio.wait_for(layer.receive(BRIDGE_CHANNEL), 5))["type"] != "test.marker":
        pass


def session_key(cookie):
    return cookie.split("=", 1)[1]


async def log_out(cookie):
    client = AsyncClient()
    client.cookies["sessionid"] = session_key(cookie)
    response = await client.post("/logout/")
    assert response.status_code == 302


# --- what ends a socket ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/dashboard/", "/ws/library/"])
async def test_logout_closes_the_open_socket(channel_layer, roster, path):
    users, _phones = roster
    cookie = await session_cookie(users["petrova"])
    socket = await socket_of(cookie, path=path)
    await log_out(cookie)
    assert await closed_with(socket) == CLOSED


async def test_logout_ends_only_that_sessions_sockets(channel_layer, roster):
    users, _phones = roster
    office, home = await session_cookie(users["petrova"]), await session_cookie(users["petrova"])
    office_socket, home_socket = await socket_of(office), await socket_of(home)
    await log_out(office)
    assert await closed_with(office_socket) == CLOSED
    await home_socket.send_json_to({"type": "ping"})
    frame = await home_socket.receive_json_from(timeout=5)
    while frame["type"] != "pong":
        frame = await home_socket.receive_json_from(timeout=5)
    await home_socket.disconnect()


@pytest.mark.parametrize("change", ["password", "deactivated", "deleted"])
async def test_a_changed_user_loses_his_open_sockets(channel_layer, roster, change, fast_password_hashing):
    users, _phones = roster
    user = users["vera"]
    socket = await socket_of(await session_cookie(user))

    def apply():
        if change == "password":
            user.set_password("a-new-Password-9")
            user.save()
        elif change == "deactivated":
            user.is_active = False
            user.save()
        else:
            user.delete()

    await sync_to_async(apply)()
    assert await closed_with(socket) == CLOSED


async def test_a_command_on_a_session_that_ended_never_reaches_the_bridge(channel_layer, roster):
    """The session row is gone without any signal (deleted in the database, `clearsessions`): the
    command itself finds out, and nothing is forwarded. (A press that rings a phone carries its
    session to the bridge instead, whose one read refuses it: tests/test_press_queries.py.)"""
    users, _phones = roster
    cookie = await session_cookie(users["petrova"])
    socket = await socket_of(cookie)
    await drain_bridge(channel_layer)  # the socket's own snapshot request
    await sync_to_async(Session.objects.filter(session_key=session_key(cookie)).delete)()
    await socket.send_json_to({"type": "spy.stop", "session": 1})
    assert await closed_with(socket) == CLOSED
    assert await nothing_reached_the_bridge(channel_layer)


async def test_a_resync_on_an_expired_session_gets_no_board(channel_layer, roster):
    users, _phones = roster
    cookie = await session_cookie(users["petrova"])
    socket = await socket_of(cookie)
    await drain_bridge(channel_layer)
    past = timezone.now() - datetime.timedelta(seconds=1)
    await sync_to_async(Session.objects.filter(session_key=session_key(cookie)).update)(expire_date=past)
    await socket.send_json_to({"type": "resync"})
    assert await closed_with(socket) == CLOSED
    assert await nothing_reached_the_bridge(channel_layer)  # no snapshot was asked for


async def test_a_press_on_a_live_session_is_forwarded(channel_layer, roster):
    """With its session sealed into it: the bridge's read checks it; the key never crosses in clear."""
    users, _phones = roster
    cookie = await session_cookie(users["petrova"])
    socket = await socket_of(cookie)
    await drain_bridge(channel_layer)
    await socket.send_json_to(BARGE)
    message = await asyncio.wait_for(channel_layer.receive(BRIDGE_CHANNEL), 5)
    command = dict(message["command"])
    assert session_key(cookie) not in repr(message)
    assert sessions.unseal(command.pop(sessions.SEALED_FIELD)) == session_key(cookie)
    assert message["type"] == "bridge.command" and command == BARGE
    await socket.disconnect()


async def test_an_expired_session_closes_an_idle_socket(channel_layer, roster, monkeypatch):
    """No press, no signal: the periodic re-check ends it."""
    monkeypatch.setattr(consumers, "SESSION_RECHECK_SECONDS", 0.05)
    users, _phones = roster
    cookie = await session_cookie(users["petrova"])
    socket = await socket_of(cookie)
    past = timezone.now() - datetime.timedelta(seconds=1)
    await sync_to_async(Session.objects.filter(session_key=session_key(cookie)).update)(expire_date=past)
    assert await closed_with(socket) == CLOSED


# --- who may open one -------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [
    b"http://localhost:1234",  # another port of an allowed host
    b"https://127.0.0.1",  # another scheme
    b"http://127.0.0.1:8001",
    b"http://127.0.0.1",
    b"http://evil.example",
    b"null",
    b"",
])
async def test_only_the_sites_own_origin_opens_a_socket(channel_layer, roster, origin):
    users, _phones = roster
    socket = await socket_of(await session_cookie(users["petrova"]), origin=origin, connect=False)
    connected, _code = await socket.connect(timeout=5)
    assert not connected


async def test_a_handshake_without_origin_is_refused(channel_layer, roster):
    users, _phones = roster
    socket = await socket_of(await session_cookie(users["petrova"]), origin=None, connect=False)
    connected, _code = await socket.connect(timeout=5)
    assert not connected


async def test_a_host_outside_allowed_hosts_is_refused_even_with_its_own_origin(channel_layer, roster):
    users, _phones = roster
    socket = await socket_of(await session_cookie(users["petrova"]), host=b"evil.example:8000",
                             origin=b"http://evil.example:8000", connect=False)
    connected, _code = await socket.connect(timeout=5)
    assert not connected


@pytest.mark.parametrize("host,origin,scheme", [
    (b"127.0.0.1:8000", b"http://127.0.0.1:8000", "ws"),
    (b"localhost:8000", b"http://LOCALHOST:8000", "ws"),
    (b"127.0.0.1", b"https://127.0.0.1", "wss"),
    (b"127.0.0.1:443", b"https://127.0.0.1", "wss"),
])
async def test_the_sites_own_origin_is_accepted(channel_layer, roster, host, origin, scheme):
    users, _phones = roster
    socket = await socket_of(await session_cookie(users["petrova"]), host=host, origin=origin, scheme=scheme)
    await socket.disconnect()


async def test_a_trusted_origin_is_accepted(channel_layer, roster):
    users, _phones = roster
    with override_settings(CSRF_TRUSTED_ORIGINS=["https://dash.example.com:8443"]):
        good = await socket_of(await session_cookie(users["petrova"]), origin=b"https://dash.example.com:8443")
        await good.disconnect()
        bad = await socket_of(await session_cookie(users["petrova"]), origin=b"http://dash.example.com:8443",
                              connect=False)
        connected, _code = await bad.connect(timeout=5)
        assert not connected


def test_the_close_code_is_documented():
    from pathlib import Path

    protocol = (Path(__file__).resolve().parent.parent / "docs" / "websocket-protocol.md").read_text()
    assert f"**{CLOSED}**" in protocol
    assert json.dumps(CLOSED) in (Path(__file__).resolve().parent.parent / "static" / "supervision" / "dashboard.js").read_text()


async def test_behind_tls_only_the_https_origin_is_the_sites_own(channel_layer, roster):
    """DJANGO_HTTPS=1: the pages are https, so a page on http://same-host is another origin."""
    users, _phones = roster
    with override_settings(HTTPS=True):
        good = await socket_of(await session_cookie(users["petrova"]), host=b"127.0.0.1:8000",
                               origin=b"https://127.0.0.1:8000")
        await good.disconnect()
        bad = await socket_of(await session_cookie(users["petrova"]), origin=b"http://127.0.0.1:8000", connect=False)
        connected, _code = await bad.connect(timeout=5)
        assert not connected


async def test_a_wildcard_trusted_origin_admits_its_subdomains_only(channel_layer, roster):
    users, _phones = roster
    with override_settings(CSRF_TRUSTED_ORIGINS=["https://*.example.com"]):
        good = await socket_of(await session_cookie(users["petrova"]), origin=b"https://dash.example.com")
        await good.disconnect()
        for origin in (b"https://example.com.evil.net", b"http://dash.example.com", b"https://evilexample.com"):
            bad = await socket_of(await session_cookie(users["petrova"]), origin=origin, connect=False)
            connected, _code = await bad.connect(timeout=5)
            assert not connected, origin


async def test_two_origin_headers_are_refused(channel_layer, roster):
    from supervision.asgi import websocket_application

    users, _phones = roster
    headers = [(b"host", b"127.0.0.1:8000"), (b"cookie", (await session_cookie(users["petrova"])).encode()),
               (b"origin", SITE), (b"origin", b"http://evil.example")]
    socket = WebsocketCommunicator(websocket_application, "/ws/dashboard/", headers=headers)
    connected, _code = await socket.connect(timeout=5)
    assert not connected
