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
