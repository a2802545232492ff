"""Help requests through the real dashboard socket (ASGI stack, channel layer, a bridge with every
command module on the simulated PBX over TCP): the socket's shape checks for the new commands, the
bridge knowing who has a dashboard open, and a raised hand reaching the curator's open dashboards
and a dashboard of his opened later."""

import pytest
from channels.db import database_sync_to_async

from accounts.demo import seed_demo_roster
from tests.live_stack import channel_layer, open_dashboard, receive_until, started_bridge, until  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
async def roster():
    return await database_sync_to_async(seed_demo_roster)()


@pytest.fixture
async def bridge(fakepbx, channel_layer, roster):  # noqa: F811
    fakepbx.set_phone("SIP/101", "answer", ring_seconds=0)
    async with started_bridge(fakepbx, channel_layer) as bridge:
        yield bridge


def is_help(state=None):
    return lambda frame: frame["type"] == "help" and (state is None or frame["state"] == state)


def is_type(kind):
    return lambda frame: frame["type"] == kind


@pytest.mark.parametrize(("frame", "code"), [
    ({"type": "help.raise", "target": 5}, "bad_field"),  # the page names no call, nor a phone
    ({"type": "help.raise", "uniqueid": "1795690330.20"}, "bad_field"),
    ({"type": "help.cancel"}, "missing_field"),
    ({"type": "help.cancel", "request": "3"}, "bad_field"),
    ({"type": "help.cancel", "request": 0}, "bad_field"),
    # Only the server's own sockets say who is online: from a page it is no message at all.
    ({"type": "presence", "state": "here", "socket": "x", "role": "admin"}, "unknown_type"),
])
async def test_bad_help_commands_are_refused_by_the_socket(channel_layer, roster, frame, code):  # noqa: F811
    socket = await open_dashboard(roster.users["ivanov"])
    await socket.send_json_to(frame)
    error = (await receive_until(socket, is_type("error")))[-1]
    assert error["code"] == code and error["message"]
    await socket.disconnect()


async def test_an_open_dashboard_makes_its_user_online_at_the_bridge(bridge, roster):
    petrova = roster.users["petrova"].pk
    first = await open_dashboard(roster.users["petrova"])
    await until(lambda: bridge.presence.online(petrova))
    assert bridge.presence.role(petrova) == "curator"
    second = await open_dashboard(roster.users["petrova"])
    await until(lambda: len(bridge.presence.sockets.get(petrova, {})) == 2)
    await first.disconnect()
    await until(lambda: len(bridge.presence.sockets.get(petrova, {})) == 1)
    assert bridge.presence.online(petrova)
    await second.disconnect()
    await until(lambda: not bridge.presence.online(petrova))


async def test_a_raised_hand_reaches_the_curators_dashboards(bridge, fakepbx, roster):
    curator = await open_dashboard(roster.users["petrova"])
    await receive_until(curator, is_type("snapshot"))
    trainee = await open_dashboard(roster.users["ivanov"])
    await receive_until(trainee, is_type("snapshot"))
    other = await open_dashboard(roster.users["smirnov"])
    await receive_until(other, is_type("snapshot"))
    await until(lambda: bridge.presence.online(roster.users["petrova"].pk))
    agent = await fakepbx.inbound_call("SIP/101")
    await until(lambda: (bridge.board.channel(agent) or {}).get("state") == "up")

    await trainee.send_json_to({"type": "help.raise"})

    shown = (await receive_until(curator, is_help("open")))[-1]
    assert (shown["trainee_name"], shown["target"]) == ("Dmitry Ivanov", roster.extensions["ivanov"].pk)
    assert (await receive_until(trainee, is_help("open")))[-1]["notified"] == "curator"
    # A dashboard of hers opened now shows it too, right after its snapshot.
    later = await open_dashboard(roster.users["petrova"])
    frames = await receive_until(later, is_help("open"))
    assert [f["type"] for f in frames].index("snapshot") < len(frames) - 1

    await trainee.send_json_to({"type": "help.cancel", "request": shown["request"]})
    await receive_until(curator, is_help("cancelled"))
    await receive_until(later, is_help("cancelled"))
    await other.send_json_to({"type": "ping"})
    assert not [f for f in await receive_until(other, is_type("pong")) if f["type"] == "help"]
    for socket in (curator, trainee, other, later):
        await socket.disconnect()
