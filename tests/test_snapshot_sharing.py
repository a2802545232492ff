"""Snapshots without copies: the board's published channels (read-only dicts and their cached JSON),
its per-phone index, the layer's uncopied send, and the socket joining cached JSON texts."""

import asyncio
import copy
import json
import random

import pytest
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from hypothesis import HealthCheck, given, settings

from accounts.demo import seed_demo_roster
from supervision.board import STATE_RANK, Board, _sequence
from supervision.bridge import BRIDGE_CHANNEL
from supervision.channel_layer import InMemoryChannelLayer
from supervision.replica import snapshot_board
from tests.live_stack import channel_layer, open_dashboard, receive_until  # noqa: F401
from tests.test_board import EVENT_POOL, Traffic, fixed_clock, operations


def by_name(channels):
    return {channel["name"]: channel for channel in channels}


def live_channel_by_scan(board, device):
    """live_channel as it was before the per-phone index: a walk over every channel."""
    best, best_key = None, None
    for channel in board.snapshot():
        if channel["device"] != device:
            continue
        key = (STATE_RANK.get(channel["state"], 0), channel["created_at"] or 0.0, -_sequence(channel["uniqueid"]))
        if best_key is None or key > best_key:
            best, best_key = channel, key
    return best


def check_published(board):
    channels, texts = board.published()
    assert by_name(channels) == by_name(board.snapshot())
    assert [json.loads(text) for text in texts] == channels
    for device in {c["device"] for c in board.snapshot()} | {"SIP/nobody"}:
        assert board.live_channel(device) == live_channel_by_scan(board, device)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_published_channels_follow_generated_traffic_and_rebuilds(ops):
    traffic = Traffic()
    board = Board(now=fixed_clock)
    for index, (op, *args) in enumerate(ops):
        start = len(traffic.events)
        getattr(traffic, op)(*args)
        for message in traffic.events[start:]:
            board.apply(message)
        if index % 7 == 6:
            board.rebuild(traffic.coreshowchannels())
        check_published(board)


def test_published_channels_follow_shuffled_capture_events():
    rng = random.Random(11)
    board = Board(now=fixed_clock)
    for _round in range(20):
        for message in rng.sample(EVENT_POOL, k=min(len(EVENT_POOL), 60)):
            board.apply(message)
        check_published(board)


def test_what_was_published_never_changes_afterwards():
    traffic = Traffic()
    board = Board(now=fixed_clock)
    for op, *args in [("new", 0, "6"), ("new", 1, "6"), ("bridge", 0, 1), ("spy", 2, 0, "qB")]:
        getattr(traffic, op)(*args)
    for message in traffic.events:
        board.apply(message)
    channels, texts = board.published()
    kept = copy.deepcopy(channels)
    start = len(traffic.events)
    for op, *args in [("callerid", 0, "5551234"), ("leave", 1), ("hangup", 0), ("new", 3, "5")]:
        getattr(traffic, op)(*args)
    for message in traffic.events[start:]:
        board.apply(message)
    assert channels == kept
    assert [json.loads(text) for text in texts] == kept
    assert by_name(board.published()[0]) != by_name(kept)


async def test_send_owned_hands_the_message_over_uncopied_and_respects_capacity():
    layer = InMemoryChannelLayer(capacity=1)
    channel = await layer.new_channel()
    message = {"type": "board.snapshot", "channels": [{"name": "SIP/101-00000001"}]}
    await layer.send_owned(channel, message)
    with pytest.raises(ChannelFull):
        await layer.send_owned(channel, {"type": "board.snapshot"})
    assert await layer.receive(channel) is message


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(30)
async def test_the_socket_joins_cached_texts_of_the_channels_it_may_show(channel_layer):  # noqa: F811
    roster = await database_sync_to_async(seed_demo_roster)()
    socket = await open_dashboard(roster.users["petrova"])
    request = await channel_layer.receive(BRIDGE_CHANNEL)
    mine = {"name": "SIP/101-00000005", "device": "SIP/101", "state": "up", "peers": ["SIP/trunk-00000001"]}
    other = {"name": "SIP/104-00000001", "device": "SIP/104", "state": "up", "peers": []}
    mine_text = '{"name": "SIP/101-00000005", "device": "SIP/101", "state": "up", "peers": ["SIP/trunk-00000001"]}'
    await channel_layer.send(
        request["reply_to"],
        {"type": "board.snapshot", "epoch": "run", "seq": 5, "now": 1.0, "link": {"state": "up"}, "phones": [],
         "board": snapshot_board([mine, other], [mine_text, json.dumps(other)])},
    )
    frame = await socket.receive_from(timeout=5)
    while '"type":"snapshot"' not in frame:
        frame = await socket.receive_from(timeout=5)
    assert mine_text in frame  # the text as the bridge encoded it, spaces and all: joined, not encoded again
    snapshot = json.loads(frame)
    assert snapshot["channels"] == [mine]
    assert snapshot["seq"] == 5 and snapshot["link"] == {"state": "up"}
    assert snapshot["me"]["name"] == "Anna Petrova"
    await socket.disconnect()
