"""A burst of AMI events: do the pages still show what the PBX has, soon after, and what does the
bridge's memory do meanwhile?

    .venv/bin/python bench/burst.py [--clients 200] [--calls 1000] [--burst-rate 2000] [--burst-seconds 10]
    ... [--redis URL] [--one-process] [--busy] [--no-acks]

The real stack (bench/stack.py): by default two daphnes + `manage.py ami_bridge` over Redis under a
fresh key prefix (`--one-process`: one daphne with the embedded bridge). `--clients` curators,
each with `--calls / --clients` trainees whose calls stay up throughout and as many more trainees
whose phones take the burst; one dashboard per curator, saying hello and acknowledging like
dashboard.js (so the server's acknowledgement window applies; `--no-acks` for pages that never
said hello). Each dashboard keeps the board its frames describe (snapshot, then diffs in order).

1. The steady calls go up; the bench waits until every page shows exactly what the PBX has.
2. The burst: short calls (ringing 0.2 s, talking 0.5-1.5 s) on the burst phones at the rate that
   gives `--burst-rate` AMI events/s, for `--burst-seconds`; `--burst-keep` of them (a quarter)
   stay up, so most pages' boards after the burst differ from before it; the others end on their
   own, after which the PBX is quiet (the steady calls stay up).
3. From the PBX's last event ("quiet"), for `--observe` seconds: per page, is its board equal to
   the PBX's (channel names and states of the phones it may see), and since when (its last
   snapshot or diff frame)? Did it see a diff for every Newchannel, Up and Hangup of its phones
   (else: how many were missing), and did it get a snapshot after the burst began?
Target: every page equal to the PBX within 2 s of quiet (every diff, or one fresh snapshot).

Memory: the ami_bridge process's VmRSS (/proc/<pid>/status) just before the burst and its peak,
sampled every 100 ms until the end of the observation. Target: growth < 50 MB. (With
`--one-process` the bridge is inside the daphne: its RSS is reported.)
"""

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from bench.stack import (  # noqa: E402
    DEFAULT_REDIS, Conditions, CpuMeter, Dashboard, Servers, build_roster, connect_all, pbx_board,
    rss_bytes, setup_django, trainee_device,
)

TARGET_CONVERGE_SECONDS = 2.0
TARGET_RSS_GROWTH_MB = 50
EVENTS_PER_CALL = 16  # Newchannel, Newstate, Dial*, Bridge*, Hangup ... of both legs (bench/fanout.py measures it)


class Tracker:
    """Which page should show each Newchannel / Up / Hangup of a trainee's channel, and whether it did."""

    def __init__(self, trainees_each):
        self.trainees_each = trainees_each
        self.sent = {}  # (kind, channel name) -> (perf_counter, page index)
        self.last_emit = time.perf_counter()
        self.recording = False
        self.samples = []  # ms, emission -> frame, while recording

    def emitted(self, _event_class, pairs):
        now = self.last_emit = time.perf_counter()
        fields = dict(pairs)
        event, name = fields.get("Event"), fields.get("Channel")
        if not name or not name.startswith("SIP/9"):
            return
        if event == "Newchannel":
            key = ("new", name)
        elif event == "Newstate" and fields.get("ChannelState") == "6":
            key = ("up", name)
        elif event == "Hangup":
            key = ("gone", name)
        else:
            return
        self.sent[key] = (now, int(name[5:].split("-")[0]) // self.trainees_each)  # SIP/9jjjj-... -> its curator

    def received(self, _dashboard, message, at):
        if message["type"] != "diff":
            return
        for diff in message["diffs"]:
            if diff["op"] == "upsert":
                name = diff["channel"]["name"]
                keys = [("new", name)] + ([("up", name)] if diff["channel"]["state"] == "up" else [])
            elif diff["op"] == "remove":
                keys = [("gone", diff["name"])]
            else:
                continue
            for key in keys:
                sent = self.sent.pop(key, None)
                if sent is not None and self.recording:
                    self.samples.append((at - sent[0]) * 1000)

    def missing_per_page(self, before):
        """Moments emitted before `before` that no diff showed, per page index."""
        missing = {}
        for at, page in list(self.sent.values()):
            if at < before:
                missing[page] = missing.get(page, 0) + 1
        return missing


def page_devices(index, trainees_each):
    return [f"SIP/8{index:04d}"] + [trainee_device(index * trainees_each + k) for k in range(trainees_each)]


def page_matches(dashboard, devices, pbx_view):
    expected = {}
    for device in devices:
        expected.update(pbx_view.get(device, {}))
    shown = {name: channel["state"] for name, channel in dashboard.board.items()}
    return shown == expected


def main(args):
    setup_django(tempfile.mkdtemp(prefix="burst-"))
    steady_each = max(1, args.calls // args.clients)
    burst_each = max(1, args.burst_phones // args.clients)
    trainees_each = steady_each + burst_each
    print(f"roster: {args.clients} curators x {trainees_each} trainees ({steady_each} with a steady call, "
          f"{burst_each} taking the burst) ...", flush=True)
    cookies, _admins = build_roster(args.clients, trainees_each)
    with Conditions(args.busy) as conditions:
        ok = asyncio.run(run(args, cookies, steady_each, trainees_each, conditions))
    print(conditions.describe())
    return 0 if ok else 1


async def run(args, cookies, steady_each, trainees_each, conditions):
    from fakepbx import FakePBX

    from supervision.board import STATES

    redis_url = "" if args.one_process else args.redis
    rng = random.Random(11)
    clients = len(cookies)
    steady = [trainee_device(p * trainees_each + k) for p in range(clients) for k in range(steady_each)]
    burst_phones = [trainee_device(p * trainees_each + k) for p in range(clients) for k in range(steady_each, trainees_each)]
    pbx = FakePBX(port=0, seed=11)
    await pbx.start()
    for device in steady:
        pbx.set_phone(device, "answer", ring_seconds=0.5)
    for device in burst_phones:
        pbx.set_phone(device, "answer", ring_seconds=0.2)
    tracker = Tracker(trainees_each)
    original_emit = pbx.switch.emit

    def tracked_emit(event_class, pairs):
        tracker.emitted(event_class, pairs)
        original_emit(event_class, pairs)

    pbx.switch.emit = tracked_emit
    servers = Servers(pbx.port, redis_url)
    tasks = []
    try:
        await servers.start()
        ports = servers.ports
        pages = [Dashboard(ports[i % len(ports)], cookie, tracker.received, acks=not args.no_acks)
                 for i, cookie in enumerate(cookies)]
        devices = [page_devices(i, trainees_each) for i in range(clients)]
        started = time.perf_counter()
        tasks, connected = await connect_all(pages, started + args.connect_timeout)
        print(f"{connected}/{clients} dashboards got their snapshot in {time.perf_counter() - started:.1f} s", flush=True)

        # 1. The steady calls, then wait until every page shows what the PBX has.
        for i, device in enumerate(steady):
            await pbx.inbound_call(device, caller_num=f"5{rng.randrange(10**9, 10**10)}", talk_seconds=3600)
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        waited = time.perf_counter()
        while time.perf_counter() - waited < args.catch_up:
            await asyncio.sleep(0.5)
            view = pbx_board(pbx, STATES)
            if all(page_matches(p, d, view) for p, d in zip(pages, devices)):
                break
        view = pbx_board(pbx, STATES)
        settled = sum(page_matches(p, d, view) for p, d in zip(pages, devices))
        print(f"{len(steady)} steady calls up; {settled}/{clients} pages equal to the PBX after "
              f"{time.perf_counter() - waited:.1f} s", flush=True)
        await asyncio.sleep(1)

        # 2. The burst, with the bridge's RSS sampled throughout.
        before_view = pbx_board(pbx, STATES)
        bridge = servers.bridge or servers.daphnes[0]
        rss_before = rss_bytes(bridge.pid)
        rss_peak = [rss_before]
        daphne_before = [rss_bytes(d.pid) for d in servers.daphnes]
        daphne_peak = list(daphne_before)

        async def sample_rss():
            while True:
                rss_peak[0] = max(rss_peak[0], rss_bytes(bridge.pid))
                for n, d in enumerate(servers.daphnes):
                    daphne_peak[n] = max(daphne_peak[n], rss_bytes(d.pid))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample_rss())
        meter = CpuMeter(servers)
        meter.start()
        calls_per_second = args.burst_rate / EVENTS_PER_CALL
        free_at = {device: 0.0 for device in burst_phones}
        events0 = pbx.events_sent
        tracker.recording = True
        burst_start = time.perf_counter()
        snapshots_before = [len(p.snapshots) for p in pages]
        started_calls = 0
        while (elapsed := time.perf_counter() - burst_start) < args.burst_seconds:
            due = int(calls_per_second * elapsed) - started_calls
            now = time.perf_counter()
            for _ in range(max(0, due)):
                free = [d for d, t in free_at.items() if t <= now]
                if not free:
                    break
                device = rng.choice(free)
                if rng.random() < args.burst_keep:  # stays up: the board after the burst differs from before
                    talk = 3600.0
                    free_at[device] = float("inf")
                else:
                    talk = rng.uniform(0.5, 1.5)
                    free_at[device] = now + talk + 1.0
                await pbx.inbound_call(device, caller_num=f"5{rng.randrange(10**9, 10**10)}", talk_seconds=talk)
                started_calls += 1
            await asyncio.sleep(0.01)
        burst_end = time.perf_counter()
        burst_events = pbx.events_sent - events0
        # the burst's calls end on their own; the PBX is quiet once none is left
        while time.perf_counter() - burst_end < 10:
            if not any(free_at.get(c.device, 0) < float("inf") and c.device in free_at
                       for c in list(pbx.switch.channels.values())):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        quiet = tracker.last_emit
        cpu = meter.stop()
        total_events = pbx.events_sent - events0

        # 3. Observe the pages.
        view = pbx_board(pbx, STATES)
        changed_pages = sum(1 for d in devices if any(view.get(x, {}) != before_view.get(x, {}) for x in d))
        converged_at = [None] * clients
        while time.perf_counter() - quiet < args.observe:
            for i, (page, device_list) in enumerate(zip(pages, devices)):
                if converged_at[i] is None and page_matches(page, device_list, view):
                    converged_at[i] = page.last_board_frame or quiet
            await asyncio.sleep(0.05)
        sampler.cancel()
        tracker.recording = False
        missing = tracker.missing_per_page(quiet + 0.001)

        # Per page: equal at the end? since when, relative to quiet? how?
        lags, late, never, by_diffs, by_snapshot, neither = [], [], [], 0, 0, 0
        for i, page in enumerate(pages):
            equal_now = page_matches(page, devices[i], view)
            fresh = len(page.snapshots) > snapshots_before[i]
            if not equal_now:
                never.append(i)
                converged_at[i] = None
            else:
                if converged_at[i] is None:  # became equal after the last look of the observation loop
                    converged_at[i] = page.last_board_frame or time.perf_counter()
                lag = max(0.0, converged_at[i] - quiet)
                lags.append(lag)
                if lag > TARGET_CONVERGE_SECONDS:
                    late.append(i)
            if missing.get(i, 0) == 0:
                by_diffs += 1
            elif fresh:
                by_snapshot += 1
            else:
                neither += 1
        closed = [p.closed for p in pages if p.closed is not None]
        snap_pages = sum(len(p.snapshots) > b for p, b in zip(pages, snapshots_before))
        first_fresh = [min(t for t in p.snapshots[b:]) - burst_start for p, b in zip(pages, snapshots_before)
                       if len(p.snapshots) > b]

        span = burst_end - burst_start
        print()
        print("=" * 100)
        print(f"burst: {args.burst_rate:.0f} AMI events/s asked for {args.burst_seconds:.0f} s; sent {burst_events} events "
              f"in {span:.1f} s = {burst_events / span:.0f}/s ({started_calls} calls); with the calls' ends {total_events} "
              f"= {total_events / span:.0f} per second of burst; PBX quiet {quiet - burst_end:.1f} s after the burst")
        print(f"{servers.describe()}")
        print(f"pages: {clients} ({'hello + acks as dashboard.js' if not args.no_acks else 'no hello, no acks'}), "
              f"{connected} connected, {len(closed)} closed by the server {sorted(set(map(str, closed)))}; "
              f"steady calls {len(steady)}; AMI read size: the client's 64 KiB")
        samples = sorted(tracker.samples)
        if samples:
            print(f"event -> frame during the burst: {len(samples)} samples, p50 {percentile(samples, 0.5):.0f} ms, "
                  f"p99 {percentile(samples, 0.99):.0f} ms, max {samples[-1]:.0f} ms")
        else:
            print("event -> frame during the burst: no diff reached any page")
        print(f"CPU from the burst's start to quiet, share of one core: {cpu}")
        print(f"pages that saw every diff of their phones: {by_diffs}; missed some but got a fresh snapshot: "
              f"{by_snapshot}; missed some and got no snapshot: {neither} "
              f"(diffs missing in all: {sum(missing.values())})")
        if first_fresh:
            print(f"pages with a snapshot after the burst began: {snap_pages}; first one {min(first_fresh):.1f} s after "
                  f"the burst began, last {max(first_fresh):.1f} s")
        if lags:
            lags.sort()
            print(f"equal to the PBX at the end of the observation ({args.observe:.0f} s after quiet): {len(lags)}/{clients}; "
                  f"since (after quiet): p50 {percentile(lags, 0.5) * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms")
        within = clients - len(late) - len(never)
        converge_ok = within == clients
        print(f"pages whose phones' calls differ after the burst from before it: {changed_pages}/{clients} (only "
              "these can tell a page that missed the burst from one that followed it)")
        print(f"pages equal to the PBX within {TARGET_CONVERGE_SECONDS:.0f} s of quiet: {within}/{clients} "
              f"(later: {len(late)}, not at all: {len(never)})   target: all: {'met' if converge_ok else 'NOT MET'}")
        growth = (rss_peak[0] - rss_before) / 2**20
        rss_ok = growth < TARGET_RSS_GROWTH_MB
        who = "ami_bridge" if servers.bridge else "daphne with the embedded bridge"
        print(f"{who} RSS: {rss_before / 2**20:.0f} MB before the burst, peak {rss_peak[0] / 2**20:.0f} MB: "
              f"growth {growth:.1f} MB   target < {TARGET_RSS_GROWTH_MB} MB: {'met' if rss_ok else 'NOT MET'}")
        print("daphne RSS before -> peak: " + ", ".join(f"{b / 2**20:.0f} -> {p / 2**20:.0f} MB"
                                                      for b, p in zip(daphne_before, daphne_peak)))
        return converge_ok and rss_ok
    finally:
        for task in tasks:
            task.cancel()
        servers.stop()
        await pbx.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--calls", type=int, default=1000, help="steady calls, up throughout")
    parser.add_argument("--burst-phones", type=int, default=1000, help="trainee phones that take the burst's calls")
    parser.add_argument("--burst-rate", type=float, default=2000, help="AMI events/s during the burst")
    parser.add_argument("--burst-seconds", type=float, default=10)
    parser.add_argument("--burst-keep", type=float, default=0.25,
                        help="share of the burst's calls that stay up (so the board after differs from before)")
    parser.add_argument("--observe", type=float, default=5, help="seconds of observation after the PBX is quiet")
    parser.add_argument("--redis", default=DEFAULT_REDIS, metavar="URL",
                        help=f"Redis for the channel layer (default {DEFAULT_REDIS}; a fresh key prefix, removed afterwards)")
    parser.add_argument("--one-process", action="store_true", help="one daphne with the embedded bridge instead")
    parser.add_argument("--busy", action="store_true", help="run a CPU burner pinned to core 0 for the whole run")
    parser.add_argument("--no-acks", action="store_true", help="pages that never say hello (no acknowledgement window)")
    parser.add_argument("--connect-timeout", type=float, default=40)
    parser.add_argument("--catch-up", type=float, default=30, help="cap on waiting for the pages after the steady calls")
    sys.exit(main(parser.parse_args()))
