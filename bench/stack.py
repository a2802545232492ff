"""The real stack the end-to-end benches drive (`fanout.py`, `burst.py`, `snapshot.py --served`).

One process or the multi-process deployment, on loopback, against the simulated PBX running in
the bench's own process:
  - one process: one daphne (`supervision.asgi:application`, embedded bridge, in-memory layer);
  - Redis: two daphnes (AMI_BRIDGE=external) and one `manage.py ami_bridge` sharing the Redis
    channel layer under a fresh key prefix (`CHANNEL_LAYER_PREFIX=bench-<random>`), so any Redis
    database will do and nothing of another user of it is touched; the prefix's keys are deleted
    afterwards.
Both use a temporary SQLite database. The dashboards are minimal RFC 6455 clients on asyncio
streams; each keeps the board its frames describe (snapshot, then diffs applied in order), so a
bench can compare what a page shows with what the PBX has.
"""

import asyncio
import base64
import json
import os
import platform
import secrets
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser_stack import free_port, wait_for_port  # noqa: E402

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
# The board's names for Asterisk's ChannelState codes (supervision/board.py STATES, read at run time).
ACK_EVERY_FRAMES, ACK_AFTER_SECONDS = 50, 0.5  # as static/supervision/dashboard.js


def setup_django(var_dir):
    """The bench's own Django (roster and sessions only): the servers get their settings from `env`."""
    os.environ["DASHBOARD_VAR_DIR"] = var_dir
    os.environ["DATABASE_URL"] = ""
    os.environ["REDIS_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def session_cookie(user):
    from tests.live_stack import login_session_key

    return f"sessionid={login_session_key(user)}"


def build_roster(curators, trainees_each, admins=0):
    """Curators SIP/8xxxx with `trainees_each` trainees SIP/9xxxx each (trainee j belongs to curator
    j // trainees_each), and `admins` admins without a phone. Returns (curator cookies, admin cookies)."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import Extension, Role, User

    password = make_password(secrets.token_urlsafe(12))
    made = User.objects.bulk_create(
        User(username=f"curator{i}", first_name="Curator", last_name=str(i), role=Role.CURATOR, password=password)
        for i in range(curators)
    )
    trainees = User.objects.bulk_create(
        User(username=f"trainee{i}", first_name="Trainee", last_name=str(i), role=Role.TRAINEE,
             curator=made[i // trainees_each], password=password)
        for i in range(curators * trainees_each)
    )
    Extension.objects.bulk_create(
        [Extension(user=c, technology="SIP", resource=f"8{i:04d}") for i, c in enumerate(made)]
        + [Extension(user=t, technology="SIP", resource=f"9{i:04d}") for i, t in enumerate(trainees)]
    )
    User.objects.bulk_create(
        User(username=f"admin{i}", first_name="Admin", last_name=str(i), role=Role.ADMIN, password=password)
        for i in range(admins)
    )
    curator_cookies = [session_cookie(u) for u in User.objects.filter(role=Role.CURATOR).order_by("pk")]
    admin_cookies = [session_cookie(u) for u in User.objects.filter(role=Role.ADMIN).order_by("pk")]
    return curator_cookies, admin_cookies


def trainee_device(index):
    return f"SIP/9{index:04d}"


# --- conditions ----------------------------------------------------------------------------------


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def code_under_test():
    """Which code the servers run: the commit of this checkout, and whether files outside bench/
    differ from it (a tree others are editing gives figures for no commit)."""
    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("log", "-1", "--format=%h %s") or "not a git checkout"
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
               if not line[3:].startswith("bench/")]
    state = f"{len(changed)} files outside bench/ changed since ({', '.join(changed[:5])}...)" if changed else "clean"
    return f"code under test: {ROOT} at {commit[:90]}; {state}"


class Conditions:
    """What the figures depend on: printed with them. `--busy` runs a CPU burner pinned to core 0."""

    def __init__(self, busy):
        self.busy = busy
        self.burner = None
        self.load_start = self.load_end = None

    def __enter__(self):
        self.load_start = loadavg()
        if self.busy:
            self.burner = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc):
        self.load_end = loadavg()
        if self.burner is not None:
            self.burner.terminate()
            self.burner.wait(5)

    def describe(self):
        busy = (f"yes (a Python busy loop pinned with taskset -c 0, pid {self.burner.pid})"
                if self.burner else "no")
        return (f"{code_under_test()}\n"
                f"machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; "
                f"busy core: {busy}; /proc/loadavg at start {self.load_start}, at end {self.load_end or loadavg()}")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """This process (the simulated PBX and the pages), all threads."""
    times = os.times()
    return times.user + times.system


def redis_cpu_seconds(url):
    """The Redis server's own CPU (INFO cpu), or None without Redis."""
    if not url:
        return None
    import redis

    info = redis.Redis.from_url(url, socket_connect_timeout=2).info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


class CpuMeter:
    """CPU of the servers, of this process and of Redis over a stretch, as shares of one core."""

    def __init__(self, servers):
        self.servers = servers

    def start(self):
        self.t0 = time.perf_counter()
        self.servers0 = [cpu_seconds(p.pid) for p in self.servers.processes]
        self.own0 = own_cpu_seconds()
        self.redis0 = redis_cpu_seconds(self.servers.redis_url)

    def stop(self):
        elapsed = time.perf_counter() - self.t0
        shares = [(name, cpu_seconds(p.pid) - c) for name, p, c in
                  zip(self.servers.names(), self.servers.processes, self.servers0)]
        shares.append(("bench (PBX + pages)", own_cpu_seconds() - self.own0))
        if self.redis0 is not None:
            shares.append(("redis-server", redis_cpu_seconds(self.servers.redis_url) - self.redis0))
        return ", ".join(f"{name} {100 * c / elapsed:.0f}%" for name, c in shares)


def rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# --- the servers ---------------------------------------------------------------------------------


class Servers:
    """One daphne with the embedded bridge (`redis_url` empty), or two daphnes + `ami_bridge` over
    Redis under a fresh key prefix. `daphnes` and `bridge` are the Popen objects."""

    def __init__(self, ami_port, redis_url="", profile=None, daphne_args=()):
        self.redis_url = redis_url
        self.daphne_args = list(daphne_args)
        self.prefix = f"bench-{secrets.token_hex(4)}" if redis_url else ""
        self.env = {**os.environ, "AMI_PORT": str(ami_port), "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
                    "AMI_BRIDGE": "external" if redis_url else "embedded", "REDIS_URL": redis_url,
                    "CHANNEL_LAYER_PREFIX": self.prefix or "supervision"}
        self.profile = ["-m", "cProfile", "-o", profile] if profile else []
        self.ports = [free_port() for _ in range(2 if redis_url else 1)]
        self.daphnes, self.bridge = [], None

    @property
    def processes(self):
        return self.daphnes + ([self.bridge] if self.bridge else [])

    def names(self):
        return ["daphne"] * len(self.daphnes) + (["ami_bridge"] if self.bridge else [])

    async def start(self):
        self.daphnes = [
            subprocess.Popen([sys.executable, *self.profile, "-m", "daphne", "-v", "0", "-b", "127.0.0.1",
                              "-p", str(port), *self.daphne_args, "supervision.asgi:application"], env=self.env, cwd=ROOT)
            for port in self.ports
        ]
        if self.redis_url:
            self.bridge = subprocess.Popen([sys.executable, "manage.py", "ami_bridge"], env=self.env, cwd=ROOT,
                                           stdout=subprocess.DEVNULL)
        for port, process in zip(self.ports, self.daphnes):
            await asyncio.to_thread(wait_for_port, port, process)

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.redis_url:
            import redis

            store = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
            for key in store.scan_iter(self.prefix + "*", count=1000):
                store.delete(key)

    def describe(self):
        extra = f"; daphne {' '.join(self.daphne_args)}" if self.daphne_args else ""
        if self.redis_url:
            return (f"two daphnes + manage.py ami_bridge over Redis {self.redis_url} "
                    f"(key prefix {self.prefix}, removed afterwards){extra}")
        return f"one daphne process (embedded bridge, in-memory channel layer){extra}"


# --- a minimal WebSocket client ------------------------------------------------------------------


class Dashboard:
    """One dashboard socket. `board` is what the page would show: channel name -> channel dict, from
    the last snapshot and the diffs after it. With `acks` it says hello and acknowledges as
    dashboard.js does (every 50 frames or 500 ms after the first unacknowledged one), so the
    server's acknowledgement window applies to it."""

    def __init__(self, port, cookie, on_message=None, *, acks=False):
        self.port, self.cookie, self.on_message, self.acks = port, cookie, on_message, acks
        self.snapshot = asyncio.Event()
        self.board = {}
        self.seq = None
        self.snapshots = []  # perf_counter of each snapshot frame completed
        self.last_board_frame = None  # perf_counter of the last snapshot or diff frame
        self.frames = 0
        self.snapshot_bytes = 0  # size of the last snapshot frame
        self.opened = None  # perf_counter when the TCP connection was asked for
        self.closed = None  # close code, or "eof"
        self.writer = None
        self._unacked, self._ack_timer = 0, None

    async def run(self):
        self.opened = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=2**20)
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
        if self.acks:
            self.send_json({"type": "hello", "acks": True})
        buffer = b""
        try:
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
                    self.closed = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    return
                elif opcode in (0x1, 0x0):
                    buffer += payload
                    if b0 & 0x80:
                        received = time.perf_counter()
                        message = json.loads(buffer)
                        if message["type"] == "snapshot":
                            self.snapshot_bytes = len(buffer)
                        buffer = b""
                        self._apply(message, received)
                        if self.on_message is not None:
                            self.on_message(self, message, received)
        except asyncio.IncompleteReadError:
            self.closed = "eof"

    def _apply(self, message, at):
        kind = message["type"]
        if kind == "snapshot":
            self.board = {channel["name"]: channel for channel in message["channels"]}
            self.seq = message["seq"]
            self.snapshots.append(at)
            self.snapshot.set()
        elif kind == "diff":
            for diff in message["diffs"]:
                if diff["op"] == "upsert":
                    self.board[diff["channel"]["name"]] = diff["channel"]
                elif diff["op"] == "remove":
                    self.board.pop(diff["name"], None)
            self.seq = message["seq"]
        else:
            return
        self.frames += 1
        self.last_board_frame = at
        if self.acks:
            self._unacked += 1
            if self._unacked >= ACK_EVERY_FRAMES:
                self._send_ack()
            elif self._ack_timer is None:
                self._ack_timer = asyncio.get_running_loop().call_later(ACK_AFTER_SECONDS, self._send_ack)

    def _send_ack(self):
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._unacked = 0
        if self.seq is not None:
            self.send_json({"type": "ack", "seq": self.seq})

    def close(self):
        if self.writer is not None and not self.writer.is_closing():
            self.send(0x8, struct.pack("!H", 1000))
            self.writer.close()

    def send_json(self, message):
        self.send(0x1, json.dumps(message).encode())

    def send(self, opcode, payload):
        if self.writer is None or self.writer.is_closing():
            return
        mask = secrets.token_bytes(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            head = bytes([0x80 | opcode, 0x80 | len(payload)])
        else:
            head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", len(payload))
        self.writer.write(head + mask + masked)


def _report_failure(task):
    if not task.cancelled() and task.exception() is not None:
        print(f"a dashboard socket failed: {task.exception()!r}", file=sys.stderr, flush=True)


async def connect_all(dashboards, deadline, batch=20):
    """Connect in batches (as browsers trickle in), each batch waiting for its snapshots; stops at
    `deadline` (perf_counter). Returns (tasks, how many got their snapshot)."""
    tasks = []
    for index in range(0, len(dashboards), batch):
        group = dashboards[index : index + batch]
        for d in group:
            task = asyncio.create_task(d.run())
            task.add_done_callback(_report_failure)
            tasks.append(task)
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        try:
            await asyncio.wait_for(asyncio.gather(*(d.snapshot.wait() for d in group)), left)
        except TimeoutError:
            break
    return tasks, sum(d.snapshot.is_set() for d in dashboards)


def pbx_board(pbx, states):
    """What the PBX has, as the board would show it: device -> {channel name: state}."""
    view = {}
    for channel in list(pbx.switch.channels.values()):
        if channel.device:
            view.setdefault(channel.device, {})[channel.name] = states.get(str(channel.state), "unknown")
    return view
