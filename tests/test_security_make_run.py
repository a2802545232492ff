"""`make run` with a taken port stops at once and names it, instead of starting a dashboard that
logs in to whatever listens there."""

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.browser_stack import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def taken_port():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener.getsockname()[1]
    listener.close()


def make_run(var_dir, **ports):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    arguments = [f"{name}={value}" for name, value in ports.items()]
    # -o: never reinstall the virtualenv from inside a test.
    process = subprocess.Popen(["make", "-s", "-o", ".venv/.installed-stamp", "run", *arguments], cwd=ROOT,
                               env={**os.environ, "DASHBOARD_VAR_DIR": str(var_dir)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 15)
        process.communicate()
        raise AssertionError("make run started although a port was taken") from None
    return process.returncode, output


@pytest.mark.parametrize("which", ["AMI_PORT", "PORT"])
def test_a_taken_port_stops_make_run_with_a_sentence(tmp_path, taken_port, which):
    ports = {"AMI_PORT": free_port(), "PORT": free_port(), which: taken_port}
    code, output = make_run(tmp_path, **ports)
    assert code != 0
    assert f"Port {taken_port} on 127.0.0.1 is taken" in output
    assert f"({which} is this one)" in output and "make run PORT=" in output
