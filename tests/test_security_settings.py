"""What a site must set, checked at start: a real secret key (never the example's), named hosts,
ChanSpy options the action builder takes, a dial pattern; the generated key file is private from
its first byte and the same for two processes starting together."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_settings import PRODUCTION, ROOT, run_django

SETUP = ["-c", "import django; django.setup()"]


def example_value(name):
    for text in (ROOT / "deploy" / "env.example").read_text().splitlines():
        if text.startswith(f"{name}="):
            return text.split("=", 1)[1]
    raise AssertionError(f"{name} is not in deploy/env.example")


@pytest.mark.parametrize("key,why", [
    (example_value("DJANGO_SECRET_KEY"), "DJANGO_SECRET_KEY is a placeholder"),
    ("django-insecure-" + "k3J9x" * 10, "DJANGO_SECRET_KEY is a placeholder"),
    ("a" * 64, "fewer than 16 distinct characters"),
    ("abcdef" * 11, "fewer than 16 distinct characters"),
    ("p" * 20 + "Zq9#x-" * 7, "fewer than 16 distinct characters"),
])
def test_placeholder_and_low_entropy_keys_are_refused(tmp_path, key, why):
    result = run_django(tmp_path, SETUP, **{**PRODUCTION, "DJANGO_SECRET_KEY": key})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and why in result.stderr


def test_check_deploy_refuses_the_example_environment(tmp_path):
    example = {name: example_value(name) for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DJANGO_HTTPS")}
    result = run_django(tmp_path, ["manage.py", "check", "--deploy"], **example)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is a placeholder" in result.stderr


@pytest.mark.parametrize("env,why", [
    ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS=* is allowed only with DJANGO_DEBUG=1"),
    ({"DJANGO_ALLOWED_HOSTS": "dash.example.com,*"}, "DJANGO_ALLOWED_HOSTS=* is allowed only with DJANGO_DEBUG=1"),
    ({"SPY_OPTIONS_LISTEN": "qé"}, "SPY_OPTIONS_LISTEN='qé' may hold only letters and digits (A-Z, a-z, 0-9)"),
    ({"SPY_OPTIONS_BARGE": "qB٣"}, "may hold only letters and digits (A-Z, a-z, 0-9)"),
    ({"DIAL_NUMBER_PATTERN": "[0-9"}, "DIAL_NUMBER_PATTERN='[0-9' is not a regular expression"),
    ({"DJANGO_CSRF_TRUSTED_ORIGINS": "dash.example.com"}, "is not scheme://host[:port]"),
])
def test_unsafe_settings_fail_at_start(tmp_path, env, why):
    result = run_django(tmp_path, SETUP, **{**PRODUCTION, **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and why in result.stderr


def test_any_host_is_allowed_while_debugging(tmp_path):
    result = run_django(tmp_path, SETUP, DJANGO_ALLOWED_HOSTS="*", DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_every_ascii_option_the_builder_takes_starts(tmp_path):
    result = run_django(tmp_path, ["-c", "import django; django.setup(); from supervision import actions; "
                                         "print(actions.spy_options('listen', allow_switch=False))"],
                        SPY_OPTIONS_LISTEN="qxE")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "qxE"


KEY_OF = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def test_the_generated_key_file_is_private_and_shared_by_processes_starting_together(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    env.update(DJANGO_SETTINGS_MODULE="supervision.settings", DASHBOARD_VAR_DIR=str(tmp_path))
    processes = [subprocess.Popen([sys.executable, "-c", KEY_OF], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    keys = {stdout.strip() for stdout, _stderr in outputs}
    assert len(keys) == 1 and len(keys.pop()) >= 50
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".secret_key")] == []


def test_the_key_file_appears_complete_and_private(tmp_path, monkeypatch):
    """The moment the file appears at its path (the link) it already is 0600 and holds the key."""
    from supervision import settings as app_settings

    seen = []
    real_link = os.link

    def link(source, target):
        seen.append((stat.S_IMODE(os.stat(source).st_mode), Path(source).read_text()))
        return real_link(source, target)

    old_umask = os.umask(0)
    try:
        monkeypatch.setattr(app_settings.os, "link", link)
        key = app_settings._generated_key(tmp_path / "secret_key")
    finally:
        os.umask(old_umask)
    assert seen == [(0o600, key)]
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_a_process_that_loses_the_race_takes_the_winners_key(tmp_path, monkeypatch):
    from supervision import settings as app_settings

    path = tmp_path / "secret_key"
    real_mkstemp = app_settings.tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        made = real_mkstemp(*args, **kwargs)
        path.write_text("the-other-process-key")  # the other process links its file meanwhile
        return made

    monkeypatch.setattr(app_settings.tempfile, "mkstemp", mkstemp)
    assert app_settings._generated_key(path) == "the-other-process-key"
    assert path.read_text() == "the-other-process-key"
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]
