"""Fan-out latency: from an AMI event leaving the PBX to the WebSocket frame reaching a browser.

    .venv/bin/python bench/fanout.py [--clients 200] [--calls 1000] [--events-per-second 500] [--seconds 15]
    .venv/bin/python bench/fanout.py --redis [redis://127.0.0.1:6379/12]

The whole real stack on loopback: one daphne process (`supervision.asgi:application`, embedded
bridge, in-memory channel layer, SQLite in a temporary directory) logged in over AMI/TCP to the
simulated PBX running in this process; `--clients` authenticated WebSocket clients (a minimal
RFC 6455 client on asyncio streams) also in this process. The roster: one curator per client,
each with `--calls / --clients` trainees, so every call is watched by exactly one dashboard.

The PBX first puts `--calls` calls up, then keeps that many up by ending and starting calls at the
rate that gives `--events-per-second` AMI events. For every call it times three moments: its
Newchannel, its Newstate to Up and its Hangup leaving the PBX, and the first frame with the
matching diff (upsert, state up, remove) arriving at the curator's socket. Same clock, one process.
Target: p99 <= 50 ms.

`--redis [URL]`: the multi-process deployment instead: two daphne processes (AMI_BRIDGE=external)
and one `manage.py ami_bridge` process sharing the Redis channel layer at URL (a database of its
own, emptied before and after the run) and the same temporary SQLite database; the dashboards are
split between the two daphnes. Target: p99 <= 100 ms.
"""

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import secrets
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import percentile  # noqa: E402
from tests.browser_stack import free_port, wait_for_port  # noqa: E402


def setup_django(var_dir, redis_url=""):
    os.environ["DASHBOARD_VAR_DIR"] = var_dir
    os.environ["DATABASE_URL"] = ""
    os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_roster(clients, trainees_each):
    """Curators SIP/8xxxx, trainees SIP/9xxxx (the simulator's load devices); one session each."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import Extension, Role, User

    password = make_password(secrets.token_urlsafe(12))
    curators = User.objects.bulk_create(
        User(username=f"curator{i}", first_name="Curator", last_name=str(i), role=Role.CURATOR, password=password)
        for i in range(clients)
    )
    trainees = User.objects.bulk_create(
        User(username=f"trainee{i}", first_name="Trainee", last_name=str(i), role=Role.TRAINEE,
             curator=curators[i // trainees_each], password=password)
        for i in range(clients * trainees_each)
    )
    Extension.objects.bulk_create(
        [Extension(user=c, technology="SIP", resource=f"8{i:04d}") for i, c in enumerate(curators)]
        + [Extension(user=t, technology="SIP", resource=f"9{i:04d}") for i, t in enumerate(trainees)]
    )
    cookies = []
    for user in User.objects.filter(role=Role.CURATOR).order_by("pk"):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        cookies.append(f"sessionid={session.session_key}")
    return cookies


# --- a minimal WebSocket client ------------------------------------------------------------------


class Dashboard:
    def __init__(self, port, cookie, on_message):
        self.port, self.cookie, self.on_message = port, cookie, on_message
        self.snapshot = asyncio.Event()

    async def run(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer = writer
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(
            (f"GET /ws/dashboard/ HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
             f"Origin: http://127.0.0.1:{self.port}\r\nCookie: {self.cookie}\r\n\r\n").encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"handshake refused: {head[:80]!r}")
        buffer = b""
        while True:
            b0, b1 = await reader.readexactly(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await reader.readexactly(8))[0]
            payload = await reader.readexactly(length)
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping: answer, or daphne drops us
                self.send(0xA, payload)
            elif opcode == 0x8:
                return
            elif opcode in (0x1, 0x0):
                buffer += payload
                if b0 & 0x80:
                    received = time.perf_counter()
                    message = json.loads(buffer)
                    buffer = b""
                    if message["type"] == "snapshot":
                        self.snapshot.set()
                    self.on_message(message, received)

    def send(self, opcode, payload):
        mask = secrets.token_bytes(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


# --- timing --------------------------------------------------------------------------------------


class Stopwatch:
    """Emission times of Newchannel / Up / Hangup per channel, matched to the first frame showing it."""

    def __init__(self):
        self.sent = {}  # (kind, channel name) -> perf_counter at emission
        self.samples = []
        self.recording = False
        self.frames = 0

    def emitted(self, event_class, pairs):
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

    def received(self, message, at):
        if message["type"] != "diff":
            return
        self.frames += 1
        for diff in message["diffs"]:
            if diff["op"] == "upsert":
                name = diff["channel"]["name"]
                keys = [("new", name)] + ([("up", name)] if diff["channel"]["state"] == "up" else [])
            else:
                keys = [("gone", diff["name"])]
            for key in keys:
                start = self.sent.pop(key, None)
                if start is not None and self.recording:
                    self.samples.append((at - start) * 1000)


def flush_redis(url):
    """The bench's own Redis database starts and ends empty (no groups left from an earlier run)."""
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def keep_calls_up(pbx, calls, calls_per_second, talk, rng):
    """Start calls while fewer than `calls` are up, at `calls_per_second`."""
    devices = [f"SIP/9{i:04d}" for i in range(calls)]
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
    """The database work (sync), then the measured run (async)."""
    if args.redis:
        flush_redis(args.redis)
    setup_django(tempfile.mkdtemp(prefix="fanout-"), args.redis or "")
    trainees_each = max(1, args.calls // args.clients)
    print(f"roster: {args.clients} curators x {trainees_each} trainees ...", flush=True)
    cookies = build_roster(args.clients, trainees_each)
    return asyncio.run(run(args, cookies, trainees_each))


async def run(args, cookies, trainees_each):
    from fakepbx import FakePBX

    calls = args.clients * trainees_each
    rng = random.Random(7)

    pbx = FakePBX(port=0, seed=7)
    await pbx.start()
    for i in range(calls):
        pbx.set_phone(f"SIP/9{i:04d}", "answer", ring_seconds=0.5)
    watch = Stopwatch()
    original_emit = pbx.switch.emit

    def timed_emit(event_class, pairs):
        watch.emitted(event_class, pairs)
        original_emit(event_class, pairs)

    pbx.switch.emit = timed_emit

    env = {**os.environ, "AMI_PORT": str(pbx.port), "AMI_BRIDGE": "external" if args.redis else "embedded",
           "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    ports = [free_port() for _ in range(2 if args.redis else 1)]
    servers = [
        subprocess.Popen(
            [sys.executable, *profile, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), "supervision.asgi:application"],
            env=env, cwd=ROOT,
        )
        for port in ports
    ]
    if args.redis:
        servers.append(subprocess.Popen([sys.executable, "manage.py", "ami_bridge"], env=env, cwd=ROOT,
                                        stdout=subprocess.DEVNULL))
    tasks = []
    try:
        for port in ports:
            await asyncio.to_thread(wait_for_port, port)
        dashboards = [Dashboard(ports[i % len(ports)], cookie, watch.received) for i, cookie in enumerate(cookies)]
        for index in range(0, len(dashboards), 20):  # connect in batches, as browsers would trickle in
            batch = dashboards[index : index + 20]
            tasks += [asyncio.create_task(d.run()) for d in batch]
            await asyncio.wait_for(asyncio.gather(*(d.snapshot.wait() for d in batch)), 60)
        print(f"{len(dashboards)} dashboards connected; AMI sessions on the PBX: {pbx.sessions}", flush=True)

        # One call's events, to set the call rate that gives the wanted event rate.
        before = pbx.events_sent
        await pbx.inbound_call("SIP/90000", talk_seconds=0.2)
        await asyncio.sleep(1.5)
        per_call = max(1, pbx.events_sent - before)
        calls_per_second = args.events_per_second / per_call
        talk = calls / calls_per_second
        print(f"{per_call} AMI events per call -> {calls_per_second:.0f} calls/s, {talk:.0f} s each", flush=True)

        # Put the calls up (remaining talk spread evenly, so they end at the steady rate), then churn.
        for i in range(calls):
            await pbx.inbound_call(f"SIP/9{i:04d}", caller_num=f"5{rng.randrange(10**9, 10**10)}",
                                   talk_seconds=rng.uniform(1.0, talk))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        churn = asyncio.create_task(keep_calls_up(pbx, calls, calls_per_second, talk, rng))
        # Putting a thousand calls up is a burst of ~16,000 events: measure only once the server
        # has caught up (nothing emitted more than a second ago is still unseen), then settle.
        waited = time.perf_counter()
        while time.perf_counter() - waited < 120:
            await asyncio.sleep(0.5)
            oldest = min((t for (kind, _), t in list(watch.sent.items()) if kind == "new"), default=None)
            if oldest is None or time.perf_counter() - oldest < 1.0:
                break
        print(f"caught up with the burst after {time.perf_counter() - waited:.1f} s", flush=True)
        await asyncio.sleep(args.settle)

        live = (len(pbx.switch.channels)) // 2
        watch.samples.clear()
        watch.recording = True
        events0, frames0, t0 = pbx.events_sent, watch.frames, time.perf_counter()
        cpu0 = [cpu_seconds(server.pid) for server in servers]
        await asyncio.sleep(args.seconds)
        elapsed = time.perf_counter() - t0
        events, frames = pbx.events_sent - events0, watch.frames - frames0
        cpu = [cpu_seconds(server.pid) - before for server, before in zip(servers, cpu0)]
        watch.recording = False
        churn.cancel()
        live_end = len(pbx.switch.channels) // 2

        samples = sorted(watch.samples)
        if not samples:
            raise SystemExit("no samples: no diff reached a dashboard")

        def pct(p):
            return percentile(samples, p / 100)

        print()
        print(f"machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, load {os.getloadavg()[0]:.1f}")
        print(f"dashboards: {len(dashboards)} (one curator each, {trainees_each} trainees each); AMI sessions: {pbx.sessions}")
        print(f"live calls: {live} at start, {live_end} at end of the window")
        print(f"AMI events: {events / elapsed:.0f}/s; frames to browsers: {frames / elapsed:.0f}/s; window {elapsed:.1f} s")
        if args.redis:
            shares = ", ".join(f"{100 * c / elapsed:.0f}%" for c in cpu)
            print(f"server CPU (daphne, daphne, ami_bridge): {shares} of one core each; Redis {args.redis}")
        else:
            print(f"server (daphne + bridge, one process) CPU: {100 * cpu[0] / elapsed:.0f}% of one core")
        print(f"latency AMI event -> WebSocket frame, {len(samples)} samples (Newchannel, Up, Hangup):")
        print(f"  p50 {pct(50):.1f} ms   p90 {pct(90):.1f} ms   p99 {pct(99):.1f} ms   max {samples[-1]:.1f} ms   mean {statistics.mean(samples):.1f} ms")
        target = 100 if args.redis else 50
        verdict = "OK" if pct(99) <= target else "ABOVE TARGET"
        print(f"target p99 <= {target} ms: {verdict}")
        return 0 if pct(99) <= target else 1
    finally:
        for task in tasks:
            task.cancel()
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        await pbx.stop()
        if args.redis:
            flush_redis(args.redis)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--events-per-second", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=15, help="measurement window")
    parser.add_argument("--profile", metavar="FILE", help="run the server under cProfile, stats to FILE")
    parser.add_argument("--redis", nargs="?", const="redis://127.0.0.1:6379/12", default="", metavar="URL",
                        help="two daphnes + manage.py ami_bridge over the Redis channel layer at URL "
                             "(default redis://127.0.0.1:6379/12; that database is emptied)")
    parser.add_argument("--settle", type=float, default=3, help="seconds between catching up with the burst and measuring")
    sys.exit(main(parser.parse_args()))
