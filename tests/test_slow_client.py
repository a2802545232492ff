"""A page that cannot keep up never delays the others: the real ASGI stack and a real bridge on the
simulated PBX over TCP. A page that announced acknowledgements (`hello`) and stops acking gets at
most the window of diffs, then none; when it speaks again it gets one snapshot equal to a fresh one;
if it stays silent it is closed with the code the page reconnects on. Pages that never said hello
are not bounded."""

import json
import logging

import pytest
from channels.db import database_sync_to_async

from accounts.demo import seed_demo_roster
from supervision import consumers
from tests.live_stack import (  # noqa: F401
    channel_layer,
    live_bridge,
    open_dashboard,
    receive_until,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

WINDOW = 20  # small, so a few calls overflow it
TEAM = ("SIP/101", "SIP/102", "SIP/103")  # Anna Petrova's trainees


@pytest.fixture
async def roster():
    return await database_sync_to_async(seed_demo_roster)()


@pytest.fixture
def small_window(monkeypatch, caplog):
    monkeypatch.setattr(consumers, "ACK_WINDOW_FRAMES", WINDOW)
    caplog.set_level(logging.INFO, logger="supervision.consumers")
    return caplog


class Page:
    """A dashboard's view: the snapshot with every diff applied, as dashboard.js does."""

    def __init__(self, socket):
        self.socket = socket
        self.channels = {}
        self.diffs = 0
        self.snapshot = None

    def apply(self, frame):
        if frame["type"] == "snapshot":
            self.snapshot = frame
            self.channels = {c["name"]: c for c in frame["channels"]}
        elif frame["type"] == "diff":
            self.diffs += 1
            for diff in frame["diffs"]:
                if diff["op"] == "upsert":
                    self.channels[diff["channel"]["name"]] = diff["channel"]
                elif diff["op"] == "remove":
                    self.channels.pop(diff["name"], None)

    async def read_until(self, predicate, *, ack):
        frames = await receive_until(self.socket, lambda f: (self.apply(f), predicate(f))[1])
        if ack and any(f["type"] in ("snapshot", "diff") for f in frames):
            await self.socket.send_json_to({"type": "ack", "seq": [f for f in frames if "seq" in f][-1]["seq"]})
        return frames


async def open_page(user, *, acks):
    page = Page(await open_dashboard(user))
    await page.read_until(lambda f: f["type"] == "snapshot", ack=False)
    if acks:
        await page.socket.send_json_to({"type": "hello", "acks": True})
    await page.socket.send_json_to({"type": "ping"})  # the pong says the hello was taken
    await receive_until(page.socket, lambda f: f["type"] == "pong")
    return page


def shows(device, state=None, removed=None):
    """A diff that shows `device` in `state` and bridged to the customer, or `removed` gone."""
    def match(frame):
        return frame["type"] == "diff" and any(
            (d["op"] == "upsert" and d["channel"]["device"] == device and d["channel"]["state"] == state
             and bool(d["channel"]["peers"]))
            if removed is None else (d["op"] == "remove" and d["name"] == removed)
            for d in frame["diffs"]
        )

    return match


async def calls_on_the_team(pbx, page, calls):
    """Calls that come up and end, one after another, each followed to the end on `page` (which
    acks as it reads); the last one stays up. Returns the page's diff count."""
    for device in TEAM:
        pbx.set_phone(device, "answer", ring_seconds=0.05)
    for index in range(calls):
        device = TEAM[index % len(TEAM)]
        await pbx.inbound_call(device, caller_num=f"55501{index:02d}")
        frames = await page.read_until(shows(device, "up"), ack=True)  # bridged: the call's last change
        if index == calls - 1:
            return frames
        name = [d["channel"]["name"] for d in frames[-1]["diffs"] if d["op"] == "upsert" and d["channel"]["device"] == device][0]
        await pbx.hangup(name)
        await page.read_until(shows(device, removed=name), ack=True)


def fell_behind(caplog):
    """How many times a dashboard fell behind its window."""
    return sum("frames behind" in record.getMessage() for record in caplog.records)


def drop_clock(snapshot):
    return {key: value for key, value in snapshot.items() if key != "now"}


async def test_a_page_that_stops_acking_gets_the_window_then_one_fresh_snapshot(live_bridge, roster, small_window):
    anna = roster.users["petrova"]
    fast = await open_page(anna, acks=True)
    slow = await open_page(anna, acks=True)  # reads nothing until the calls are over
    old = await open_page(anna, acks=False)  # an older page: never acks, never bounded

    await calls_on_the_team(live_bridge.pbx, fast, calls=8)
    assert fast.diffs > 2 * WINDOW  # enough traffic to overflow the slow page's window
    await wait_for(lambda: fell_behind(small_window))
    assert fell_behind(small_window) == 1  # the slow page only: the one acking as it reads kept up

    # The page that kept up got every diff: its board is the server's board now.
    fresh = await open_page(anna, acks=False)
    assert fast.channels == fresh.channels and len(fresh.channels) == 1

    # The older page, which never acked, was not cut off either.
    last_call = next(iter(fresh.channels.values()))
    await old.read_until(lambda f: f["type"] == "diff" and {"op": "upsert", "channel": last_call} in f["diffs"], ack=False)
    assert old.channels == fresh.channels and old.diffs == fast.diffs

    # The slow page: exactly the window of diffs was sent, then nothing, until it acks again ...
    await slow.socket.send_json_to({"type": "ack", "seq": 0})  # acks nothing it had, yet speaks
    frames = await slow.read_until(lambda f: f["type"] == "snapshot", ack=False)
    missed = [f for f in frames[:-1] if f["type"] == "diff"]
    assert len(missed) == WINDOW
    # ... and then one snapshot, the same as a page that just connected gets.
    resync = frames[-1]
    assert drop_clock(resync) == drop_clock(fresh.snapshot)
    assert slow.channels == fast.channels
    assert resync["seq"] > missed[-1]["seq"]

    # Back inside the window: the next change reaches it as a diff again, like the others.
    await live_bridge.pbx.hangup(next(iter(fresh.channels)))
    gone = shows(None, removed=next(iter(fresh.channels)))
    await slow.read_until(gone, ack=True)
    await fast.read_until(gone, ack=True)
    assert slow.channels == fast.channels == {}
    for page in (fast, slow, old, fresh):
        await page.socket.disconnect()


async def test_a_stale_page_that_stays_silent_is_closed_with_the_code_the_page_reconnects_on(
        live_bridge, roster, small_window, monkeypatch):
    monkeypatch.setattr(consumers, "STALE_CLOSE_SECONDS", 0.05)
    anna = roster.users["petrova"]
    fast = await open_page(anna, acks=True)
    silent = await open_page(anna, acks=True)
    await calls_on_the_team(live_bridge.pbx, fast, calls=8)
    while True:
        output = await silent.socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        silent.apply(json.loads(output["text"]))
    assert output["code"] == consumers.STALE_CLOSE_CODE
    assert silent.diffs == WINDOW
    await fast.socket.disconnect()
