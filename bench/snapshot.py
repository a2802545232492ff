"""Snapshot cost and board memory: how long a snapshot of N live calls takes to build and turn into
the WebSocket frame, and how many bytes the board holds per tracked channel.

    .venv/bin/python bench/snapshot.py [--calls 5000] [--rounds 20] [--changed 1000]

The board is filled the way the bridge fills it: AMI bytes through `Parser.feed` into
`Board.apply` (Newchannel, Newstate Up, BridgeCreate, two BridgeEnter per call: an agent's
SIP/9xxxx leg and a trunk leg, so --calls 5000 is 10,000 channels). Then, per round, the path a
dashboard's snapshot takes in the embedded setup (one daphne process, the product's in-memory layer):
  build  = the bridge answering `bridge.snapshot` (`Bridge.snapshot()`: the board's published
           channels and their cached JSON texts),
  layer  = through the channel layer as the bridge sends it (`send_owned`) and the consumer
           receives it,
  frame  = `DashboardConsumer._snapshot_frame` for an admin who sees every agent phone: the
           filter by device and the JSON text frame daphne writes to the socket.
Three cases: no channel changed since the previous snapshot (every text cached); --changed
channels changed (1,000 by default: about what 500 AMI events/s change in a second); every channel
changed (all texts built again: the worst case, e.g. the first snapshot after a rebuild). Not measured: daphne
framing and the socket write (one `write` of the text), Redis (the snapshot is msgpacked there).
Target: build + layer + frame <= 50 ms for 5,000 calls.
Memory: tracemalloc before and after filling the board, divided by the channel count.
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")


def call_events(index, now):
    """AMI frames of one answered inbound call: agent leg + trunk leg bridged together."""
    agent, trunk = f"SIP/9{index:04d}-{index:08x}", f"SIP/trunk-{index + 0x10000000:08x}"
    uid_a, uid_t = f"{now}.{2 * index}", f"{now}.{2 * index + 1}"
    bridge = f"b{index:07d}-0000-0000-0000-000000000000"
    frames = []

    def frame(pairs):
        frames.append("".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n")

    for name, uid, num, cname, cnum, cnname in (
        (trunk, uid_t, f"555{index:07d}", "Customer", f"9{index:04d}", "Agent"),
        (agent, uid_a, f"9{index:04d}", f"Agent {index}", f"555{index:07d}", "Customer"),
    ):
        base = [("Channel", name), ("CallerIDNum", num), ("CallerIDName", cname), ("ConnectedLineNum", cnum),
                ("ConnectedLineName", cnname), ("Language", "en"), ("AccountCode", ""), ("Context", "from-trunk"),
                ("Exten", f"9{index:04d}"), ("Priority", "1"), ("Uniqueid", uid), ("Linkedid", uid_t)]
        frame([("Event", "Newchannel"), ("Privilege", "call,all"), ("ChannelState", "0"), ("ChannelStateDesc", "Down"), *base])
        frame([("Event", "Newstate"), ("Privilege", "call,all"), ("ChannelState", "6"), ("ChannelStateDesc", "Up"), *base])
    frame([("Event", "BridgeCreate"), ("Privilege", "call,all"), ("BridgeUniqueid", bridge), ("BridgeType", "basic"),
           ("BridgeTechnology", "simple_bridge"), ("BridgeCreator", "<unknown>"), ("BridgeName", "<unknown>"),
           ("BridgeNumChannels", "0")])
    for count, (name, uid) in enumerate(((trunk, uid_t), (agent, uid_a)), 1):
        frame([("Event", "BridgeEnter"), ("Privilege", "call,all"), ("BridgeUniqueid", bridge), ("BridgeType", "basic"),
               ("BridgeTechnology", "simple_bridge"), ("BridgeNumChannels", str(count)), ("Channel", name),
               ("ChannelState", "6"), ("ChannelStateDesc", "Up"), ("Uniqueid", uid), ("Linkedid", uid_t)])
    return "".join(frames).encode()


class IdleClient:
    """What Bridge needs of an AMI client to build snapshots (no connection)."""

    class link:  # noqa: N801 - mimics the LinkState attributes
        state, since, detail, retry_in = "up", time.time(), "logged in", None

    def on_event(self, _cb): ...
    def on_link(self, _cb): ...
    def on_login(self, _cb): ...


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--changed", type=int, default=1000, help="channels changed between two snapshots")
    args = parser.parse_args()

    import django

    django.setup()
    from supervision import audience
    from supervision.ami.protocol import Parser
    from supervision.board import Board
    from supervision.bridge import Bridge

    now = int(time.time())
    stream = b"".join(call_events(i, now) for i in range(args.calls))

    tracemalloc.start()
    board = Board()
    parser_ = Parser(expect_banner=False)
    before = tracemalloc.take_snapshot()
    for start in range(0, len(stream), 65536):
        for message in parser_.feed(stream[start:start + 65536]):
            board.apply(message)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    channels = len(board.snapshot())
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))

    import asyncio

    from supervision.channel_layer import InMemoryChannelLayer
    from supervision.consumers import DashboardConsumer

    layer = InMemoryChannelLayer()
    bridge = Bridge(IdleClient(), board, layer=layer, name="pbx")
    visible = frozenset(f"SIP/9{i:04d}" for i in range(args.calls))
    socket = DashboardConsumer()  # only its frame building is used: no connection
    socket.view = audience.View(me={}, people=[], devices=visible)

    names = list(board._published)  # noqa: SLF001
    rng = random.Random(5)

    async def one_round(changed):
        for name in rng.sample(names, min(changed, len(names))):
            board._json.pop(name, None)  # noqa: SLF001 - as if the channel had changed
        t0 = time.perf_counter()
        reply = bridge.snapshot()
        t1 = time.perf_counter()
        await layer.send_owned("dashboard!1", reply)
        event = await layer.receive("dashboard!1")
        t2 = time.perf_counter()
        socket.link = event["link"]
        frame = socket._snapshot_frame(event, event["seq"])  # noqa: SLF001
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, len(frame)

    def ms(values):
        return f"median {statistics.median(values) * 1000:6.1f} ms   p99 {percentile(values, 0.99) * 1000:6.1f} ms"

    bridge.snapshot()  # the texts of the filling, as after a first dashboard
    results = {}
    for changed in (0, args.changed, len(names)):
        results[changed] = [asyncio.run(one_round(changed)) for _ in range(args.rounds)]
    size = results[0][0][3]
    print(f"{args.calls} calls = {channels} channels on the board; {len(visible)} shown in the frame ({size / 1e6:.2f} MB)")
    for changed, rounds in results.items():
        build, through, framing, _sizes = zip(*rounds)
        total = [a + b + c for a, b, c in zip(build, through, framing)]
        print(f"{changed} channels changed since the previous snapshot:")
        print(f"  build (Bridge.snapshot)      {ms(build)}")
        print(f"  layer (send_owned, receive)  {ms(through)}")
        print(f"  frame (filter + JSON text)   {ms(framing)}")
        print(f"  total                        {ms(total)}   target <= 50 ms")
    print(f"memory: {grown / 1e6:.1f} MB for {channels} channels = {grown / channels:,.0f} bytes per tracked channel "
          f"(tracemalloc, board + its bridge index)")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
