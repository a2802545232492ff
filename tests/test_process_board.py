"""A web server process's board (supervision.process_board) with the test playing the bridge: one
snapshot request per process however many pages open, pages' snapshots built from the process's
replica and filtered per user, the stream fanned out to the pages that follow each phone, a hole or
a new bridge run costing one request, heartbeats waking no page, requests backing off."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async

from accounts.demo import seed_demo_roster
from supervision import jsontext, process_board
from supervision.bridge import BRIDGE_CHANNEL
from supervision.replica import snapshot_board, stream_part
from tests.live_stack import channel_layer, open_dashboard, receive_until  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

LINK_UP = {"pbx": "pbx", "state": "up", "since": 1.0, "detail": ""}


@pytest.fixture
async def roster():
    return await database_sync_to_async(seed_demo_roster)()


def channel(device, number, state="up"):
    return {"name": f"{device}-0000000{number}", "device": device, "state": state}


def snapshot(seq, channels, epoch="run-1", link=LINK_UP):
    return {"type": "board.snapshot", "epoch": epoch, "seq": seq, "now": 1.0, "link": link, "phones": [],
            "board": snapshot_board(channels, [jsontext.dumps(c) for c in channels])}


def stream(prev, *changes, epoch="run-1"):
    """`changes`: (seq, device, diffs) in board order."""
    parts = [stream_part(seq, device, diffs) for seq, device, diffs in changes]
    return {"type": "board.stream", "epoch": epoch, "prev": prev, "seq": parts[-1][1], "parts": parts}


def upsert(device, number, state="up"):
    return [{"op": "upsert", "channel": channel(device, number, state)}]


async def bridge_requests(layer):
    """What reached the bridge's channel so far (the layer keeps order: a marker ends it)."""
    await layer.send(BRIDGE_CHANNEL, {"type": "test.marker"})
    seen = []
    while (message := await asyncio.wait_for(layer.receive(BRIDGE_CHANNEL), 5))["type"] != "test.marker":
        seen.append(message)
    return seen


def snapshot_requests(requests):
    return [request for request in requests if request["type"] == "bridge.snapshot"]


async def frames_until(socket, kind, timeout=5.0):
    return await receive_until(socket, lambda frame: frame["type"] == kind, timeout=timeout)


async def open_pages(roster, *usernames):
    return [await open_dashboard(roster.users[name]) for name in usernames]


async def test_pages_of_one_process_ask_once_and_get_their_own_snapshots_from_its_replica(channel_layer, roster):
    pages = await open_pages(roster, "petrova", "ivanov", "admin", "petrova")
    asks = snapshot_requests(await bridge_requests(channel_layer))
    assert len(asks) == 1  # four pages, one process: one request
    board = [channel("SIP/101", 1), channel("SIP/104", 2), channel("SIP/trunk", 3), channel("SIP/201", 4)]
    await channel_layer.send(asks[0]["reply_to"], snapshot(7, board))
    petrova, ivanov, admin, petrova_again = [(await frames_until(page, "snapshot"))[-1] for page in pages]
    assert sorted(c["device"] for c in petrova["channels"]) == ["SIP/101", "SIP/201"]
    assert petrova_again["channels"] == petrova["channels"]
    assert sorted(c["device"] for c in ivanov["channels"]) == ["SIP/101", "SIP/201"]  # his own, his curator's; never the trunk
    assert sorted(c["device"] for c in admin["channels"]) == ["SIP/101", "SIP/104", "SIP/201"]
    assert petrova["seq"] == 7 and petrova["link"] == LINK_UP
    # After its first snapshot each page asks the bridge for its user's sessions in flight, nothing more.
    assert sorted(r["type"] for r in await bridge_requests(channel_layer)) == ["bridge.sessions"] * 4
    for page in pages:
        await page.disconnect()


async def test_a_page_opened_later_is_served_by_the_process_without_asking_the_bridge(channel_layer, roster):
    [first] = await open_pages(roster, "admin")
    [ask] = snapshot_requests(await bridge_requests(channel_layer))
    await channel_layer.send(ask["reply_to"], snapshot(3, [channel("SIP/101", 1)]))
    await frames_until(first, "snapshot")
    await channel_layer.send(ask["reply_to"], stream(3, (4, "SIP/102", upsert("SIP/102", 2))))
    await frames_until(first, "diff")
    [later] = await open_pages(roster, "petrova")
    shown = (await frames_until(later, "snapshot"))[-1]
    assert shown["seq"] == 4 and sorted(c["device"] for c in shown["channels"]) == ["SIP/101", "SIP/102"]
    assert snapshot_requests(await bridge_requests(channel_layer)) == []
    await first.disconnect()
    await later.disconnect()


async def test_the_stream_reaches_only_the_pages_following_each_phone_and_old_changes_are_skipped(channel_layer, roster):
    petrova, ivanov = await open_pages(roster, "petrova", "ivanov")
    [ask] = snapshot_requests(await bridge_requests(channel_layer))
    process = ask["reply_to"]
    await channel_layer.send(process, stream(0, (1, "SIP/101", upsert("SIP/101", 9))))  # before the snapshot: held by it
    await channel_layer.send(process, snapshot(5, []))
    await frames_until(petrova, "snapshot")
    await frames_until(ivanov, "snapshot")
    await channel_layer.send(process, stream(4, (5, "SIP/104", upsert("SIP/104", 1)),  # already in the snapshot
                                             (6, "SIP/101", upsert("SIP/101", 1)),
                                             (6, "SIP/trunk", upsert("SIP/trunk", 2)),
                                             (7, "SIP/201", upsert("SIP/201", 3))))
    petrova_frames = await receive_until(petrova, lambda f: f["type"] == "diff" and f["seq"] == 7)
    assert [(f["seq"], f["diffs"][0]["channel"]["device"]) for f in petrova_frames if f["type"] == "diff"] == [
        (6, "SIP/101"), (7, "SIP/201")]
    ivanov_frames = await receive_until(ivanov, lambda f: f["type"] == "diff" and f["seq"] == 7)
    assert [(f["seq"], f["diffs"][0]["channel"]["device"]) for f in ivanov_frames if f["type"] == "diff"] == [
        (6, "SIP/101"), (7, "SIP/201")]  # his own phone and his curator's, never smirnov's team or the trunk
    assert await ivanov.receive_nothing(timeout=0.2)
    await petrova.disconnect()
    await ivanov.disconnect()


async def test_a_hole_in_the_stream_costs_one_request_and_each_page_a_fresh_snapshot(channel_layer, roster):
    pages = await open_pages(roster, "petrova", "admin", "smirnov")
    [ask] = snapshot_requests(await bridge_requests(channel_layer))
    process = ask["reply_to"]
    await channel_layer.send(process, snapshot(5, [channel("SIP/101", 1)]))
    for page in pages:
        await frames_until(page, "snapshot")
    # Changes 6 and 7 never came (a full channel dropped them): 8 follows 7.
    await channel_layer.send(process, stream(7, (8, "SIP/101", upsert("SIP/101", 2))))
    await channel_layer.send(process, stream(8, (9, "SIP/101", upsert("SIP/101", 3))))
    await asyncio.sleep(0.1)
    asks = snapshot_requests(await bridge_requests(channel_layer))
    assert asks == [{"type": "bridge.snapshot", "reply_to": process}]
    await channel_layer.send(process, snapshot(9, [channel("SIP/101", 2), channel("SIP/101", 3)]))
    for page in pages[:2]:
        frames = await frames_until(page, "snapshot")
        assert not [f for f in frames if f["type"] == "diff"]  # nothing after the hole was shown
        assert frames[-1]["seq"] == 9 and len(frames[-1]["channels"]) == 2
    assert (await frames_until(pages[2], "snapshot"))[-1]["channels"] == []  # smirnov's team has no SIP/101
    for page in pages:
        await page.disconnect()


async def test_heartbeats_wake_no_page_a_changed_link_reaches_each_once_and_a_new_bridge_run_reloads(channel_layer, roster):
    pages = await open_pages(roster, "petrova", "admin")
    [ask] = snapshot_requests(await bridge_requests(channel_layer))
    process = ask["reply_to"]
    await channel_layer.send(process, snapshot(5, []))
    for page in pages:
        await frames_until(page, "snapshot")
    for _ in range(3):
        await channel_layer.send(process, {"type": "board.link", "epoch": "run-1", "link": LINK_UP})
    for page in pages:
        assert await page.receive_nothing(timeout=0.2)
    down = {**LINK_UP, "state": "down", "since": 2.0}
    await channel_layer.send(process, {"type": "board.link", "epoch": "run-1", "link": down})
    await channel_layer.send(process, {"type": "board.link", "epoch": "run-1", "link": down})
    for page in pages:
        assert [f["link"] for f in await frames_until(page, "link")] == [down]
        assert await page.receive_nothing(timeout=0.2)
    # A restarted bridge counts its seq from zero: its first word makes the process ask again.
    await channel_layer.send(process, {"type": "board.link", "epoch": "run-2", "link": LINK_UP})
    await asyncio.sleep(0.1)
    assert snapshot_requests(await bridge_requests(channel_layer)) == [{"type": "bridge.snapshot", "reply_to": process}]
    await channel_layer.send(process, snapshot(1, [channel("SIP/101", 1)], epoch="run-2"))
    fresh = (await frames_until(pages[0], "snapshot"))[-1]
    assert fresh["seq"] == 1 and fresh["link"] == LINK_UP
    await channel_layer.send(process, stream(1, (2, "SIP/101", upsert("SIP/101", 2)), epoch="run-2"))
    assert (await frames_until(pages[0], "diff"))[-1]["seq"] == 2
    for page in pages:
        await page.disconnect()


async def test_without_an_answer_requests_back_off_and_a_bridge_that_starts_answers_the_one_waiting(channel_layer, roster, monkeypatch):
    monkeypatch.setattr(process_board, "SNAPSHOT_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(process_board, "SNAPSHOT_BACKOFF_MAX_SECONDS", 0.4)
    [page] = await open_pages(roster, "admin")
    await asyncio.sleep(1.2)
    # 0.05 + 0.1 + 0.2 + 0.4 + 0.4 ... : about six in 1.2 s, never one per 50 ms (24).
    assert 3 <= len(await channel_layer_requests(channel_layer)) <= 8
    frames = await frames_until(page, "link")
    assert [f["link"]["state"] for f in frames if f["type"] == "link"] == ["no_bridge"]
    assert await page.receive_nothing(timeout=0.5)  # said once, not with every request
    await asyncio.sleep(0.3)
    [waiting, *_more] = await channel_layer_requests(channel_layer)  # a bridge starts: reads what waits
    await channel_layer.send(waiting["reply_to"], snapshot(2, []))
    assert (await frames_until(page, "snapshot"))[-1]["link"] == LINK_UP
    await page.disconnect()


async def channel_layer_requests(layer):
    return snapshot_requests(await bridge_requests(layer))


async def test_a_stale_page_catches_up_from_its_process_not_from_the_bridge(channel_layer, roster, monkeypatch):
    from supervision import consumers

    monkeypatch.setattr(consumers, "ACK_WINDOW_FRAMES", 2)
    [page] = await open_pages(roster, "admin")
    await page.send_json_to({"type": "hello", "acks": True})
    await page.send_json_to({"type": "ping"})
    await frames_until(page, "pong")  # the hello was read before anything is counted
    [ask] = snapshot_requests(await bridge_requests(channel_layer))
    process = ask["reply_to"]
    await channel_layer.send(process, snapshot(1, []))
    await frames_until(page, "snapshot")  # one frame unacked
    for seq in range(2, 7):
        await channel_layer.send(process, stream(seq - 1, (seq, "SIP/101", upsert("SIP/101", seq))))
    frames = await receive_until(page, lambda f: f["type"] == "diff" and f["seq"] == 2)
    extra = [] if await page.receive_nothing(timeout=0.3) else [await page.receive_output(timeout=1)]
    assert extra == []  # the window is full: the rest were dropped
    await page.send_json_to({"type": "ping"})
    frames = await frames_until(page, "snapshot")
    assert frames[-1]["seq"] == 6 and len(frames[-1]["channels"]) == 5
    assert snapshot_requests(await bridge_requests(channel_layer)) == []
    await page.disconnect()


async def test_a_heartbeat_ahead_of_the_replica_shows_the_end_of_a_burst_was_lost(channel_layer, roster):
    [page] = await open_pages(roster, "admin")
    [ask] = snapshot_requests(await bridge_requests(channel_layer))
    process = ask["reply_to"]
    await channel_layer.send(process, snapshot(5, []))
    await frames_until(page, "snapshot")
    await channel_layer.send(process, {"type": "board.link", "epoch": "run-1", "link": LINK_UP, "seq": 5})
    await asyncio.sleep(0.1)
    assert snapshot_requests(await bridge_requests(channel_layer)) == []  # in step: nothing to ask
    # The stream got to 7, but 6 and 7 never came (the last messages of a burst, dropped).
    await channel_layer.send(process, {"type": "board.link", "epoch": "run-1", "link": LINK_UP, "seq": 7})
    await asyncio.sleep(0.1)
    assert snapshot_requests(await bridge_requests(channel_layer)) == [{"type": "bridge.snapshot", "reply_to": process}]
    await channel_layer.send(process, snapshot(7, [channel("SIP/101", 1)]))
    assert (await frames_until(page, "snapshot"))[-1]["seq"] == 7
    await page.disconnect()
