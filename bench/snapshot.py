"""Snapshot cost and board memory: how long a snapshot of N live calls takes to build and turn into
the WebSocket frame, and how many bytes the board holds per tracked channel.

    .venv/bin/python bench/snapshot.py [--calls 5000] [--rounds 20] [--changed 1000]

The board is filled the way the bridge fills it: AMI bytes through `Parser.feed` into
`Board.apply` (Newchannel, Newstate Up, BridgeCreate, two BridgeEnter per call: an agent's
SIP/9xxxx leg and a trunk leg, so --calls 5000 is 10,000 channels). Then, per round, the path a
dashboard's snapshot takes in the embedded setup (one daphne process, the product's in-memory layer):
  build  = the bridge answering a process's snapshot request (`Bridge.snapshot()`: the board's
           published channels as `[name, device, JSON text]`, cached per board seq),
  layer  = through the channel layer as the bridge sends it (`send_owned`) and the process
           receives it,
  load   = the process's replica taking it (`BoardReplica.load`),
  frame  = `ProcessBoard.snapshot_frame` for an admin who sees every agent phone: the replica's
           texts of the page's phones joined into the JSON text frame daphne writes to the socket
           (the only part paid per page since each process keeps a replica).
Three cases: no channel changed since the previous snapshot (every text cached); --changed
channels changed (1,000 by default: about what 500 AMI events/s change in a second); every channel
changed (all texts built again: the worst case, e.g. the first snapshot after a rebuild). Not measured: daphne
framing and the socket write (one `write` of the text), Redis (the snapshot is msgpacked there).
Target: build + layer + frame <= 50 ms for 5,000 calls.
Memory: tracemalloc before and after filling the board, divided by the channel count.

    .venv/bin/python bench/snapshot.py --served [--calls 5000] [--sockets 5] [--resyncs 4] [--redis URL] [--busy]

`--served`: the snapshot as a page gets it, end to end, in the multi-process deployment
(bench/stack.py: two daphnes + `manage.py ami_bridge` over Redis under a fresh key prefix;
`--one-process` for one daphne with the embedded bridge). The simulated PBX puts `--calls` calls
up (a trainee's phone each, 50 curators' teams) and the bench waits until the last team's page
shows its calls up. Then, one after the other, `--sockets` admin pages (who see every phone: every
call is in their snapshot) open, timed from asking for the TCP connection to the last byte of the
snapshot frame, and each sends `resync` `--resyncs` times, timed from the `resync` frame to the
last byte of the new snapshot (both include reading the user's view from the database: the
admin's `people` holds everyone); then as many curators' pages (a team's share of the calls), the
same way. Target: <= 50 ms. Daphne refuses to send a WebSocket message over its
`--websocket-max-message-size` (1 MiB by its default): a larger snapshot closes the socket with
1011. The bench passes 16 MiB, as `deploy/daphne@.service` does; `--websocket-max-message-size 0`
leaves daphne's default.
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


def served(args):
    """The end-to-end snapshot: socket opening (or resync) -> complete snapshot frame, in the real stack."""
    import asyncio
    import tempfile

    from bench.stack import Conditions, Dashboard, Servers, build_roster, setup_django, trainee_device

    setup_django(tempfile.mkdtemp(prefix="snapshot-"))
    teams = 50
    each = max(1, -(-args.calls // teams))
    print(f"roster: {teams} curators x {each} trainees, {args.sockets} admins ...", flush=True)
    curators, admins = build_roster(teams, each, admins=args.sockets)

    def time_view_reads():
        from accounts.models import Role, User
        from supervision import audience

        times = {}
        for role in (Role.ADMIN, Role.CURATOR):
            user = User.objects.filter(role=role).order_by("pk").first()
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                audience.build_view(user)
                runs.append(time.perf_counter() - t0)
            times[str(role)] = statistics.median(runs)
        return times

    async def open_page(port, cookie, wait):
        page = Dashboard(port, cookie)
        task = asyncio.create_task(page.run())
        try:
            await asyncio.wait_for(page.snapshot.wait(), wait)
        except TimeoutError:
            pass
        return page, task

    async def resync(page, wait):
        count = len(page.snapshots)
        asked = time.perf_counter()
        page.send_json({"type": "resync"})
        while len(page.snapshots) == count and time.perf_counter() - asked < wait and page.closed is None:
            await asyncio.sleep(0.001)
        return page.snapshots[-1] - asked if len(page.snapshots) > count else None

    async def run():
        from fakepbx import FakePBX

        pbx = FakePBX(port=0, seed=3)
        await pbx.start()
        devices = [trainee_device(i) for i in range(args.calls)]
        for device in devices:
            pbx.set_phone(device, "answer", ring_seconds=0.0)
        daphne_args = []
        if args.websocket_max_message_size:
            daphne_args += ["--websocket-max-message-size", str(args.websocket_max_message_size)]
        if args.websocket_max_frame_size:
            daphne_args += ["--websocket-max-frame-size", str(args.websocket_max_frame_size)]
        servers = Servers(pbx.port, "" if args.one_process else args.redis, daphne_args=daphne_args)
        tasks = []
        try:
            await servers.start()
            t0 = time.perf_counter()
            for i, device in enumerate(devices):
                await pbx.inbound_call(device, caller_num=f"5{i:09d}", talk_seconds=3600)
                if i % 50 == 49:
                    await asyncio.sleep(0.02)
            # The calls went up in order: once the last team's page shows all its calls up, the
            # bridge has read (nearly) the whole stream. That page asks again every second.
            last_team, _ = await open_page(servers.ports[0], curators[-1], 30)
            up = 0
            while time.perf_counter() - t0 < args.catch_up and last_team.closed is None:
                up = sum(1 for c in list(last_team.board.values()) if c["state"] == "up")
                if up >= each:
                    break
                await asyncio.sleep(1)
                await resync(last_team, 5)
            print(f"{args.calls} calls put up; the last team's page shows {up}/{each} up after "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
            last_team.close()
            await asyncio.sleep(1)
            results = {}
            for role, cookies in (("admin (every call in the frame)", admins),
                                  (f"curator ({each} of the calls in the frame)", curators[: args.sockets])):
                opening, again, sizes, channels, failures = [], [], [], [], []
                for n, cookie in enumerate(cookies):
                    page, task = await open_page(servers.ports[n % len(servers.ports)], cookie, args.wait)
                    tasks.append(task)
                    if not page.snapshot.is_set():
                        failures.append(f"no snapshot within {args.wait:.0f} s (socket closed: {page.closed})")
                        page.close()
                        if len(failures) >= 2:
                            break
                        continue
                    opening.append(page.snapshots[0] - page.opened)
                    sizes.append(page.snapshot_bytes)
                    channels.append(len(page.board))
                    for _ in range(args.resyncs):
                        await asyncio.sleep(0.3)
                        took = await resync(page, args.wait)
                        if took is None:
                            failures.append(f"no snapshot within {args.wait:.0f} s of a resync (socket closed: {page.closed})")
                            break
                        again.append(took)
                    page.close()
                    task.cancel()
                results[role] = opening, again, sizes, channels, failures
            print()
            print("=" * 100)
            print(f"served snapshot: {servers.describe()}")
            print(f"{args.calls} calls up ({up}/{each} shown on the last team's page); pages opened one after the "
                  "other, each then asking `resync` " + str(args.resyncs) + " times")
            views = await asyncio.to_thread(time_view_reads)
            print("the view read each snapshot of a new or resyncing page includes (audience.build_view, same "
                  "database, in the bench process, median of 3): " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in views.items()))
            verdicts = []
            for role, (opening, again, sizes, channels, failures) in results.items():
                print(f"{role}: " + (f"frame {statistics.median(sizes) / 1e6:.2f} MB, {statistics.median(channels):.0f} channels"
                                     if sizes else "no snapshot frame received"))
                for failure in sorted(set(failures)):
                    print(f"  FAILED: {failure} x{failures.count(failure)}")
                for label, values in (("socket opening -> snapshot frame", opening), ("resync -> snapshot frame", again)):
                    if not values:
                        print(f"  {label:34} no sample   target <= 50 ms: NOT MET")
                        verdicts.append(False)
                        continue
                    p99 = percentile(values, 0.99)
                    verdicts.append(p99 <= 0.050 and not failures)
                    print(f"  {label:34} {len(values)} samples: median {statistics.median(values) * 1000:.1f} ms, "
                          f"p99 {p99 * 1000:.1f} ms, max {max(values) * 1000:.1f} ms   target <= 50 ms: "
                          f"{'met' if p99 <= 0.050 else 'NOT MET'}")
            return all(verdicts)
        finally:
            for task in tasks:
                task.cancel()
            servers.stop()
            await pbx.stop()

    with Conditions(args.busy) as conditions:
        ok = asyncio.run(run())
    print(conditions.describe())
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--changed", type=int, default=1000, help="channels changed between two snapshots")
    parser.add_argument("--served", action="store_true", help="the snapshot served by the real stack (see above)")
    parser.add_argument("--sockets", type=int, default=5, help="--served: admin pages, one after the other")
    parser.add_argument("--resyncs", type=int, default=4, help="--served: resyncs per page")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", metavar="URL",
                        help="--served: Redis for the channel layer (a fresh key prefix, removed afterwards)")
    parser.add_argument("--one-process", action="store_true", help="--served: one daphne with the embedded bridge")
    parser.add_argument("--busy", action="store_true", help="--served: a CPU burner pinned to core 0 for the run")
    parser.add_argument("--catch-up", type=float, default=60, help="--served: cap on waiting for the calls to show")
    parser.add_argument("--wait", type=float, default=10, help="--served: cap on waiting for one snapshot")
    parser.add_argument("--websocket-max-message-size", type=int, default=16 * 2**20, metavar="BYTES",
                        help="--served: passed to daphne, 16 MiB by default as deploy/daphne@.service (0: daphne's "
                             "own 1 MiB, which also bounds what it sends: a larger snapshot fails the socket, 1011)")
    parser.add_argument("--websocket-max-frame-size", type=int, default=0, metavar="BYTES",
                        help="--served: passed to daphne when set (default: daphne's own)")
    args = parser.parse_args()
    if args.served:
        sys.exit(served(args))

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
    from supervision.process_board import ProcessBoard

    layer = InMemoryChannelLayer()
    bridge = Bridge(IdleClient(), board, layer=layer, name="pbx")
    visible = frozenset(f"SIP/9{i:04d}" for i in range(args.calls))
    view = audience.View(me={}, people=[], devices=visible)

    names = list(board._published)  # noqa: SLF001
    rng = random.Random(5)

    async def one_round(changed):
        for name in rng.sample(names, min(changed, len(names))):
            board._json.pop(name, None)  # noqa: SLF001 - as if the channel had changed
        if changed:
            bridge._snapshot_cache = (None, None)  # noqa: SLF001 - as if the board had moved on
        t0 = time.perf_counter()
        reply = bridge.snapshot()
        t1 = time.perf_counter()
        await layer.send_owned("supervision.process.bench", reply)
        event = await layer.receive("supervision.process.bench")
        t2 = time.perf_counter()
        process = ProcessBoard(layer, asyncio.get_running_loop())  # its tasks are not started
        process.replica.load(event)
        process.link = event["link"]
        t3 = time.perf_counter()
        _seq, frame = process.snapshot_frame(view)
        t4 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3, len(frame)

    def ms(values):
        return f"median {statistics.median(values) * 1000:6.1f} ms   p99 {percentile(values, 0.99) * 1000:6.1f} ms"

    bridge.snapshot()  # the texts of the filling, as after a first dashboard
    results = {}
    for changed in (0, args.changed, len(names)):
        results[changed] = [asyncio.run(one_round(changed)) for _ in range(args.rounds)]
    size = results[0][0][4]
    print(f"{args.calls} calls = {channels} channels on the board; {len(visible)} shown in the frame ({size / 1e6:.2f} MB)")
    for changed, rounds in results.items():
        build, through, load, framing, _sizes = zip(*rounds)
        total = [sum(parts) for parts in zip(build, through, load, framing)]
        print(f"{changed} channels changed since the previous snapshot:")
        print(f"  build (Bridge.snapshot)               {ms(build)}   once per process and board seq")
        print(f"  layer (send_owned, receive)           {ms(through)}")
        print(f"  load (the process's replica)          {ms(load)}   once per process")
        print(f"  frame (ProcessBoard.snapshot_frame)   {ms(framing)}   per page")
        print(f"  total                                 {ms(total)}   target <= 50 ms")
    print(f"memory: {grown / 1e6:.1f} MB for {channels} channels = {grown / channels:,.0f} bytes per tracked channel "
          f"(tracemalloc, board + its bridge index)")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
