"""The snapshot-plus-stream invariant of a web server process's replica (supervision.replica): loaded
from any snapshot of the bridge's board and fed the stream after it, however the stream is cut
into messages, it holds exactly what the board publishes; a lost message is always noticed."""

import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervision.board import Board
from supervision.replica import BoardReplica, Gap, change_parts, snapshot_board
from tests.test_board import EVENT_POOL, Traffic, fixed_clock, operations


class Stream:
    """The bridge's side, without the layer: each change's parts, cut into messages as the
    publisher cuts them (`cut` says after which changes a message ends)."""

    def __init__(self, board):
        self.board = board
        self.pending = []
        self.sent_seq = 0
        self.messages = []

    def apply(self, message):
        diffs = self.board.apply(message)
        if diffs:
            self.pending.append(change_parts(self.board.seq, diffs))

    def rebuild(self, items):
        diffs = self.board.rebuild(items)
        if diffs:
            self.pending.append(change_parts(self.board.seq, diffs))

    def flush(self):
        if self.pending:
            parts = [part for change in self.pending for part in change]
            self.messages.append({"type": "board.stream", "epoch": "run", "prev": self.sent_seq,
                                  "seq": parts[-1][1], "parts": parts})
            self.sent_seq = parts[-1][1]
            self.pending = []

    def snapshot(self):
        self.flush()  # in the outbox, everything queued before the snapshot goes out first
        return {"type": "board.snapshot", "epoch": "run", "seq": self.board.seq, "link": None,
                "board": snapshot_board(*self.board.published()), "phones": self.board.phones()}


def by_name(channels):
    return {channel["name"]: channel for channel in channels}


def assert_same(replica, board):
    channels, _texts = board.published()
    assert by_name(replica.channels()) == by_name(json.loads(json.dumps(channels)))
    assert replica.phones == {phone["device"]: json.loads(json.dumps(phone)) for phone in board.phones()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, cuts=st.lists(st.booleans(), min_size=1), load_at=st.integers(min_value=0, max_value=40))
def test_a_replica_loaded_from_any_snapshot_and_fed_the_stream_equals_the_board(ops, cuts, load_at):
    traffic = Traffic()
    board = Board(now=fixed_clock)
    stream = Stream(board)
    replica = BoardReplica()
    for index, (op, *args) in enumerate(ops):
        start = len(traffic.events)
        getattr(traffic, op)(*args)
        for message in traffic.events[start:]:
            stream.apply(message)
        if index % 9 == 8:
            stream.rebuild(traffic.coreshowchannels())
        if cuts[index % len(cuts)]:
            stream.flush()
        if index == load_at:
            replica.load(stream.snapshot())
            stream.messages.clear()  # sent before the snapshot: the process dropped them, unloaded
        if replica.loaded:
            for message in stream.messages:
                replica.apply(message)
            stream.messages.clear()
            if not stream.pending:
                assert_same(replica, board)
    stream.flush()
    if not replica.loaded:
        replica.load(stream.snapshot())
    for message in stream.messages:
        replica.apply(message)
    assert replica.seq == board.seq
    assert_same(replica, board)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, lost=st.integers(min_value=0, max_value=60))
def test_a_lost_stream_message_is_always_noticed(ops, lost):
    traffic = Traffic()
    board = Board(now=fixed_clock)
    stream = Stream(board)
    replica = BoardReplica()
    replica.load(stream.snapshot())
    for op, *args in ops:
        start = len(traffic.events)
        getattr(traffic, op)(*args)
        for message in traffic.events[start:]:
            stream.apply(message)
        stream.flush()
    # One change more after everything, so a message follows whichever one is lost.
    start = len(traffic.events)
    traffic.new(0, "6")
    for message in traffic.events[start:]:
        stream.apply(message)
    stream.flush()
    messages = stream.messages
    if len(messages) < 2:
        return
    index = lost % (len(messages) - 1)
    dropped = messages.pop(index)
    try:
        for message in messages:
            replica.apply(message)
    except Gap:
        assert replica.seq < dropped["seq"]  # nothing after the hole was applied
        return
    raise AssertionError(f"message {index} of {len(messages) + 1} was lost and nobody noticed")


def test_capture_events_in_any_order_through_the_stream_equal_the_board():
    rng = random.Random(7)
    board = Board(now=fixed_clock)
    stream = Stream(board)
    replica = BoardReplica()
    replica.load(stream.snapshot())
    for _round in range(20):
        for message in rng.sample(EVENT_POOL, k=min(len(EVENT_POOL), 60)):
            stream.apply(message)
            if rng.random() < 0.3:
                stream.flush()
        stream.flush()
        for message in stream.messages:
            replica.apply(message)
        stream.messages.clear()
        assert_same(replica, board)


def test_another_bridge_run_is_a_gap():
    replica = BoardReplica()
    replica.load({"epoch": "run-1", "seq": 40, "board": [], "phones": [], "link": None})
    try:
        replica.apply({"type": "board.stream", "epoch": "run-2", "prev": 0, "seq": 1, "parts": []})
    except Gap:
        return
    raise AssertionError("a stream of another bridge run was applied")
