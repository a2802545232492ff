"""The bridge over real TCP to the simulated PBX: the board's stream and snapshots (what a web server
process's replica follows), link state, the resync after a reconnect, and the command plug-in
interface."""

import asyncio
import json
import textwrap

import pytest

from supervision import bridge as bridge_module
from supervision.bridge import BRIDGE_CHANNEL, STREAM_GROUP, Bridge, user_group
from supervision.bridge_host import build_bridge
from supervision.replica import BoardReplica, Gap
from tests.live_stack import channel_layer, live_bridge, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(30)


async def listen(layer, *groups):
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return channel


async def next_message(layer, channel, kind, timeout=5.0):
    async with asyncio.timeout(timeout):
        while True:
            message = await layer.receive(channel)
            if message["type"] == kind:
                return message


async def ask_snapshot(layer, channel):
    await layer.send(BRIDGE_CHANNEL, {"type": "bridge.snapshot", "reply_to": channel})
    return await next_message(layer, channel, "board.snapshot")


def snapshot_channels(snapshot):
    return [json.loads(text) for _name, _device, text in snapshot["board"]]


def stream_devices(message):
    return {device for device, _seq, _items, _frame in message["parts"]}


async def test_snapshot_plus_stream_equals_a_fresh_snapshot(live_bridge):
    layer = live_bridge.layer
    watcher = await listen(layer, STREAM_GROUP)
    first = await ask_snapshot(layer, watcher)
    assert first["board"] == []
    assert first["link"]["state"] == "up"
    replica = BoardReplica()
    replica.load(first)

    name = await live_bridge.pbx.inbound_call("SIP/101", caller_num="5550001", caller_name="Customer One")
    while not any(c["name"] == name and c["state"] == "up" for c in replica.channels()):
        message = await next_message(layer, watcher, "board.stream")
        assert message["prev"] <= replica.seq  # nothing lost in between
        for device, seq, _items, frame in replica.apply(message):
            diff = json.loads(frame)  # the page's own frame, ready-made
            assert diff["type"] == "diff" and diff["seq"] == seq
            assert {d["channel"]["device"] if d["op"] == "upsert" else d["device"] for d in diff["diffs"]} == {device}
    # Everything queued before the snapshot reaches this channel before it (one outbound queue).
    await layer.send(BRIDGE_CHANNEL, {"type": "bridge.snapshot", "reply_to": watcher})
    while (message := await layer.receive(watcher))["type"] != "board.snapshot":
        if message["type"] == "board.stream":
            replica.apply(message)
    assert message["seq"] == replica.seq
    assert sorted(snapshot_channels(message), key=lambda c: c["name"]) == sorted(replica.channels(), key=lambda c: c["name"])
    assert any(c["connected_num"] == "5550001" for c in replica.channels() if c["device"] == "SIP/101")
    assert message["epoch"] == first["epoch"] == live_bridge.bridge.epoch


async def test_snapshot_requests_waiting_in_the_outbox_are_answered_once(live_bridge):
    layer, bridge = live_bridge.layer, live_bridge.bridge
    watcher = await layer.new_channel()
    await bridge.drain()
    for _ in range(5):  # the bridge reads them all before its publisher runs
        bridge._dispatch({"type": "bridge.snapshot", "reply_to": watcher})
    await bridge.drain()
    answers = []
    while True:
        try:
            answers.append(await asyncio.wait_for(layer.receive(watcher), 0.2))
        except TimeoutError:
            break
    assert [answer["type"] for answer in answers] == ["board.snapshot"]
    assert (await ask_snapshot(layer, watcher))["type"] == "board.snapshot"  # answered again once sent


async def test_a_burst_the_layer_cannot_take_drops_queued_diffs_and_leaves_a_hole(live_bridge, monkeypatch):
    """The outbox keeps at most STREAM_BACKLOG_PARTS diffs: past it they are dropped (a replica sees
    the hole and resyncs) instead of growing without bound."""
    layer, bridge = live_bridge.layer, live_bridge.bridge
    monkeypatch.setattr(bridge_module, "STREAM_BACKLOG_PARTS", 3)
    watcher = await listen(layer, STREAM_GROUP)
    replica = BoardReplica()
    replica.load(await ask_snapshot(layer, watcher))
    gate = asyncio.Event()
    send = layer.group_send_owned

    async def slow_layer(group, message):
        await gate.wait()
        await send(group, message)

    monkeypatch.setattr(layer, "group_send_owned", slow_layer)
    for device in ("SIP/101", "SIP/102", "SIP/103", "SIP/104"):
        await live_bridge.pbx.inbound_call(device)
    await wait_for(lambda: bridge.stream_drops)
    assert bridge._stream_backlog <= 3  # dropped, not kept
    gate.set()
    await live_bridge.pbx.inbound_call("SIP/105")  # a change after the burst: its message shows the hole
    await bridge.drain()
    with pytest.raises(Gap):
        while True:
            replica.apply(await next_message(layer, watcher, "board.stream"))


async def test_link_goes_down_when_the_pbx_stops_and_up_with_the_board_rebuilt(live_bridge):
    layer = live_bridge.layer
    watcher = await listen(layer, STREAM_GROUP)
    await live_bridge.pbx.stop()
    down = await next_message(layer, watcher, "board.link")
    while down["link"]["state"] not in ("down", "connecting"):
        down = await next_message(layer, watcher, "board.link")
    assert down["link"]["since"] is not None

    pbx = await live_bridge.restart_pbx()
    await pbx.inbound_call("SIP/102")  # a call that started while the dashboard was away
    async with asyncio.timeout(15):
        while True:
            link = (await next_message(layer, watcher, "board.link", timeout=15))["link"]
            if link["state"] == "up":
                break
    assert link["resync"] == "done"
    snapshot = await ask_snapshot(layer, watcher)
    assert [device for _name, device, _text in snapshot["board"]].count("SIP/102") >= 1


async def test_coreshowchannels_refused_is_said_and_events_still_flow(channel_layer):
    from fakepbx import FakePBX

    pbx = FakePBX(port=0, users={"dashboard": {"secret": "dashboard-demo", "read": "call", "write": "originate"}})
    await pbx.start()
    bridge = build_bridge(channel_layer, port=pbx.port, command_modules=())
    watcher = await listen(channel_layer, STREAM_GROUP)
    await bridge.start()
    try:
        await bridge.client.wait_until("up", timeout=5)
        snapshot = await ask_snapshot(channel_layer, watcher)
        assert snapshot["link"]["resync"] == "not_permitted"
        assert "denied" in snapshot["link"]["resync_detail"].lower()
        await pbx.inbound_call("SIP/103")
        devices = set()
        while "SIP/103" not in devices:
            devices |= stream_devices(await next_message(channel_layer, watcher, "board.stream"))
    finally:
        await bridge.stop()
        await pbx.stop()


async def test_a_registered_handler_gets_the_command_and_replies(live_bridge):
    layer, bridge = live_bridge.layer, live_bridge.bridge
    seen = []

    async def handle_spy(bridge_, request):
        seen.append((bridge_, request.command, request.user_id, request.client))
        await request.reply({"type": "spy.status", "session": 1, "target": request.command["target"], "state": "queued", "text": "ok"})

    bridge.register("spy", handle_spy)
    browser = await layer.new_channel()
    command = {"type": "spy", "target": 7, "mode": "listen"}
    await layer.send(BRIDGE_CHANNEL, {"type": "bridge.command", "command": command, "user_id": 3, "reply_to": browser, "client": "10.0.0.5"})
    reply = await next_message(layer, browser, "user.message")
    assert reply["message"]["type"] == "spy.status"
    assert seen == [(bridge, command, 3, "10.0.0.5")]


async def test_unknown_commands_and_failing_handlers_get_an_error_and_the_bridge_goes_on(live_bridge):
    layer, bridge = live_bridge.layer, live_bridge.bridge

    async def broken(_bridge, _request):
        raise RuntimeError("bug in a handler")

    bridge.register("pickup", broken)
    browser = await layer.new_channel()
    await layer.send(BRIDGE_CHANNEL, {"type": "bridge.command", "command": {"type": "nosuch"}, "user_id": 1, "reply_to": browser})
    unknown = await next_message(layer, browser, "user.message")
    assert unknown["message"]["code"] == "unknown_command"
    await layer.send(BRIDGE_CHANNEL, {"type": "bridge.command", "command": {"type": "pickup", "target": 1}, "user_id": 1, "reply_to": browser})
    failed = await next_message(layer, browser, "user.message")
    assert failed["message"] == {"type": "error", "code": "internal", "message": "The command failed on the server."}
    await layer.send(BRIDGE_CHANNEL, {"type": "bridge.command", "command": "not a dict", "user_id": 1, "reply_to": browser})
    assert (await next_message(layer, browser, "user.message"))["message"]["code"] == "unknown_command"
    await layer.send(BRIDGE_CHANNEL, {"type": "no.such.request"})
    assert (await ask_snapshot(layer, browser))["link"]["state"] == "up"


async def test_event_listeners_see_events_after_the_board_and_their_errors_are_contained(live_bridge):
    bridge = live_bridge.bridge
    seen = []

    def broken(_msg):
        raise ValueError("listener bug")

    async def watching(msg):
        if msg.event == "Newchannel":
            seen.append(bridge.board.channel(msg["Channel"]) is not None)

    bridge.add_event_listener(broken)
    bridge.add_event_listener(watching)
    await live_bridge.pbx.inbound_call("SIP/104")
    await wait_for(lambda: seen)
    assert seen[0] is True


async def test_notify_user_reaches_that_users_group_only(live_bridge):
    layer, bridge = live_bridge.layer, live_bridge.bridge
    anna = await listen(layer, user_group(5))
    igor = await listen(layer, user_group(6))
    await bridge.notify_user(5, {"type": "monitored", "by": "Anna", "mode": "listen", "active": True})
    message = await next_message(layer, anna, "user.message")
    assert message["message"]["by"] == "Anna"
    await bridge.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(igor), 0.2)


def test_command_modules_missing_are_skipped_but_their_own_import_errors_are_not(tmp_path, monkeypatch):
    (tmp_path / "commands_with_bug.py").write_text("import no_such_dependency_for_this_test\n")
    (tmp_path / "commands_ok.py").write_text(
        textwrap.dedent(
            """
            async def handle(bridge, request):
                pass

            def install(bridge):
                bridge.register("playback", handle)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    class QuietClient:
        def on_event(self, _cb): ...
        def on_link(self, _cb): ...
        def on_login(self, _cb): ...

    bridge = Bridge(QuietClient(), board=None, layer=None)
    bridge.install_command_modules(["supervision.no_such_commands", "commands_ok"])
    assert set(bridge.handlers) == {"playback"}
    with pytest.raises(ModuleNotFoundError):
        bridge.install_command_modules(["commands_with_bug"])
    assert bridge_module.COMMAND_MODULES  # the product's list is there for others to extend


async def test_the_ami_bridge_command_serves_web_servers_through_redis(redis_url, tmp_path):
    """`manage.py ami_bridge` in its own process: snapshots and diffs reach another process via Redis."""
    import os
    import secrets
    import subprocess
    import sys
    from pathlib import Path

    from channels_redis.core import RedisChannelLayer

    from fakepbx import FakePBX

    root = Path(__file__).resolve().parent.parent
    prefix = f"test-{secrets.token_hex(4)}"
    pbx = FakePBX(port=0)
    await pbx.start()
    env = {**os.environ, "REDIS_URL": redis_url, "CHANNEL_LAYER_PREFIX": prefix, "AMI_PORT": str(pbx.port),
           "AMI_BRIDGE": "external", "DASHBOARD_VAR_DIR": str(tmp_path), "DATABASE_URL": "", "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, str(root / "manage.py"), "migrate", "-v", "0"], env=env, cwd=root, check=True)
    process = subprocess.Popen([sys.executable, str(root / "manage.py"), "ami_bridge"], env=env, cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    layer = RedisChannelLayer(hosts=[redis_url], prefix=prefix)
    try:
        watcher = await listen(layer, STREAM_GROUP)
        async with asyncio.timeout(20):
            while pbx.sessions != 1:
                await asyncio.sleep(0.05)
            # Logged in is not up yet: the link is said up once the board is rebuilt (the heartbeat
            # repeats it every 5 s, so one that went out before this joined comes again).
            while (await next_message(layer, watcher, "board.link", timeout=20))["link"]["state"] != "up":
                pass
        snapshot = await ask_snapshot(layer, watcher)
        assert snapshot["link"]["state"] == "up"
        await pbx.inbound_call("SIP/101")
        stream = await next_message(layer, watcher, "board.stream")
        while "SIP/101" not in stream_devices(stream):
            stream = await next_message(layer, watcher, "board.stream")
        assert stream["seq"] > snapshot["seq"] and stream["epoch"] == snapshot["epoch"]
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0].decode()
        await layer.flush()
        await pbx.stop()
    assert process.returncode == 0, output
    assert "AMI bridge to 127.0.0.1" in output
