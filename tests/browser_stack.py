"""The dashboard as a browser meets it: a real daphne process with the embedded bridge, its own fresh
database, and Debian's Chromium (never a downloaded one). Plain helpers; the fixtures built on them
(`server_database`, `pbx_thread`, `dashboard_server`, `daphne_server`, `browser_page`) are in
tests/conftest.py.

The server's database is a temporary SQLite file, or under DATABASE_URL=postgres:// a uniquely named
PostgreSQL database created for the test and dropped after it.
"""

import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The two sizes every page is checked at, and the browser locale of each page language.
WIDE, NARROW = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
LOCALES = {"en": "en-US", "ru": "ru-RU"}
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process=None, timeout=30.0, log=None):
    """Until something listens on `port`; RuntimeError (with the log) if `process` dies first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}:\n" + (Path(log).read_text() if log else "")) from None
            time.sleep(0.1)


@contextmanager
def fresh_server_database(prefix="supervision_browser"):
    """{"DATABASE_URL": ...} for the servers under test: SQLite in their var dir, or a new
    PostgreSQL database `<prefix>_<random>` when the suite runs on PostgreSQL (dropped after)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield {"DATABASE_URL": ""}
        return
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))}
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class DaphneServer:
    """`daphne supervision.asgi:application` in a subprocess, restartable on the same port."""

    def __init__(self, env, log_path):
        self.env, self.log_path = env, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "supervision.asgi:application"],
            env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, self.process)
        except RuntimeError:
            pytest.fail("daphne did not start:\n" + self.log_path.read_text())

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextmanager
def running_dashboard(tmp_path, server_database, pbx_thread, seed_options=()):
    """The dashboard served by a real daphne, migrated and seeded with the demo roster
    (`seed_options`: more arguments to seed_demo, e.g. `--pjsip`)."""
    env = {
        **os.environ,
        **server_database,
        "DASHBOARD_VAR_DIR": str(tmp_path),
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": str(pbx_thread.port),
        "AMI_BRIDGE": "embedded",
        "AMI_RECONNECT_MAX": "1",
        "REDIS_URL": "",
        "DJANGO_DEBUG": "0",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    subprocess.run([*manage, "seed_demo", *seed_options], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    server = DaphneServer(env, tmp_path / "daphne.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def log_in(page, base_url, username, password):
    """Sign in through the login form and wait for the dashboard to draw its people."""
    page.goto(base_url + "/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form[action='/login/'] button[type=submit]")
    page.wait_for_selector("#people")
