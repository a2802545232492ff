"""The simulated PBX used on its own: `python -m fakepbx` imports no Django at all, and
`manage.py fakepbx` still starts when the roster cannot be read (no migrated database)."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser_stack import free_port, wait_for_port
from tests.test_fakepbx import Raw

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent


class Port:
    def __init__(self, port):
        self.port = port


def start(args, tmp_path, env=None):
    log = tmp_path / "pbx.log"
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    return process, log


def stop(process):
    process.terminate()
    process.wait(10)


def test_the_package_imports_no_django():
    probe = "import sys, fakepbx, fakepbx.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_python_m_fakepbx_plays_asterisk_22_without_django(tmp_path):
    port = free_port()
    process, log = start(["-m", "fakepbx", "--port", str(port), "--flavour", "asterisk22",
                          "--devices", "PJSIP/104,PJSIP/105"], tmp_path)
    try:
        wait_for_port(port, process, log=log)

        async def session():
            conn = await Raw.connect(Port(port))
            assert (await conn.login())["Message"] == "Authentication accepted"
            assert conn.parser.banner == "Asterisk Call Manager/11.0.0"
            conn.send("Originate", [("Channel", "Local/104@dashboard-phones"), ("Application", "Wait"),
                                    ("Data", "600"), ("Async", "true"), ("Variable", "AUTOANSWER=call-info")], "o")
            answered = await conn.event("OriginateResponse", ActionID="o")
            assert answered["Reason"] == "4" and answered["Channel"] == "Local/104@dashboard-phones-00000000;1"
            await conn.event("BridgeEnter", Channel="PJSIP/104-00000000")
            conn.close()

        asyncio.run(session())
    finally:
        stop(process)
    assert "Simulated Asterisk 22.10.1 AMI on 127.0.0.1:" in log.read_text()


def test_manage_py_fakepbx_falls_back_to_the_demo_phones_without_a_database(tmp_path):
    port = free_port()
    database = tmp_path / "never-migrated.sqlite3"
    process, log = start(["manage.py", "fakepbx", "--port", str(port)], tmp_path,
                         env={"DATABASE_URL": f"sqlite:///{database}"})
    try:
        wait_for_port(port, process, log=log)

        async def session():
            conn = await Raw.connect(Port(port))
            await conn.login()
            conn.send("Originate", [("Channel", "SIP/105"), ("Application", "Wait"), ("Data", "600"),
                                    ("Async", "true")], "o")
            assert (await conn.event("OriginateResponse", ActionID="o"))["Response"] == "Success"
            conn.close()

        asyncio.run(session())
    finally:
        stop(process)
    text = log.read_text()
    assert "The roster cannot be read (no such table: accounts_extension); using the demo phones SIP/101" in text
    assert "Traceback" not in text
