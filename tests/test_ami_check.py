"""`manage.py ami_check` over real TCP against the simulated Asterisk (and a closed port)."""

import asyncio
import io
import socket

import pytest
from django.core.management import call_command

from fakepbx import FakePBX
from tests.conftest import FAKEPBX_FAST


async def run_check(*args):
    """(exit code, stdout lines); the command runs its own event loop, so it gets its own thread."""
    out = io.StringIO()

    def call():
        try:
            call_command("ami_check", *args, "--timeout", "2", "--events-wait", "2", stdout=out)
        except SystemExit as exc:
            return exc.code
        return 0

    code = await asyncio.to_thread(call)
    return code, out.getvalue().splitlines()


def line(lines, prefix):
    found = [text for text in lines if text.startswith(prefix)]
    assert found, f"no line starting {prefix!r} in {lines}"
    return found[0]


@pytest.fixture
async def restricted_pbx():
    """The article's restricted user: read=call, write=originate."""
    pbx = FakePBX(port=0, users={"1cami": {"secret": "PASSWORD1cami", "read": "call", "write": "originate"}}, **FAKEPBX_FAST)
    await pbx.start()
    yield pbx
    await pbx.stop()


async def test_demo_user_has_everything(fakepbx):
    code, lines = await run_check("--host", "127.0.0.1", "--port", str(fakepbx.port),
                                  "--username", "dashboard", "--secret", "dashboard-demo")

    assert code == 0, lines
    assert "Asterisk Call Manager/" in line(lines, "AMI:")
    assert line(lines, "Login:").startswith("Login: ok as 'dashboard'")
    assert line(lines, "Asterisk:") == "Asterisk: version 20.20.1 (AMI 9.0.0, system name simulated-pbx)"
    for action in ("CoreShowChannels", "Hangup", "PlayDTMF", "DeviceStateList", "Originate", "MixMonitor"):
        assert line(lines, f"{action}:").startswith(f"{action}: permitted"), lines
    assert line(lines, "MixMonitor:") == "MixMonitor: permitted (answered 'No such channel', which means it may run)"
    assert line(lines, "Call events:").startswith("Call events: arriving")
    assert line(lines, "Result:") == "Result: everything the dashboard needs is permitted."
    originates = [msg for msg in fakepbx.actions if msg.get("Action") == "Originate"]
    assert [msg["Channel"] for msg in originates] == ["Local/s@ami-check-probe"]  # rang nobody


async def test_demo_user_with_md5_login(fakepbx):
    code, lines = await run_check("--port", str(fakepbx.port), "--username", "dashboard",
                                  "--secret", "dashboard-demo", "--auth", "md5")

    assert code == 0, lines
    assert "MD5" in line(lines, "Login:")
    assert any(msg.get("Action") == "Challenge" for msg in fakepbx.actions)


async def test_restricted_user_lacks_list_hangup_and_dtmf(restricted_pbx):
    code, lines = await run_check("--port", str(restricted_pbx.port), "--username", "1cami", "--secret", "PASSWORD1cami")

    assert code == 1, lines
    assert line(lines, "Login:").startswith("Login: ok")
    assert line(lines, "Asterisk:").startswith("Asterisk: version unknown")
    for action in ("CoreShowChannels", "Hangup", "PlayDTMF", "DeviceStateList"):
        assert line(lines, f"{action}:").startswith(f"{action}: NOT permitted (Permission denied)")
    assert "the phone's state is unknown" in line(lines, "DeviceStateList:")
    assert "works from events alone" in line(lines, "CoreShowChannels:")
    assert "a restarted bridge cannot find the listen/whisper/barge calls" in line(lines, "CoreShowChannels:")
    hangup = line(lines, "Hangup:")
    assert "the PBX refuses to end a listen/whisper/barge" in hangup
    assert "the curator must hang up his phone" in hangup
    assert "a spy still ends when the call it listens to ends (ChanSpy option E, always sent)" in hangup
    assert hangup.endswith("manager.conf: write=call (or system).")
    assert line(lines, "Originate:").startswith("Originate: permitted")
    assert line(lines, "Call events:").startswith("Call events: arriving")
    assert line(lines, "Result:").startswith("Result: missing CoreShowChannels, Hangup, PlayDTMF, DeviceStateList")
    # nobody is recorded: MixMonitor is said, and not counted as missing
    assert line(lines, "MixMonitor:").startswith("MixMonitor: NOT permitted (Permission denied); no extension is marked")
    assert "MixMonitor" not in line(lines, "Result:")


@pytest.mark.django_db(transaction=True)
async def test_recorded_extensions_need_mixmonitor_which_needs_the_system_class(restricted_pbx):
    from asgiref.sync import sync_to_async

    from accounts.models import Extension, Role, User

    def recorded_phone():
        user = User.objects.create_user("ivanov", password=None, role=Role.ADMIN)
        Extension.objects.create(user=user, technology="SIP", resource="101", record_calls=True)

    await sync_to_async(recorded_phone)()
    code, lines = await run_check("--port", str(restricted_pbx.port), "--username", "1cami", "--secret", "PASSWORD1cami")
    assert code == 1
    mixmonitor = line(lines, "MixMonitor:")
    assert mixmonitor.startswith("MixMonitor: NOT permitted (Permission denied). Without it, the calls of extensions "
                                 "marked 'record calls' are not recorded")
    assert "manager.conf: write=system" in mixmonitor
    assert line(lines, "Result:").startswith("Result: missing CoreShowChannels, Hangup, PlayDTMF, DeviceStateList, MixMonitor")
    assert not [action for action in restricted_pbx.actions if action.get("Action") == "MixMonitor" and action.get("File") != "ami-check-probe.wav"]


async def test_wrong_secret_cannot_log_in(fakepbx):
    code, lines = await run_check("--port", str(fakepbx.port), "--username", "dashboard", "--secret", "wrong")

    assert code == 2, lines
    refused = line(lines, "Login:")
    assert "refused" in refused and "Authentication failed" in refused and "wrong" not in refused


async def test_closed_port_says_so():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    code, lines = await run_check("--host", "127.0.0.1", "--port", str(port))

    assert code == 2, lines
    assert "refused" in line(lines, "AMI:")
    assert line(lines, "Login:").startswith("Login: not attempted")
