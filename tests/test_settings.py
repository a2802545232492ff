"""The settings module fails loudly on bad values, and passes `check --deploy` in production mode."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from supervision import settings as app_settings

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DJANGO_SECRET_KEY": "vQ7-kR2xW9_tLm4pZs8Yb3NcJh6FdG0aUe5TrKo1iXwMqEyBnPl",
    "DJANGO_DEBUG": "0",
    "DJANGO_HTTPS": "1",
    "DJANGO_ALLOWED_HOSTS": "dash.example.com",
}


def run_django(tmp_path, code, **env):
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "AMI_", "DATABASE_", "REDIS_"))}
    clean.update(DJANGO_SETTINGS_MODULE="supervision.settings", DASHBOARD_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, *code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "name,value,why",
    [
        ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG='maybe' is not a boolean"),
        ("AMI_PORT", "abc", "AMI_PORT='abc' is not an integer"),
        ("AMI_PORT", "70000", "AMI_PORT=70000 is outside 1..65535"),
        ("AMI_PORT", "0", "AMI_PORT=0 is outside 1..65535"),
        ("DATABASE_URL", "mysql://u:p@db/x", "DATABASE_URL must be postgres://... or sqlite:///..."),
        ("REDIS_URL", "http://cache:6379", "REDIS_URL must start with redis://"),
        ("DJANGO_SECRET_KEY", "short", "DJANGO_SECRET_KEY must be at least 50 characters"),
        ("AMI_AUTH", "sha1", "AMI_AUTH='sha1' must be one of plain, md5"),
        ("AMI_ACTION_TIMEOUT", "soon", "AMI_ACTION_TIMEOUT='soon' is not a number"),
        ("SPY_OPTIONS_BARGE", "qB,x", "SPY_OPTIONS_BARGE='qB,x' may hold only letters and digits"),
        ("RECORDINGS_ROOT", "sounds/training", "RECORDINGS_ROOT must be an absolute path"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL='verbose' must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_bad_environment_fails_at_start(tmp_path, name, value, why):
    result = run_django(tmp_path, ["-c", "import django; django.setup()"], **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and why in result.stderr


def test_check_deploy_passes_in_production_mode(tmp_path):
    result = run_django(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_check_deploy_warns_in_development_mode(tmp_path):
    result = run_django(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], DJANGO_DEBUG="1")
    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG on


@pytest.mark.parametrize(
    "helper,raw,expected",
    [
        (lambda: app_settings.env_bool("X_TEST_FLAG"), "Yes", True),
        (lambda: app_settings.env_bool("X_TEST_FLAG"), "off", False),
        (lambda: app_settings.env_int("X_TEST_FLAG", 1, minimum=1, maximum=9), "9", 9),
        (lambda: app_settings.env_list("X_TEST_FLAG", []), "a.example, b.example,,", ["a.example", "b.example"]),
        (lambda: app_settings.env_float("X_TEST_FLAG", 1.0, minimum=0.5), "0.5", 0.5),
    ],
)
def test_helpers_read_good_values(monkeypatch, helper, raw, expected):
    monkeypatch.setenv("X_TEST_FLAG", raw)
    assert helper() == expected


@pytest.mark.parametrize(
    "helper,raw",
    [
        (lambda: app_settings.env_bool("X_TEST_FLAG"), "2"),
        (lambda: app_settings.env_int("X_TEST_FLAG", 1, minimum=1, maximum=9), "10"),
        (lambda: app_settings.env_int("X_TEST_FLAG", 1), "1.5"),
        (lambda: app_settings.env_float("X_TEST_FLAG", 1.0, minimum=0.5), "0.1"),
        (lambda: app_settings.env_choice("X_TEST_FLAG", "a", ["a", "b"]), "c"),
        (lambda: app_settings.env_str("X_TEST_FLAG", required=True), ""),
    ],
)
def test_helpers_refuse_bad_values(monkeypatch, helper, raw):
    monkeypatch.setenv("X_TEST_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="X_TEST_FLAG"):
        helper()


def test_defaults_when_unset(monkeypatch):
    monkeypatch.delenv("X_TEST_FLAG", raising=False)
    assert app_settings.env_bool("X_TEST_FLAG", True) is True
    assert app_settings.env_int("X_TEST_FLAG", 5038) == 5038


IDLE_RECEIVE = """
import asyncio, django, time
django.setup()
from channels.layers import get_channel_layer

async def main():
    layer = get_channel_layer()
    channel = await layer.new_channel()

    async def send_later():
        await asyncio.sleep(6.5)  # past channels_redis's 5 s blocking pop and redis-py's default 5 s read
        await layer.send(channel, {"type": "late", "n": 1})

    sender = asyncio.create_task(send_later())
    started = time.monotonic()
    message = await layer.receive(channel)
    await sender
    print("received", message["type"], round(time.monotonic() - started, 1))
    await layer.flush()

asyncio.run(main())
"""


def test_an_idle_receive_through_redis_waits_for_the_next_message(tmp_path, redis_url):
    """A consumer or the bridge waiting on an idle channel keeps waiting: the Redis read is not
    cut at redis-py's default 5 s socket timeout, which would fail every idle socket's receive."""
    prefix = f"idle{os.getpid()}"
    result = run_django(tmp_path, ["-c", IDLE_RECEIVE], REDIS_URL=redis_url, CHANNEL_LAYER_PREFIX=prefix)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("received late 6."), result.stdout


KILLED_CONNECTION = """
import os, django, psycopg
django.setup()
from django.db import close_old_connections, connection

def backend():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]

first = backend()
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
    admin.execute("SELECT pg_terminate_backend(%s)", [first])
close_old_connections()  # what the bridge and Channels do before each database step
print("reconnected" if backend() != first else "same connection")
"""


def test_a_kept_database_connection_that_died_is_replaced_before_use(tmp_path):
    """With DATABASE_CONN_MAX_AGE set, a connection the server ended (a restart, an idle timeout)
    is noticed before the next step uses it, instead of failing that step (a press)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("PostgreSQL pass only (DATABASE_URL=postgres://...)")
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    result = run_django(tmp_path, ["-c", KILLED_CONNECTION], DATABASE_URL=admin_url, DATABASE_CONN_MAX_AGE="60")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "reconnected"
