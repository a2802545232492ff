"""Shared fixtures. Services and the browser are real; where one is missing a test skips with the
reason, except under REQUIRE_SERVICES=1 / REQUIRE_BROWSER=1 (CI), where a missing one fails."""

import os
import shutil
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "ami-captures"
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def missing(reason, *, required):
    if required:
        pytest.fail(f"{reason} (required here)")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _asgi_application_loaded():
    """Import the ASGI application once, first: its `get_asgi_application()` runs `django.setup()`
    again, which applies LOGGING to the root logger and so would drop the log-capturing handler
    of whichever test imported it first (`caplog` would see nothing)."""
    import supervision.asgi  # noqa: F401


@pytest.fixture(scope="session")
def captures_dir():
    if not CAPTURES.is_dir():
        pytest.fail(f"the AMI captures are expected at {CAPTURES}")
    return CAPTURES


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        missing(f"Redis is not reachable at {url}: {exc}", required=REQUIRE_SERVICES)
    return url


@pytest.fixture(scope="session")
def chromium_path():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)", required=REQUIRE_BROWSER)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_path):
    """One Chromium for a test module (pages open their own contexts: size, language, login)."""
    from playwright.sync_api import sync_playwright

    from tests.browser_stack import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def fast_password_hashing(settings):
    """For tests that make users by the dozen (admin_client makes a fresh superuser for every
    test); the real key stretching is not under test there."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo_roster(db):
    """The demo roster of `manage.py seed_demo` (accounts/demo.py): `.admin`, `.curators` (petrova,
    smirnov), `.trainees`, `.users[name]`, `.extensions[name]`, `.passwords[name]`."""
    from accounts.demo import seed_demo_roster

    return seed_demo_roster()


# --- the simulated Asterisk -------------------------------------------------------------------
# Headsets of the capture lab (../shared/ami-captures): they answer at once, like its `phones`
# context. Tests change a phone with `pbx.set_phone(device, behaviour, ring_seconds=...)`.
FAKEPBX_PHONES = ("SIP/104", "SIP/105", "SIP/106", "SIP/107", "SIP/1050")
FAKEPBX_FAST = {"auth_fail_delay": 0.01, "auth_timeout": 5.0, "playback_seconds": 0.2, "ringing_context_seconds": 0.5}


def _fakepbx_phones(pbx):
    for device in FAKEPBX_PHONES:
        pbx.set_phone(device, "answer", ring_seconds=0)
    return pbx


@pytest.fixture
async def fakepbx():
    """An idle FakePBX on a random port (user `dashboard` / `dashboard-demo`, read/write all)."""
    from fakepbx import FakePBX

    pbx = _fakepbx_phones(FakePBX(port=0, **FAKEPBX_FAST))
    await pbx.start()
    yield pbx
    await pbx.stop()


@pytest.fixture
def fakepbx_thread():
    """The same PBX running in its own thread and loop: `.port`, `.pbx`, `.call(fn, *args)`."""
    from fakepbx import FakePBXThread

    with FakePBXThread(port=0, **FAKEPBX_FAST) as runner:
        runner.call(_fakepbx_phones)
        yield runner


# --- the dashboard in a browser (helpers in tests/browser_stack.py) ----------------------------


@pytest.fixture
def server_database(tmp_path):
    """Environment for a fresh database of a server under test (SQLite file, or a new PostgreSQL
    database under DATABASE_URL=postgres://, dropped afterwards)."""
    from tests.browser_stack import fresh_server_database

    with fresh_server_database() as env:
        yield env


@pytest.fixture
def pbx_thread():
    """A FakePBX with its own defaults, in its own thread, for a server in another process
    (`.port`, `.call(fn, *args)`)."""
    from fakepbx import FakePBXThread

    with FakePBXThread(port=0) as pbx:
        yield pbx


@pytest.fixture
def daphne_server(tmp_path, server_database, pbx_thread):
    """A running dashboard as a DaphneServer (restartable: `.stop()`, `.start()`, `.url`)."""
    from tests.browser_stack import running_dashboard

    with running_dashboard(tmp_path, server_database, pbx_thread) as server:
        yield server


@pytest.fixture
def dashboard_server(daphne_server):
    """The base URL of a running dashboard."""
    return daphne_server.url


@pytest.fixture
def browser_page(chromium_path):
    """A page of Debian's Chromium, headless, in English."""
    from playwright.sync_api import sync_playwright

    from tests.browser_stack import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On PostgreSQL this run's test database has a name of its own (tests/run_database.py), and
    the ones killed runs left behind are dropped first."""
    from django.conf import settings

    from tests.run_database import drop_stray_databases, run_database_name

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        return
    database.setdefault("TEST", {})["NAME"] = run_database_name()
    server = {"user": database.get("USER"), "password": database.get("PASSWORD"), "host": database.get("HOST"),
              "port": database.get("PORT")}
    drop_stray_databases(dbname="postgres", **{key: value for key, value in server.items() if value})


@pytest.fixture(scope="session", autouse=True)
def _end_stray_database_sessions(django_db_setup, django_db_blocker):
    """On PostgreSQL, end connections that worker threads (sync_to_async) still hold at the end of
    the run, so the test database can be dropped instead of lingering for the next run."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql" or not connection.settings_dict["NAME"].startswith("test_"):
        return  # SQLite, or a run whose tests needed no test database (none was created)
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
