"""Two web server processes' boards on Redis with a real bridge (the simulated PBX over TCP): both
replicas hand their pages the same frames; a process that stalls while its channel overflows
notices the hole when it reads again (from the bridge's next heartbeat, if no change follows),
loads a snapshot and equals the bridge's board again."""

import asyncio
import json
import secrets

import pytest
from channels_redis.core import RedisChannelLayer

from fakepbx import FakePBX
from supervision.bridge_host import build_bridge
from supervision.process_board import ProcessBoard
from tests.live_stack import wait_for

pytestmark = pytest.mark.timeout(60)


class Page:
    """What a process board needs of a socket; it keeps what it was sent."""

    def __init__(self, devices):
        self.view = type("View", (), {"devices": frozenset(devices)})()
        self.snapshots = []
        self.diffs = []
        self.links = []

    async def board_ready(self):
        self.snapshots.append(self.board.replica.seq)

    async def board_diff(self, seq, frame):
        self.diffs.append((seq, frame))

    async def board_link(self, link):
        self.links.append(link)

    async def roster_changed(self):
        pass


def layer(url, prefix, **config):
    # As settings do: a receive waits in BZPOPMIN longer than redis-py's default read timeout.
    return RedisChannelLayer(hosts=[{"address": url, "socket_timeout": 15}], prefix=prefix, **config)


def board_channels(bridge):
    channels, _texts = bridge.board.published()
    return {channel["name"]: json.loads(json.dumps(channel)) for channel in channels}


STALLED = "supervision.process.stalled"


async def process(url, prefix, loop, channel=None):
    board = ProcessBoard(layer(url, prefix), loop)
    board.channel = channel or board.channel
    page = Page({"SIP/101", "SIP/102", "SIP/103"})
    page.board = board
    await board.attach(page)
    await wait_for(lambda: board.replica.loaded)
    return board, page


async def test_two_processes_follow_one_bridge_through_redis_and_a_stalled_one_catches_up(redis_url):
    prefix = f"test-{secrets.token_hex(4)}"
    loop = asyncio.get_running_loop()
    pbx = FakePBX(port=0)
    await pbx.start()
    # The sender's layer decides a channel's capacity: the stalled process's holds three messages.
    bridge = build_bridge(layer(redis_url, prefix, channel_capacity={STALLED: 3}), port=pbx.port, command_modules=())
    bridge.heartbeat_seconds = 0.2
    await bridge.start()
    boards = []
    try:
        await bridge.client.wait_until("up", timeout=5)
        first, first_page = await process(redis_url, prefix, loop)
        second, second_page = await process(redis_url, prefix, loop, channel=STALLED)
        boards = [first, second]
        assert bridge_asks(first) == bridge_asks(second) == 1

        name = await pbx.inbound_call("SIP/101")
        await wait_for(lambda: name in {c["name"] for c in first.replica.channels()} and
                       name in {c["name"] for c in second.replica.channels()})
        await bridge.drain()
        await wait_for(lambda: first.replica.seq == second.replica.seq == bridge.board.seq)
        assert first_page.diffs == second_page.diffs != []  # the same frames, in the same order

        # The second process stalls (a long loop turn, a paused VM) while the bridge publishes
        # more than its channel holds: Redis drops what overflows.
        stalled = asyncio.Event()
        handle = second._handle

        async def stalled_handle(message):
            await stalled.wait()
            await handle(message)

        second._handle = stalled_handle
        for device in ("SIP/102", "SIP/103", "SIP/102", "SIP/103"):
            await pbx.inbound_call(device)
        await wait_for(lambda: sum(c["device"] in ("SIP/102", "SIP/103") and c["state"] == "up"
                                   for c in board_channels(bridge).values()) == 4)
        await wait_for(lambda: first.replica.seq == bridge.board.seq)
        await bridge.drain()
        await asyncio.sleep(0.5)  # heartbeats too: the channel holds 3
        assert second.replica.seq < bridge.board.seq
        stalled.set()
        await wait_for(lambda: second.loads == 2 and second.replica.seq == bridge.board.seq, timeout=10)
        assert second.asks <= 3  # for the hole (again if the answer found the channel still full), none per page
        assert second_page.snapshots[-1] == second.replica.seq
        assert {c["name"]: c for c in second.replica.channels()} == board_channels(bridge)
        assert {c["name"]: c for c in first.replica.channels()} == board_channels(bridge)
        assert first.loads == 1  # the process that kept up never needed another snapshot
    finally:
        for board in boards:
            for task in board._tasks:
                task.cancel()
        await bridge.stop()
        await pbx.stop()
        await RedisChannelLayer(hosts=[redis_url], prefix=prefix).flush()


def bridge_asks(board):
    return board.asks
