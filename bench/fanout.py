"""Fan-out latency: from an AMI event leaving the PBX to the WebSocket frame reaching a browser.

    .venv/bin/python bench/fanout.py [--clients 500] [--calls 1000] [--events-per-second 500] [--seconds 15]
    .venv/bin/python bench/fanout.py --redis [redis://127.0.0.1:6379/0]
    .venv/bin/python bench/fanout.py --compare [URL]     # one process, then Redis, in one run
    ... [--busy]                                         # a CPU burner on core 0 for the whole run

The whole real stack on loopback (bench/stack.py): one daphne process (embedded bridge, in-memory
channel layer, SQLite in a temporary directory) logged in over AMI/TCP to the simulated PBX running
in this process, and `--clients` authenticated WebSocket clients, also in this process. The roster:
one curator per client, each with `--calls / --clients` trainees, so every call is watched by
exactly one dashboard.

The PBX first puts `--calls` calls up, then keeps that many up by ending and starting calls at the
rate that gives `--events-per-second` AMI events. For every call it times three moments: its
Newchannel, its Newstate to Up and its Hangup leaving the PBX, and the first frame with the
matching diff (upsert, state up, remove) arriving at the curator's socket. Same clock, one process.
Target: p99 <= 30 ms in one process.

`--redis [URL]`: the multi-process deployment instead: two daphne processes (AMI_BRIDGE=external)
and one `manage.py ami_bridge` sharing the Redis channel layer at URL under a fresh key prefix
(deleted afterwards), and the same SQLite database; the dashboards alternate between the two
daphnes. Target: p99 <= 50 ms, and with `--compare` (both stacks back to back, same roster, same
load) at most twice the one-process p99 of the same run.

Every wait is capped (`--connect-timeout`, `--catch-up`): a stack that cannot keep up is reported
as such (how many sockets got a snapshot, how many events never reached a page) instead of hanging.
"""

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from bench.stack import (  # noqa: E402
    DEFAULT_REDIS, Conditions, CpuMeter, Dashboard, Servers, build_roster, connect_all, loadavg,
    rss_bytes, setup_django, trainee_device,
)

TARGET_ONE_PROCESS_MS = 30
TARGET_REDIS_MS = 50
TARGET_REDIS_RATIO = 2.0


class Stopwatch:
    """Emission times of Newchannel / Up / Hangup per channel, matched to the first frame showing it."""

    def __init__(self):
        self.sent = {}  # (kind, channel name) -> perf_counter at emission
        self.samples = []
        self.recording = False
        self.frames = 0
        self.last_diff = None  # perf_counter of the last diff frame

    def emitted(self, _event_class, pairs):
        fields = dict(pairs)
        event, name = fields.get("Event"), fields.get("Channel")
        if not name or not name.startswith("SIP/9"):
            return
        if event == "Newchannel":
            self.sent[("new", name)] = time.perf_counter()
        elif event == "Newstate" and fields.get("ChannelState") == "6":
            self.sent[("up", name)] = time.perf_counter()
        elif event == "Hangup":
            self.sent[("gone", name)] = time.perf_counter()

    def received(self, _dashboard, message, at):
        if message["type"] != "diff":
            return
        self.frames += 1
        self.last_diff = at
        for diff in message["diffs"]:
            if diff["op"] == "upsert":
                name = diff["channel"]["name"]
                keys = [("new", name)] + ([("up", name)] if diff["channel"]["state"] == "up" else [])
            elif diff["op"] == "remove":
                keys = [("gone", diff["name"])]
            else:
                continue
            for key in keys:
                start = self.sent.pop(key, None)
                if start is not None and self.recording:
                    self.samples.append((at - start) * 1000)

    def unseen(self, older_than):
        """Moments emitted more than `older_than` seconds ago that no page has shown."""
        now = time.perf_counter()
        return sum(1 for t in list(self.sent.values()) if now - t > older_than)


async def keep_calls_up(pbx, calls, calls_per_second, talk, rng):
    """Start calls while fewer than `calls` are up, at `calls_per_second`."""
    devices = [trainee_device(i) for i in range(calls)]
    while True:
        await asyncio.sleep(1.0 / calls_per_second)
        busy = {c.device for c in pbx.switch.channels.values() if c.device and c.device.startswith("SIP/9")}
        if len(busy) >= calls:
            continue
        free = [d for d in devices if d not in busy]
        if free:
            await pbx.inbound_call(rng.choice(free), caller_num=f"5{rng.randrange(10**9, 10**10)}",
                                   talk_seconds=talk * rng.uniform(0.9, 1.1))


def main(args):
    """The database work (sync), then one measured run per stack (async)."""
    setup_django(tempfile.mkdtemp(prefix="fanout-"))
    trainees_each = max(1, args.calls // args.clients)
    print(f"roster: {args.clients} curators x {trainees_each} trainees ...", flush=True)
    cookies, _admins = build_roster(args.clients, trainees_each)
    stacks = ["", args.compare] if args.compare else [args.redis]
    results = {}
    with Conditions(args.busy) as conditions:
        for redis_url in stacks:
            results[redis_url] = asyncio.run(run(args, cookies, trainees_each, redis_url))
    print()
    print("=" * 100)
    print(f"fan-out, {args.clients} sockets, {args.clients * trainees_each} calls, {args.events_per_second:.0f} AMI events/s "
          f"asked, {args.seconds:.0f} s window; AMI read size: the client's 64 KiB")
    print(conditions.describe())
    verdicts = []
    one = results.get("")
    for redis_url, result in results.items():
        target = TARGET_REDIS_MS if redis_url else TARGET_ONE_PROCESS_MS
        label = "Redis, 2 daphnes + ami_bridge" if redis_url else "one process"
        if result["p99"] is None:
            print(f"{label:32} COLLAPSED: {result['collapse']}   target p99 <= {target} ms: NOT MET")
            verdicts.append(False)
            continue
        met = result["p99"] <= target
        verdicts.append(met)
        print(f"{label:32} p50 {result['p50']:.1f} ms  p99 {result['p99']:.1f} ms  (load {result['load']})"
              f"   target p99 <= {target} ms: {'met' if met else 'NOT MET'}")
    redis_result = results.get(args.compare) if args.compare else None
    if redis_result is not None and one is not None:
        if one["p99"] and redis_result["p99"]:
            ratio = redis_result["p99"] / one["p99"]
            met = ratio <= TARGET_REDIS_RATIO
            verdicts.append(met)
            print(f"{'Redis p99 / one-process p99':32} {ratio:.2f}x   target <= {TARGET_REDIS_RATIO:.0f}x (same run): "
                  f"{'met' if met else 'NOT MET'}")
        else:
            print(f"{'Redis p99 / one-process p99':32} not measurable (a stack collapsed)   target <= 2x: NOT MET")
            verdicts.append(False)
    return 0 if all(verdicts) else 1


async def run(args, cookies, trainees_each, redis_url):
    from fakepbx import FakePBX

    label = "Redis (2 daphnes + ami_bridge)" if redis_url else "one process"
    print(f"\n--- {label} ---", flush=True)
    load_start = loadavg()
    calls = args.clients * trainees_each
    rng = random.Random(7)
    pbx = FakePBX(port=0, seed=7)
    await pbx.start()
    for i in range(calls):
        pbx.set_phone(trainee_device(i), "answer", ring_seconds=0.5)
    watch = Stopwatch()
    original_emit = pbx.switch.emit

    def timed_emit(event_class, pairs):
        watch.emitted(event_class, pairs)
        original_emit(event_class, pairs)

    pbx.switch.emit = timed_emit
    servers = Servers(pbx.port, redis_url, args.profile)
    tasks, churn = [], None
    result = {"p99": None, "p50": None, "collapse": "", "load": ""}
    try:
        await servers.start()
        ports = servers.ports
        dashboards = [Dashboard(ports[i % len(ports)], cookie, watch.received) for i, cookie in enumerate(cookies)]
        started = time.perf_counter()
        tasks, connected = await connect_all(dashboards, started + args.connect_timeout)
        print(f"{connected}/{len(dashboards)} dashboards got their snapshot in {time.perf_counter() - started:.1f} s; "
              f"AMI sessions on the PBX: {pbx.sessions}", flush=True)
        if connected < len(dashboards):
            result["collapse"] = (f"only {connected}/{len(dashboards)} sockets got a snapshot within "
                                  f"{args.connect_timeout:.0f} s")

        # One call's events, to set the call rate that gives the wanted event rate.
        before = pbx.events_sent
        await pbx.inbound_call(trainee_device(0), talk_seconds=0.2)
        await asyncio.sleep(1.5)
        per_call = max(1, pbx.events_sent - before)
        calls_per_second = args.events_per_second / per_call
        talk = calls / calls_per_second
        print(f"{per_call} AMI events per call -> {calls_per_second:.0f} calls/s, {talk:.0f} s each", flush=True)

        # Put the calls up (remaining talk spread evenly, so they end at the steady rate), then churn.
        for i in range(calls):
            await pbx.inbound_call(trainee_device(i), caller_num=f"5{rng.randrange(10**9, 10**10)}",
                                   talk_seconds=rng.uniform(1.0, talk))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        churn = asyncio.create_task(keep_calls_up(pbx, calls, calls_per_second, talk, rng))
        # Putting a thousand calls up is a burst of ~16,000 events: measure only once the server
        # has caught up (nothing emitted more than a second ago is still unseen), then settle.
        waited = time.perf_counter()
        caught_up = False
        while time.perf_counter() - waited < args.catch_up:
            await asyncio.sleep(0.5)
            oldest = min((t for (kind, _), t in list(watch.sent.items()) if kind == "new"), default=None)
            if oldest is None or time.perf_counter() - oldest < 1.0:
                caught_up = True
                break
        print(f"caught up with putting the calls up: {'yes' if caught_up else 'NO'} after "
              f"{time.perf_counter() - waited:.1f} s", flush=True)
        await asyncio.sleep(args.settle)

        live = len(pbx.switch.channels) // 2
        watch.samples.clear()
        watch.recording = True
        events0, frames0, t0 = pbx.events_sent, watch.frames, time.perf_counter()
        meter = CpuMeter(servers)
        meter.start()
        await asyncio.sleep(args.seconds)
        elapsed = time.perf_counter() - t0
        events, frames = pbx.events_sent - events0, watch.frames - frames0
        cpu = meter.stop()
        rss = [rss_bytes(p.pid) for p in servers.processes]
        watch.recording = False
        churn.cancel()
        live_end = len(pbx.switch.channels) // 2
        unseen = watch.unseen(1.0)
        closed = sum(1 for d in dashboards if d.closed is not None)

        samples = sorted(watch.samples)
        result["load"] = f"{load_start} -> {loadavg()}"
        print(f"{servers.describe()}")
        print(f"dashboards: {len(dashboards)} (one curator each, {trainees_each} trainees each), {connected} with a "
              f"snapshot, {closed} closed by the server; AMI sessions: {pbx.sessions}")
        print(f"live calls: {live} at start, {live_end} at end of the window")
        print(f"AMI events: {events / elapsed:.0f}/s; diff frames to browsers: {frames / elapsed:.0f}/s; window {elapsed:.1f} s")
        print(f"CPU, share of one core: {cpu}")
        print("RSS: " + ", ".join(f"{name} {r / 2**20:.0f} MB" for name, r in zip(servers.names(), rss)))
        print(f"moments emitted over 1 s ago and never shown on a page: {unseen}")
        print(f"/proc/loadavg: {result['load']}")
        if not samples:
            last = f"{time.perf_counter() - watch.last_diff:.0f} s ago" if watch.last_diff else "never"
            result["collapse"] = (f"no diff reached a dashboard in the {elapsed:.0f} s window (last diff frame: {last}; "
                                  f"{unseen} moments unseen). " + result["collapse"])
            print(f"COLLAPSED: {result['collapse']}")
            return result

        def pct(p):
            return percentile(samples, p / 100)

        print(f"latency AMI event -> WebSocket frame, {len(samples)} samples (Newchannel, Up, Hangup):")
        print(f"  p50 {pct(50):.1f} ms   p90 {pct(90):.1f} ms   p99 {pct(99):.1f} ms   max {samples[-1]:.1f} ms   "
              f"mean {statistics.mean(samples):.1f} ms")
        result.update(p50=pct(50), p99=pct(99))
        return result
    finally:
        if churn is not None:
            churn.cancel()
        for task in tasks:
            task.cancel()
        servers.stop()
        await pbx.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--events-per-second", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=15, help="measurement window")
    parser.add_argument("--profile", metavar="FILE", help="run the server(s) under cProfile, stats to FILE")
    stack = parser.add_mutually_exclusive_group()
    stack.add_argument("--redis", nargs="?", const=DEFAULT_REDIS, default="", metavar="URL",
                       help="two daphnes + manage.py ami_bridge over the Redis channel layer at URL "
                            f"(default {DEFAULT_REDIS}), under a fresh key prefix removed afterwards")
    stack.add_argument("--compare", nargs="?", const=DEFAULT_REDIS, default="", metavar="URL",
                       help="the one-process stack, then the Redis one at URL, back to back; prints the ratio")
    parser.add_argument("--busy", action="store_true", help="run a CPU burner pinned to core 0 for the whole run")
    parser.add_argument("--settle", type=float, default=3, help="seconds between catching up with the burst and measuring")
    parser.add_argument("--connect-timeout", type=float, default=30, help="cap on connecting every socket")
    parser.add_argument("--catch-up", type=float, default=20, help="cap on waiting for the server to catch up")
    sys.exit(main(parser.parse_args()))
