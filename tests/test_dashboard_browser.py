"""End to end in a real browser: Debian's Chromium (never a downloaded one) against a real daphne
process with the embedded bridge, fed by the simulated PBX running in this test process.

The server gets its own fresh database: a temporary SQLite file, or under DATABASE_URL=postgres://
a uniquely named PostgreSQL database created for the test and dropped after it.
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

from supervision.ami.fakepbx import FakePBXThread

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
# The README's picture; refreshed with `SAVE_SCREENSHOT=1 make test` (otherwise it goes to tmp).
SCREENSHOT = ROOT / "docs" / "dashboard.png"
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
CALL_SHOWS_WITHIN_MS = 2000  # the product promise: a call is on the card within 2 s


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_database(tmp_path):
    """Environment for a fresh database of the server under test."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield {"DATABASE_URL": ""}
        return
    import psycopg

    name = f"supervision_browser_{secrets.token_hex(4)}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))}
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pbx_thread():
    with FakePBXThread(port=0) as pbx:
        yield pbx


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
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("daphne did not start:\n" + self.log_path.read_text())
                time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextmanager
def running_dashboard(tmp_path, server_database, pbx_thread):
    """The dashboard served by a real daphne, migrated and seeded with the demo roster."""
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
    subprocess.run([*manage, "seed_demo"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    server = DaphneServer(env, tmp_path / "daphne.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def daphne_server(tmp_path, server_database, pbx_thread):
    """A DaphneServer (restartable: `.stop()`, `.start()`, `.url`)."""
    with running_dashboard(tmp_path, server_database, pbx_thread) as server:
        yield server


@pytest.fixture
def dashboard_server(tmp_path, server_database, pbx_thread):
    """The base URL of a running dashboard."""
    with running_dashboard(tmp_path, server_database, pbx_thread) as server:
        yield server.url


@pytest.fixture
def browser_page(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def log_in(page, base_url, username, password):
    page.goto(base_url + "/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form[action='/login/'] button[type=submit]")
    page.wait_for_selector("#people")


def test_curator_sees_a_trainees_call_appear_and_end(dashboard_server, pbx_thread, browser_page, tmp_path):
    page = browser_page
    log_in(page, dashboard_server, "petrova", "demo-petrova")
    page.wait_for_selector("#socket-state[data-state=live]")
    page.wait_for_selector("#link-state[data-state=up]")
    card = page.locator("article.card", has=page.locator("h3", has_text="Dmitry Ivanov"))
    assert card.get_attribute("data-state") == "idle"
    assert card.locator("button[data-mode=listen]").is_disabled()

    name = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101", caller_num="5550199", caller_name="Mrs Hudson"))
    page.wait_for_selector(
        "article.card:has(h3:text('Dmitry Ivanov'))[data-state=in_call], article.card:has(h3:text('Dmitry Ivanov'))[data-state=ringing]",
        timeout=CALL_SHOWS_WITHIN_MS,
    )
    page.wait_for_selector("article.card:has(h3:text('Dmitry Ivanov'))[data-state=in_call]")
    assert "5550199" in card.inner_text()
    assert card.locator("button[data-mode=listen]").is_enabled()
    assert card.locator("button[data-mode=barge]").is_enabled()
    # Another team's trainee (Igor Smirnov's) is not on Anna's page at all.
    assert page.locator("article.card", has=page.locator("h3", has_text="Olga Popova")).count() == 0
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/103", caller_num="5550142", answer=False))
    page.wait_for_selector("article.card:has(h3:text('Pavel Sokolov'))[data-state=ringing]")
    shot = SCREENSHOT if os.environ.get("SAVE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a real rendered page, not an empty image

    pbx_thread.call(lambda pbx: pbx.hangup(name))
    page.wait_for_selector("article.card:has(h3:text('Dmitry Ivanov'))[data-state=idle]")
    assert "5550199" not in card.inner_text()


def test_the_page_speaks_russian_to_a_russian_browser(dashboard_server, chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="ru-RU", extra_http_headers={"Accept-Language": "ru-RU,ru;q=0.9"}).new_page()
            log_in(page, dashboard_server, "ivanov", "demo-ivanov")
            page.wait_for_selector("#socket-state[data-state=live]")
            assert page.locator("#me-title").inner_text() == "Мой телефон"
            card = page.locator("article.card", has=page.locator("h3", has_text="Anna Petrova"))
            assert card.locator("button[data-mode=listen]").inner_text() == "Слушать"
            assert card.locator("button[data-mode=barge]").count() == 1
            assert card.locator("button[data-mode=barge]").is_hidden()  # a trainee may only listen
        finally:
            browser.close()


def test_the_page_reconnects_and_shows_the_calls_of_now_not_stale_ones(daphne_server, pbx_thread, browser_page):
    page = browser_page
    log_in(page, daphne_server.url, "petrova", "demo-petrova")
    page.wait_for_selector("#socket-state[data-state=live]")
    dmitry = "article.card:has(h3:text('Dmitry Ivanov'))"
    elena = "article.card:has(h3:text('Elena Kuznetsova'))"
    name = pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/101"))
    page.wait_for_selector(dmitry + "[data-state=in_call]")

    daphne_server.stop()
    page.wait_for_selector("#socket-state[data-state=reconnecting]")
    assert page.locator("#socket-state").inner_text().startswith("Connection lost")
    # While the page is away, Dmitry's call ends and Elena gets one.
    pbx_thread.call(lambda pbx: pbx.hangup(name))
    pbx_thread.call(lambda pbx: pbx.inbound_call("SIP/102"))
    daphne_server.start()

    page.wait_for_selector("#socket-state[data-state=live]", timeout=30000)
    page.wait_for_selector(elena + "[data-state=in_call]")
    assert page.locator(dmitry).get_attribute("data-state") == "idle"
