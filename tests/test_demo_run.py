"""What `make run` starts, started the same way: migrate, seed_demo, `manage.py fakepbx --scenario demo`
(phones taken from the roster) and daphne with the embedded bridge, each a real process.

The promise checked: without any other step, the simulated call-centre day rings the demo roster's
phones and the dashboard's bridge is linked to it.
"""

import asyncio
import json
import subprocess
import sys
import time
import urllib.request

import pytest

from supervision.ami.client import AMIClient
from supervision.board import device_of
from tests.browser_stack import ROOT, DaphneServer, free_port

pytestmark = pytest.mark.timeout(120)

DEMO_DEVICES = {"SIP/101", "SIP/102", "SIP/103", "SIP/104", "SIP/105", "SIP/200", "SIP/201", "SIP/202"}


def manage(env, *args, **kwargs):
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, **kwargs)


@pytest.fixture
def demo_env(tmp_path, server_database):
    import os

    env = {
        **os.environ,
        **server_database,
        "DASHBOARD_VAR_DIR": str(tmp_path),
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": str(free_port()),
        "AMI_BRIDGE": "embedded",
        "AMI_RECONNECT_MAX": "1",
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage(env, "migrate", "--noinput", "-v", "0", check=True)
    manage(env, "seed_demo", check=True, stdout=subprocess.DEVNULL)
    return env


@pytest.fixture
def demo_pbx(demo_env, tmp_path):
    log = open(tmp_path / "fakepbx.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "fakepbx", "--host", "127.0.0.1", "--port", demo_env["AMI_PORT"],
         "--scenario", "demo", "--interval", "0.3", "--ring-seconds", "0.3", "--talk-min", "1", "--talk-max", "3"],
        env=demo_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    process.wait(10)
    log.close()
    if process.returncode not in (0, -15):
        pytest.fail("fakepbx ended badly:\n" + (tmp_path / "fakepbx.log").read_text())


async def demo_devices_ringing(port, wanted=3, within=20.0):
    """Devices of the first `wanted` distinct phones the demo day makes ring."""
    seen = set()
    client = AMIClient("127.0.0.1", port, "dashboard", "dashboard-demo", action_timeout=2, reconnect_max=0.5)
    client.on_event(lambda msg: msg.event == "Newchannel" and seen.add(device_of(msg["Channel"])))
    await client.start()
    try:
        deadline = time.monotonic() + within
        while len(seen & DEMO_DEVICES) < wanted and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await client.stop()
    return seen


def test_the_demo_day_rings_the_roster_and_the_dashboard_links_to_it(demo_env, demo_pbx, tmp_path):
    seen = asyncio.run(demo_devices_ringing(int(demo_env["AMI_PORT"])))
    assert len(seen & DEMO_DEVICES) >= 3, f"demo calls rang only {sorted(seen)}"
    assert demo_pbx.poll() is None

    server = DaphneServer(demo_env, tmp_path / "daphne.log")
    server.start()
    try:
        with urllib.request.urlopen(server.url + "/login/") as response:
            assert response.status == 200
        # The first request starts the embedded bridge; it then logs in to the demo PBX.
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(server.url + "/healthz") as response:
                health = json.load(response)
            if health["pbx"]["state"] == "up" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert health["pbx"]["state"] == "up", health
        assert health["status"] == "ok"
    finally:
        server.stop()
    # The server's log says each thing once (daphne and the product share one handler).
    log = (tmp_path / "daphne.log").read_text()
    assert log.count("AMI link up") == 1, log
