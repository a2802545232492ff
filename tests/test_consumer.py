"""The dashboard WebSocket through the real ASGI stack (origin check, session auth, routing) and a
real bridge on the simulated PBX over TCP: who may connect, what each user sees, bad input."""

import json

import pytest
from channels.db import database_sync_to_async

from accounts.demo import seed_demo_roster
from supervision import consumers, process_board
from supervision.bridge import BOARD_GROUP, BRIDGE_CHANNEL, user_group
from tests.live_stack import (  # noqa: F401
    channel_layer,
    devices_in,
    live_bridge,
    open_dashboard,
    receive_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
async def roster():
    return await database_sync_to_async(seed_demo_roster)()


def is_type(kind):
    return lambda frame: frame["type"] == kind


async def snapshot_of(socket):
    return (await receive_until(socket, is_type("snapshot")))[-1]


async def until_device(socket, device, state=None):
    """Frames until a diff shows a channel of `device` (in `state`, if given)."""

    def shows(frame):
        return frame["type"] == "diff" and any(
            d["op"] == "upsert" and d["channel"]["device"] == device and (state is None or d["channel"]["state"] == state)
            for d in frame["diffs"]
        )

    return await receive_until(socket, shows)


# --- who may connect ----------------------------------------------------------------------------


async def test_anonymous_socket_is_refused(channel_layer):
    socket = await open_dashboard(None, connect=False)
    connected, _code = await socket.connect(timeout=5)
    assert not connected


async def test_cross_origin_socket_is_refused(channel_layer, roster):
    socket = await open_dashboard(roster.users["petrova"], origin=b"http://evil.example", connect=False)
    connected, _code = await socket.connect(timeout=5)
    assert not connected


async def test_inactive_user_is_refused(channel_layer, roster):
    user = roster.users["sokolov"]
    user.is_active = False
    await database_sync_to_async(user.save)()
    socket = await open_dashboard(user, connect=False)
    connected, _code = await socket.connect(timeout=5)
    assert not connected


# --- what each user sees ------------------------------------------------------------------------


async def test_curator_gets_a_snapshot_of_his_team_then_live_diffs(live_bridge, roster):
    socket = await open_dashboard(roster.users["petrova"])
    snapshot = await snapshot_of(socket)
    assert snapshot["me"]["name"] == "Anna Petrova"
    assert [e["device"] for e in snapshot["me"]["extensions"]] == ["SIP/201"]
    assert snapshot["me"]["extensions"][0]["modes"] == []  # nobody monitors his own phone
    assert [p["name"] for p in snapshot["people"]] == ["Dmitry Ivanov", "Elena Kuznetsova", "Pavel Sokolov"]
    assert all(p["extensions"][0]["modes"] == ["listen", "whisper", "barge"] for p in snapshot["people"])
    assert snapshot["link"]["state"] == "up"
    assert snapshot["channels"] == []

    await live_bridge.pbx.inbound_call("SIP/101", caller_num="5550101", caller_name="Mr Smith")
    frames = await until_device(socket, "SIP/101", state="up")
    channel = [d["channel"] for d in frames[-1]["diffs"] if d["op"] == "upsert" and d["channel"]["device"] == "SIP/101"][0]
    assert channel["connected_num"] == "5550101"
    seqs = [f["seq"] for f in frames if f["type"] == "diff"]
    assert seqs == sorted(seqs) and seqs[0] > snapshot["seq"]

    await live_bridge.pbx.hangup(channel["name"])
    await receive_until(socket, lambda f: f["type"] == "diff" and any(d["op"] == "remove" and d["name"] == channel["name"] for d in f["diffs"]))
    await socket.disconnect()


async def test_a_trainee_never_receives_another_teams_call(live_bridge, roster):
    # A call on Igor Smirnov's trainee (SIP/104) is live before and while Dmitry (Anna's team) watches.
    await live_bridge.pbx.inbound_call("SIP/104")
    socket = await open_dashboard(roster.users["ivanov"])
    snapshot = await snapshot_of(socket)
    assert [p["name"] for p in snapshot["people"]] == ["Anna Petrova"]
    assert [p["extensions"][0]["modes"] for p in snapshot["people"]] == [["listen"]]
    await live_bridge.pbx.inbound_call("SIP/105")  # the other team again, while connected
    await live_bridge.pbx.inbound_call("SIP/201")  # his curator: visible
    frames = [snapshot] + await until_device(socket, "SIP/201", state="up")
    seen = devices_in(frames)
    assert "SIP/201" in seen
    assert seen <= {"SIP/101", "SIP/201"}
    assert "SIP/trunk" not in json.dumps(frames)  # not even the customer's leg bridged to it
    await socket.disconnect()


async def test_fifty_dashboards_share_one_ami_session(live_bridge, roster):
    sockets = []
    for index in range(50):
        user = roster.users[["petrova", "smirnov", "ivanov", "admin", "popova"][index % 5]]
        socket = await open_dashboard(user)
        sockets.append(socket)
    for socket in sockets:
        await snapshot_of(socket)
    assert live_bridge.pbx.sessions == 1
    await live_bridge.pbx.inbound_call("SIP/102")
    await until_device(sockets[0], "SIP/102")  # petrova's
    await until_device(sockets[3], "SIP/102")  # admin's
    assert live_bridge.pbx.sessions == 1
    for socket in sockets:
        await socket.disconnect()


async def test_link_state_reaches_the_browser_when_the_pbx_goes_away_and_comes_back(live_bridge, roster):
    socket = await open_dashboard(roster.users["admin"])
    await snapshot_of(socket)
    await live_bridge.pbx.stop()
    frames = await receive_until(socket, lambda f: f["type"] == "link" and f["link"]["state"] in ("down", "connecting"))
    assert frames[-1]["link"]["since"]
    await live_bridge.restart_pbx()
    await receive_until(socket, lambda f: f["type"] == "link" and f["link"]["state"] == "up", timeout=15)
    await socket.disconnect()


# --- without a bridge (the hand-over itself: tests/test_process_board.py) --------------------------


async def test_without_a_bridge_the_page_is_told(channel_layer, roster, monkeypatch):
    monkeypatch.setattr(process_board, "SNAPSHOT_WAIT_SECONDS", 0.05)
    socket = await open_dashboard(roster.users["petrova"])
    frame = (await receive_until(socket, is_type("link")))[-1]
    assert frame["link"]["state"] == "no_bridge"
    await socket.disconnect()


# --- browser -> server --------------------------------------------------------------------------


BAD_FRAMES = [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_message"),
    ('{"type": 5}', "bad_message"),
    ('{"type": "launch.missiles"}', "unknown_type"),
    ('{"type": "spy", "target": "7", "mode": "listen"}', "bad_field"),
    ('{"type": "spy", "target": true, "mode": "listen"}', "bad_field"),
    ('{"type": "spy", "target": 7, "mode": "shout"}', "bad_field"),
    ('{"type": "spy", "mode": "listen"}', "missing_field"),
    ('{"type": "spy", "target": 7, "mode": "listen", "channel": "SIP/105"}', "bad_field"),
    ('{"type": "spy.stop", "session": -1}', "bad_field"),
    ('{"type": "spy.switch", "session": 3, "mode": null}', "bad_field"),
    ('{"type": "dial", "number": ""}', "bad_field"),
    ('{"type": "playback", "recording": "%s"}' % ("x" * 200), "bad_field"),
    ('{"type": "playback", "recording": "3"}', "bad_field"),  # an id is a number
    ('{"type": "playback", "recording": 0}', "bad_field"),
    ('{"type": "ack", "seq": -1}', "bad_field"),
    ('{"type": "ack", "seq": "5"}', "bad_field"),
    ('{"type": "ack", "seq": true}', "bad_field"),
    ('{"type": "ack"}', "bad_field"),
    ('{"type": "ack", "seq": 5, "more": 1}', "bad_field"),
    ('{"type": "hello", "acks": "yes"}', "bad_field"),
    ('{"type": "hello"}', "bad_field"),
    ('{"type": "ping", "pad": "%s"}' % ("x" * 5000), "too_big"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES)
async def test_bad_input_gets_an_error_and_the_socket_stays_usable(channel_layer, roster, frame, code):
    socket = await open_dashboard(roster.users["petrova"])
    await socket.send_to(text_data=frame)
    error = (await receive_until(socket, is_type("error")))[-1]
    assert error["code"] == code
    assert error["message"]
    await socket.send_json_to({"type": "ping"})
    await receive_until(socket, is_type("pong"))
    await socket.disconnect()


async def test_binary_frames_are_refused_politely(channel_layer, roster):
    socket = await open_dashboard(roster.users["petrova"])
    await socket.send_to(bytes_data=b"\x00\x01")
    assert (await receive_until(socket, is_type("error")))[-1]["code"] == "bad_frame"
    await socket.disconnect()


async def test_errors_speak_the_browsers_language(channel_layer, roster):
    socket = await open_dashboard(roster.users["petrova"], language="ru-RU,ru;q=0.9")
    await socket.send_to(text_data="{oops")
    error = (await receive_until(socket, is_type("error")))[-1]
    assert error["message"] != "The message is not valid JSON."
    await socket.disconnect()


async def test_commands_go_to_the_bridge_with_user_and_address_and_replies_come_back(live_bridge, roster):
    received = []

    async def handle_spy(bridge, request):
        received.append(request)
        await request.reply({"type": "spy.status", "session": 11, "target": request.command["target"], "state": "queued", "text": "Calling your phone"})
        await bridge.notify_user(request.user_id, {"type": "monitored", "by": "test", "active": False})

    live_bridge.bridge.register("spy", handle_spy)
    petrova = roster.users["petrova"]
    target = roster.extensions["ivanov"].pk
    socket = await open_dashboard(petrova)
    await snapshot_of(socket)
    await socket.send_json_to({"type": "spy", "target": target, "mode": "whisper"})
    status = (await receive_until(socket, is_type("spy.status")))[-1]
    assert status == {"type": "spy.status", "session": 11, "target": target, "state": "queued", "text": "Calling your phone"}
    await receive_until(socket, is_type("monitored"))
    (request,) = received
    # The press's login session rides along sealed (its read at the bridge checks it).
    assert {key: value for key, value in request.command.items() if key != "sealed_session"} == \
        {"type": "spy", "target": target, "mode": "whisper"}
    assert request.user_id == petrova.pk
    assert request.client == "127.0.0.1"

    # a command type no handler took: an error, the socket goes on
    await socket.send_json_to({"type": "pickup", "target": target})
    assert (await receive_until(socket, is_type("error")))[-1]["code"] == "unknown_command"
    await socket.disconnect()


async def test_resync_sends_a_fresh_snapshot(live_bridge, roster):
    socket = await open_dashboard(roster.users["smirnov"])
    await snapshot_of(socket)
    await live_bridge.pbx.inbound_call("SIP/105")
    await until_device(socket, "SIP/105", state="up")
    await socket.send_json_to({"type": "resync"})
    snapshot = await snapshot_of(socket)
    assert [c["device"] for c in snapshot["channels"]] == ["SIP/105"]
    await socket.disconnect()


async def test_user_group_messages_reach_only_that_users_dashboards(live_bridge, roster):
    anna = await open_dashboard(roster.users["petrova"])
    dmitry = await open_dashboard(roster.users["ivanov"])
    await snapshot_of(anna)
    await snapshot_of(dmitry)
    await live_bridge.bridge.notify_user(roster.users["ivanov"].pk, {"type": "monitored", "by": "Anna Petrova", "mode": "listen", "active": True})
    frame = (await receive_until(dmitry, is_type("monitored")))[-1]
    assert frame["by"] == "Anna Petrova"
    await live_bridge.layer.group_send(user_group(roster.users["petrova"].pk), {"type": "user.message", "message": {"type": "marker"}})
    frames = await receive_until(anna, is_type("marker"))
    assert not [f for f in frames if f["type"] == "monitored"]
    await anna.disconnect()
    await dmitry.disconnect()


async def test_handlers_answer_in_the_language_of_the_page_that_pressed(live_bridge, roster):
    from django.utils.translation import gettext

    async def handle_pickup(_bridge, request):
        await request.reply({"type": "pickup.status", "text": gettext("Stop")})

    live_bridge.bridge.register("pickup", handle_pickup)
    socket = await open_dashboard(roster.users["petrova"], language="ru")
    await snapshot_of(socket)
    await socket.send_json_to({"type": "pickup", "target": roster.extensions["ivanov"].pk})
    assert (await receive_until(socket, is_type("pickup.status")))[-1]["text"] == "Стоп"
    await socket.disconnect()


async def test_a_roster_change_reaches_open_dashboards(channel_layer, live_bridge, roster, monkeypatch):
    monkeypatch.setattr(consumers, "ROSTER_CHANGE_SPREAD_SECONDS", 0)
    socket = await open_dashboard(roster.users["petrova"])
    assert "Pavel Sokolov" in [p["name"] for p in (await snapshot_of(socket))["people"]]

    def move_sokolov_to_smirnov():
        sokolov = roster.users["sokolov"]
        sokolov.curator = roster.users["smirnov"]
        sokolov.save()

    await database_sync_to_async(move_sokolov_to_smirnov)()
    snapshot = await snapshot_of(socket)
    assert [p["name"] for p in snapshot["people"]] == ["Dmitry Ivanov", "Elena Kuznetsova"]
    # and his phone's calls no longer reach Anna
    await live_bridge.pbx.inbound_call("SIP/103")
    await live_bridge.pbx.inbound_call("SIP/101")
    frames = await until_device(socket, "SIP/101", state="up")
    assert "SIP/103" not in devices_in(frames)
    await socket.disconnect()


async def test_a_permission_taken_from_a_group_reaches_open_dashboards(channel_layer, live_bridge, roster, monkeypatch):
    from accounts.models import Role
    from tests.live_stack import take_permission

    monkeypatch.setattr(consumers, "ROSTER_CHANGE_SPREAD_SECONDS", 0)
    socket = await open_dashboard(roster.users["petrova"])
    cards = {p["name"]: p for p in (await snapshot_of(socket))["people"]}
    assert cards["Dmitry Ivanov"]["extensions"][0]["modes"] == ["listen", "whisper", "barge"]

    await take_permission(Role.CURATOR, "barge")
    cards = {p["name"]: p for p in (await snapshot_of(socket))["people"]}
    assert cards["Dmitry Ivanov"]["extensions"][0]["modes"] == ["listen", "whisper"]
    await socket.disconnect()


async def test_the_library_socket_plays_and_hears_its_answers_but_nothing_of_the_board(channel_layer, roster):
    with pytest.raises(AssertionError):  # no login, no socket
        await open_dashboard(None, path="/ws/library/")
    socket = await open_dashboard(roster.users["ivanov"], path="/ws/library/")

    await socket.send_json_to({"type": "spy", "target": roster.extensions["petrova"].pk, "mode": "listen"})
    refused = json.loads(await socket.receive_from(timeout=5))
    assert (refused["type"], refused["code"]) == ("error", "unknown_type")
    await socket.send_json_to({"type": "playback", "recording": 7})
    command = await channel_layer.receive(BRIDGE_CHANNEL)  # the first the bridge hears: no snapshot request
    forwarded = {key: value for key, value in command["command"].items() if key != "sealed_session"}
    assert command["type"] == "bridge.command" and forwarded == {"type": "playback", "recording": 7}
    assert command["user_id"] == roster.users["ivanov"].pk

    await channel_layer.group_send(user_group(roster.users["ivanov"].pk),
                                   {"type": "user.message", "message": {"type": "call.status", "state": "playing"}})
    assert json.loads(await socket.receive_from(timeout=5)) == {"type": "call.status", "state": "playing"}
    await channel_layer.group_send(BOARD_GROUP, {"type": "board.link", "link": {"state": "up"}})
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()
