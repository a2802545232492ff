"""Press-to-Originate latency: from a spy press reaching the dashboard socket to the simulated PBX
receiving the Originate bytes, the session check, policy check and audit row included.

    .venv/bin/python bench/action_latency.py [--presses 300] [--calls 50]
    .venv/bin/python bench/action_latency.py --redis [redis://127.0.0.1:6379/12]

One process: the simulated PBX over loopback TCP with `--calls` live calls, the real AMIClient and
Bridge with the product's command modules, the in-memory channel layer, and a database in a
temporary directory (SQLite; DATABASE_URL=postgres://... uses that server: give it a database of its
own, the demo roster is written into it). The demo curator, logged in (a database session), presses
Listen on a trainee's call, waits until her phone is spying, stops, and presses again. t0: the press
reaches `CommandSocket._receive` after its shape check: what the socket does from there is done
here (its own session check for a command that does not carry its session to the bridge, then
the `bridge.command` with the press's session sealed into it); t1: the PBX has parsed the
`Action: Originate` frame. Same clock. The queries run between t0 and t1 on the database thread
(where the socket's and the bridge's database steps run) are counted per press.
`--redis [URL]`: the channel layer is channels_redis at URL (its own key prefix, flushed after), as
with several daphnes and `ami_bridge`: the press then crosses Redis on its way to the bridge.
Targets: p99 <= 15 ms (PostgreSQL and Redis), 1-2 queries per press before the Originate.
"""

import argparse
import asyncio
import collections
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402


def setup_django(var_dir, redis_url=""):
    os.environ["DASHBOARD_VAR_DIR"] = var_dir
    os.environ.setdefault("DATABASE_URL", "")
    os.environ["REDIS_URL"] = redis_url
    os.environ["CHANNEL_LAYER_PREFIX"] = f"bench-action-{os.getpid()}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "supervision.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


async def run(presses, calls):
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from channels.db import database_sync_to_async
    from django.db import connections

    from accounts import sessions
    from accounts.demo import seed_demo_roster
    from supervision import monitoring
    from fakepbx import FakePBX
    from supervision.bridge import BRIDGE_CHANNEL, user_group
    from supervision.bridge_host import build_bridge

    monitoring.PRESS_LIMIT = 10**9  # the rate limit protects the PBX from people, not from a benchmark
    roster = await sync_to_async(seed_demo_roster)()
    anna = roster.users["petrova"]
    target = roster.extensions["ivanov"]

    pbx = FakePBX(port=0, auth_fail_delay=0.01, playback_seconds=0.2, ringing_context_seconds=0.5)
    for i in range(calls):
        pbx.set_phone(f"SIP/9{i:04d}", "answer", ring_seconds=0)
    for device in ("SIP/101", "SIP/201"):
        pbx.set_phone(device, "answer", ring_seconds=0)
    originate_at = []
    queries = [0]  # run so far on the database thread
    queries_at_originate = []
    original = pbx._dispatch

    async def timed_dispatch(session, message):
        if (message.get("Action") or "").lower() == "originate":
            originate_at.append(time.perf_counter())
            queries_at_originate.append(queries[0])
        await original(session, message)

    statements = []  # the first words of each, to say what a press with more than two met

    def counted(execute, sql, params, many, context):
        queries[0] += 1
        statements.append(" ".join(sql.split()[:4])[:80])
        return execute(sql, params, many, context)

    def count_queries():
        """On the database thread (its connection): count every query from now on."""
        connections["default"].execute_wrappers.append(counted)

    await sync_to_async(count_queries)()
    session_key = await sync_to_async(_logged_in_session)(anna)

    pbx._dispatch = timed_dispatch
    await pbx.start()
    layer = get_channel_layer()
    bridge = build_bridge(layer, port=pbx.port)
    await bridge.start()
    await bridge.client.wait_until("up", timeout=10)
    for i in range(calls):
        await pbx.inbound_call(f"SIP/9{i:04d}", caller_num=f"555{i:04d}")
    await pbx.inbound_call("SIP/101", caller_num="5550199")
    while not (bridge.board.live_channel("SIP/101") or {}).get("state") == "up":
        await asyncio.sleep(0.01)

    inbox = await layer.new_channel()
    await layer.group_add(user_group(anna.pk), inbox)

    async def until_state(*states):
        while True:
            message = (await layer.receive(inbox))["message"]
            if message.get("type") == "spy.status" and message["state"] in states:
                return message

    latencies, press_queries, others = [], [], []
    for _ in range(presses):
        command = {"type": "spy", "target": target.pk, "mode": "listen"}
        t0 = time.perf_counter()
        queries_at_t0 = queries[0]
        # What CommandSocket._receive does with a press after its shape check.
        if not sessions.press_checks_session(command["type"], session_key):
            if await database_sync_to_async(sessions.live_user_id)(session_key) != anna.pk:
                raise SystemExit("the bench's session is not live")
        await layer.send(BRIDGE_CHANNEL, {"type": "bridge.command", "command": sessions.forwarded(command, session_key),
                                          "user_id": anna.pk, "reply_to": inbox, "client": "127.0.0.1",
                                          "language": "en"})
        status = await asyncio.wait_for(until_state("spying", "denied", "failed"), 10)
        if status["state"] != "spying":
            raise SystemExit(f"press refused: {status}")
        latencies.append(originate_at[-1] - t0)
        press_queries.append(queries_at_originate[-1] - queries_at_t0)
        if press_queries[-1] > 2:
            others.extend(statements[queries_at_t0:queries_at_originate[-1]])
        await layer.send(BRIDGE_CHANNEL, {"type": "bridge.command", "command": {"type": "spy.stop"}, "user_id": anna.pk,
                                          "reply_to": inbox, "client": "127.0.0.1", "language": "en"})
        await asyncio.wait_for(until_state("ended", "idle"), 10)
    await bridge.stop()
    await pbx.stop()
    if hasattr(layer, "flush"):
        await layer.flush()
    return latencies, press_queries, others


def _logged_in_session(user):
    from tests.live_stack import login_session_key

    return login_session_key(user)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--calls", type=int, default=50, help="other live calls on the PBX and the board")
    parser.add_argument("--redis", nargs="?", const="redis://127.0.0.1:6379/12", default="", metavar="URL",
                        help="use the Redis channel layer at URL (default redis://127.0.0.1:6379/12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var_dir:
        setup_django(var_dir, args.redis)
        from django.db import connection

        latencies, press_queries, others = asyncio.run(run(args.presses, args.calls))
        engine = connection.vendor
    ms = [value * 1000 for value in latencies]
    layer = f"Redis {args.redis}" if args.redis else "in-memory"
    print(f"{len(ms)} presses, {args.calls} other live calls, database {engine}, channel layer {layer}")
    print(f"press -> Originate on the wire: median {statistics.median(ms):.2f} ms, p90 {percentile(ms, 0.9):.2f} ms, "
          f"p99 {percentile(ms, 0.99):.2f} ms, max {max(ms):.2f} ms   target p99 <= 15 ms (PostgreSQL, Redis)")
    print(f"queries per press before the Originate: median {statistics.median(press_queries):g}, "
          f"max {max(press_queries)}   target 1-2")
    if others:
        # Another step on the database thread in the same window (the previous press's last row
        # update, the call history's rows): not the press's, but counted where it ran.
        met = collections.Counter(others).most_common(4)
        print(f"presses with more than 2 in their window: {sum(n > 2 for n in press_queries)}; their statements: {met}")
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average {load} (1, 5, 15 min)")


if __name__ == "__main__":
    main()
