"""Phone state through the real pieces: the simulated PBX over TCP, the AMI client, the bridge (its
DeviceStateList at login, the phone diffs in its stream beside that phone's channels) and a dashboard socket of the
real ASGI stack, whose snapshot carries only the phones its user may see."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from accounts.demo import seed_demo_roster
from supervision.bridge import BRIDGE_CHANNEL, STREAM_GROUP
from supervision.bridge_host import build_bridge
from tests.live_stack import channel_layer, live_bridge, open_dashboard, receive_until, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(60)


async def listen(layer, *groups):
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return channel


_unread = {}  # channel -> phone records of messages already received, not yet asked for


async def next_phone(layer, channel, device, timeout=5.0):
    """The next phone record the bridge publishes for `device` (one stream message may carry
    several changes: they are read in order)."""
    unread = _unread.setdefault(channel, [])
    async with asyncio.timeout(timeout):
        while True:
            while unread:
                part_device, diff = unread.pop(0)
                if diff["device"] == device:
                    assert part_device == device  # in that phone's part, with its channels
                    return diff["phone"]
            message = await layer.receive(channel)
            if message["type"] != "board.stream":
                continue
            for part_device, _seq, _items, frame in message["parts"]:
                unread += [(part_device, diff) for diff in json.loads(frame)["diffs"] if diff["op"] == "phone"]


async def snapshot(layer, channel):
    await layer.send(BRIDGE_CHANNEL, {"type": "bridge.snapshot", "reply_to": channel})
    async with asyncio.timeout(5):
        while True:
            message = await layer.receive(channel)
            if message["type"] == "board.snapshot":
                return message


async def test_the_bridge_lists_device_states_at_login_and_publishes_each_change(live_bridge):
    layer, bridge, pbx = live_bridge.layer, live_bridge.bridge, live_bridge.pbx
    assert bridge.link_state()["phone_list"] == "done"
    watcher = await listen(layer, STREAM_GROUP)

    pbx.set_phone("SIP/102", "answer")
    pbx.phone_gone("SIP/102")
    phone = await next_phone(layer, watcher, "SIP/102")  # PeerStatus Unreachable: offline at once
    assert (phone["reach"], phone["presence"]) == ("unreachable", "offline")
    phone = await next_phone(layer, watcher, "SIP/102")  # then DeviceStateChange UNAVAILABLE
    assert (phone["state"], phone["reach"], phone["presence"]) == ("unavailable", "unreachable", "offline")
    assert {p["device"]: p["presence"] for p in (await snapshot(layer, watcher))["phones"]}["SIP/102"] == "offline"

    pbx.phone_back("SIP/102")
    phone = await next_phone(layer, watcher, "SIP/102")
    while phone["presence"] != "online":  # PeerStatus Reachable, then DeviceStateChange NOT_INUSE
        phone = await next_phone(layer, watcher, "SIP/102")
    assert phone["reach"] == "reachable"

    # A call that ends leaves its phone idle from that moment (the board's clock).
    name = await pbx.inbound_call("SIP/103")
    await wait_for(lambda: bridge.board.channel(name) is not None)
    await pbx.hangup(name)
    phone = await next_phone(layer, watcher, "SIP/103")
    assert phone["idle_since"] is not None and phone["presence"] == "unknown"


async def test_a_user_without_the_right_to_list_gets_unknown_phones_and_still_the_device_events(channel_layer):
    from fakepbx import FakePBX

    # The article's user: read=call, write=originate. No DeviceStateList, no PeerStatus (system).
    pbx = FakePBX(port=0, users={"dashboard": {"secret": "dashboard-demo", "read": "call", "write": "originate"}})
    pbx.set_phone("SIP/102", "answer")
    await pbx.start()
    bridge = build_bridge(channel_layer, port=pbx.port, command_modules=())
    watcher = await listen(channel_layer, STREAM_GROUP)
    await bridge.start()
    try:
        await bridge.client.wait_until("up", timeout=5)
        await wait_for(lambda: bridge.link_state()["phone_list"] != "pending")
        assert bridge.link_state()["phone_list"] == "not_permitted"
        assert (await snapshot(channel_layer, watcher))["phones"] == []
        pbx.phone_gone("SIP/102")
        phone = await next_phone(channel_layer, watcher, "SIP/102")
        # DeviceStateChange (class call) still says the phone is gone; qualify's words never came.
        assert (phone["state"], phone["reach"], phone["presence"]) == ("unavailable", None, "offline")
    finally:
        await bridge.stop()
        await pbx.stop()


@pytest.mark.django_db(transaction=True)
async def test_a_dashboard_snapshot_carries_only_the_phones_its_user_may_see(live_bridge):
    roster = await database_sync_to_async(seed_demo_roster)()
    pbx = live_bridge.pbx
    for device in ("SIP/101", "SIP/104"):  # Dmitry (Anna's trainee), Olga (Igor's trainee)
        pbx.set_phone(device, "answer")
        pbx.phone_gone(device)
    await wait_for(lambda: {p["device"] for p in live_bridge.bridge.board.phones()} >= {"SIP/101", "SIP/104"})
    socket = await open_dashboard(roster.users["petrova"])
    try:
        [frame] = [f for f in await receive_until(socket, lambda f: f["type"] == "snapshot") if f["type"] == "snapshot"]
        assert [(p["device"], p["presence"]) for p in frame["phones"]] == [("SIP/101", "offline")]
        teams = {person["name"]: person["team_name"] for person in frame["people"]}
        assert teams["Dmitry Ivanov"] == "Anna Petrova"
    finally:
        await socket.disconnect()
