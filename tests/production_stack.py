"""The production shape on loopback: daphne processes with AMI_BRIDGE=external, one `manage.py
ami_bridge` process, Redis between them, a fresh database of their own, and real WebSocket clients
logged in over HTTP like a browser.

The servers' database: a temporary SQLite file, or under DATABASE_URL=postgres://... a uniquely
named PostgreSQL database created for the test and dropped after it.
"""

import asyncio
import base64
import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import signal
import struct
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import redis

from fakepbx import FakePBXThread
from tests.browser_stack import free_port, fresh_server_database, wait_for_port  # noqa: F401 (free_port: used by the tests)
from tests.conftest import FAKEPBX_FAST, _fakepbx_phones

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def fresh_database():
    """{"DATABASE_URL": ...} for the servers under test: SQLite in their var dir, or a new PostgreSQL
    database when the suite runs on PostgreSQL."""
    return fresh_server_database("supervision_stack")


@contextlib.contextmanager
def production_pbx():
    """The simulated PBX in its own thread: the suite's phones, and SIP/201 (Anna's headset)."""
    with FakePBXThread(port=0, **FAKEPBX_FAST) as runner:
        runner.call(_fakepbx_phones)
        runner.call(lambda p: p.set_phone("SIP/201", "answer", ring_seconds=0))
        yield runner


@contextlib.contextmanager
def deployment(workdir, redis_url, ami_port, **extra):
    """A prepared Stack (fresh database, migrated, demo roster) for the PBX at `ami_port`; its
    processes stopped and its channel-layer keys removed from Redis afterwards."""
    with fresh_database() as database:
        env = Stack.environment(workdir, redis_url=redis_url, ami_port=ami_port, database=database, **extra)
        stack = Stack(workdir, env)
        stack.prepare()
        try:
            yield stack
        finally:
            stack.stop()
            store = redis.Redis.from_url(redis_url)
            for key in store.scan_iter(env["CHANNEL_LAYER_PREFIX"] + "*"):
                store.delete(key)


async def wait_until(predicate, timeout=20.0):
    """Poll `predicate()` (the processes under test need longer than an in-process stack)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


class Stack:
    """Processes of one deployment; `env` is what every one of them gets."""

    def __init__(self, workdir, env):
        self.workdir = Path(workdir)
        self.env = env
        self.processes = []  # (name, Popen, log path)
        self.web_ports = []
        self.bridge = None

    @classmethod
    def environment(cls, workdir, *, redis_url, ami_port, database, **extra):
        env = {
            **os.environ,
            **database,
            "REDIS_URL": redis_url,
            "CHANNEL_LAYER_PREFIX": f"test-{secrets.token_hex(4)}",
            "AMI_HOST": "127.0.0.1",
            "AMI_PORT": str(ami_port),
            "AMI_BRIDGE": "external",
            "AMI_RECONNECT_MAX": "1",
            "DASHBOARD_VAR_DIR": str(workdir),
            "DJANGO_DEBUG": "0",
            "PYTHONPATH": str(ROOT),
            **{key: str(value) for key, value in extra.items()},
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        return env

    def prepare(self):
        """migrate + the demo roster (passwords demo-<username>)."""
        subprocess.run([*MANAGE, "migrate", "--noinput", "-v", "0"], env=self.env, cwd=ROOT, check=True)
        subprocess.run([*MANAGE, "seed_demo"], env=self.env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    def _spawn(self, name, argv):
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append((name, process, log))
        return process, log

    def start_web(self, *daphne_args):
        port = free_port()
        process, log = self._spawn(f"daphne-{port}", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                                     *daphne_args, "supervision.asgi:application"])
        wait_for_port(port, process, log=log)
        self.web_ports.append(port)
        return f"http://127.0.0.1:{port}"

    def start_bridge(self):
        self.bridge, _log = self._spawn("ami_bridge", [*MANAGE, "ami_bridge"])
        return self.bridge

    def kill_bridge(self):
        self.bridge.send_signal(signal.SIGKILL)
        self.bridge.wait(10)

    def logs(self):
        return "\n".join(f"--- {name}\n{log.read_text()[-3000:]}" for name, _p, log in self.processes)

    def stop(self):
        for _name, process, _log in self.processes:
            if process.poll() is None:
                process.terminate()
        for _name, process, _log in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- a browser's HTTP login ----------------------------------------------------------------------


def log_in(base_url, username, password):
    """Log in through the login form like a browser; return the Cookie header value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base_url + "/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/"})
    request = urllib.request.Request(base_url + "/login/", data=form.encode(), headers={"Referer": base_url + "/login/"})
    opener.open(request, timeout=10).read()
    cookies = {cookie.name: cookie.value for cookie in jar}
    if "sessionid" not in cookies:
        raise AssertionError(f"{username} could not log in")
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def fetch(base_url, cookie, path):
    """GET `path` with the session cookie; the body as text."""
    request = urllib.request.Request(base_url + path, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


# --- a small WebSocket client (RFC 6455, text frames; enough for the dashboard protocol) -----------


class WebSocketClosed(Exception):
    pass


class WebSocketClient:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, base_url, cookie, path="/ws/dashboard/"):
        parts = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {base_url}\r\n"
             f"Cookie: {cookie}\r\n\r\n").encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise WebSocketClosed(head.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    async def send_json(self, message):
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def _frame(self):
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first & 0x0F, await self.reader.readexactly(length)

    async def receive_json(self, timeout=10.0):
        async with asyncio.timeout(timeout):
            while True:
                try:
                    opcode, payload = await self._frame()
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    raise WebSocketClosed("connection closed") from exc
                if opcode == 0x1:
                    return json.loads(payload)
                if opcode == 0x8:
                    raise WebSocketClosed(f"closed by the server: {payload[:2].hex()}")
                if opcode == 0x9:  # ping -> pong
                    mask = os.urandom(4)
                    self.writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def receive_until(self, predicate, timeout=15.0):
        """Frames up to and including the first one matching `predicate`."""
        frames = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.receive_json(timeout=timeout)
                frames.append(frame)
                if predicate(frame):
                    return frames

    def close(self):
        self.writer.close()


class Page:
    """What a dashboard page knows: the channels it draws and the link line, from the frames."""

    def __init__(self, socket, *, reconnect_to=None):
        self.socket = socket
        self.reconnect_to = reconnect_to  # (base_url, cookie): reconnect like dashboard.js does
        self.reconnects = 0
        self.channels = {}
        self.link = None
        self.snapshot = None
        self.frames = []

    def apply(self, frame):
        self.frames.append(frame)
        if frame["type"] == "snapshot":
            self.snapshot = frame
            self.channels = {c["name"]: c for c in frame["channels"]}
            self.link = frame["link"]
        elif frame["type"] == "diff":
            for diff in frame["diffs"]:
                if diff["op"] == "upsert":
                    self.channels[diff["channel"]["name"]] = diff["channel"]
                elif diff["op"] == "remove":
                    self.channels.pop(diff["name"], None)
        elif frame["type"] == "link":
            self.link = frame["link"]
        return frame

    async def until(self, predicate, timeout=20.0):
        """Read frames until `predicate(page)` holds (checked before reading too)."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                try:
                    self.apply(await self.socket.receive_json(timeout=timeout))
                except WebSocketClosed:
                    if self.reconnect_to is None:
                        raise
                    await self._reconnect()

    async def _reconnect(self):
        """The page's own behaviour: the socket closed, so open a new one after a pause (no reload)."""
        self.socket.close()
        while True:
            await asyncio.sleep(0.5)
            try:
                self.socket = await WebSocketClient.connect(*self.reconnect_to)
            except (OSError, WebSocketClosed, TimeoutError):
                continue
            self.reconnects += 1
            return

    def devices(self):
        return {c["device"] for c in self.channels.values()}

    def link_state(self):
        return (self.link or {}).get("state")

    def extension_id(self, device):
        for person in [self.snapshot["me"], *self.snapshot["people"]]:
            for extension in person["extensions"] if isinstance(person, dict) and "extensions" in person else []:
                if extension["device"] == device:
                    return extension["id"]
        raise KeyError(device)
