"""`manage.py ami_check`: can the dashboard work with this PBX and this AMI user? Plain answers.

Every probe is harmless: CoreShowChannels only lists; Hangup, PlayDTMF and MixMonitor name a channel that
cannot exist (`No such channel` / `Channel not found` prove the right, `Permission denied`
disproves it); the Originate goes to a Local channel in a context that does not exist, so it fails
at once (Reason 0) without ringing any phone, yet shows whether Originate is allowed and makes the
call events (Newchannel, Hangup, OriginateResponse) a working link must deliver.

Exit code: 0 all that the dashboard needs is there, 1 something is missing, 2 no login at all.
"""

import asyncio
import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from supervision.ami import link as links
from supervision.ami.client import ActionError, AMIClient, AMIError

PROBE_CHANNEL = "Local/ami-check-probe@ami-check-nonexistent-00000000;1"
ORIGINATE_PROBE = [
    ("Channel", "Local/s@ami-check-probe"),  # no such context: fails at once, rings nothing
    ("Application", "Wait"),
    ("Data", "1"),
    ("Timeout", "5000"),
    ("CallerID", "ami_check <0>"),
    ("Async", "true"),
]
CALL_EVENTS = {"Newchannel", "Newstate", "Hangup", "OriginateResponse", "DialBegin", "DialEnd", "BridgeEnter"}

# What the dashboard loses without each right, and what manager.conf must say to grant it.
NEEDS = {
    "Originate": (
        "nothing works: listen, whisper, barge, pickup, click-to-call and playback are all an Originate",
        "write=originate",
    ),
    "CoreShowChannels": (
        "after a reconnect the board cannot be rebuilt; it works from events alone, so calls already "
        "up stay invisible until something happens on them; and a restarted bridge cannot find the "
        "listen/whisper/barge calls still running, so their sessions end as interrupted while the "
        "curators' phones stay connected",
        "write=reporting (or system)",
    ),
    "Hangup": (
        "Stop and the switch between modes without the keypad option fail: the PBX refuses to end a "
        "listen/whisper/barge, the page says so, and the curator must hang up his phone; a spy still "
        "ends when the call it listens to ends (ChanSpy option E, always sent), but one left behind "
        "by a bridge restart cannot be ended from the dashboard",
        "write=call (or system)",
    ),
    "PlayDTMF": (
        "switching between listen, whisper and barge during a call from the browser is unavailable",
        "write=call",
    ),
    "DeviceStateList": (
        "after each login every card says the phone's state is unknown until the PBX reports a change "
        "on it",
        "write=call or reporting",
    ),
    "MixMonitor": (
        "the calls of extensions marked 'record calls' are not recorded (the bridge starts MixMonitor when "
        "they are answered); recordings the site's own dialplan makes are still attached (read=dialplan)",
        "write=system (MixMonitor has no narrower class, and system allows much more: grant it only to "
        "record from the dashboard)",
    ),
}
# Needed only when some extension is marked "record calls" (history/recordings_bridge.py).
OPTIONAL = {"MixMonitor"}


# Contexts where phones themselves dial in stock dialplans (FreePBX, Asterisk's samples): their
# feature codes (directed pickup **<ext>, ChanSpy codes, voicemail) are reachable from there.
PHONE_CONTEXTS = {"from-internal", "default", "phones"}


def dial_context_warning(dial_context, phone_contexts, pattern):
    """A sentence when click-to-call dials into the phones' own context, else None."""
    if dial_context not in PHONE_CONTEXTS | set(phone_contexts):
        return None
    return (f"Dial context: WARNING: AMI_DIAL_CONTEXT={dial_context} is where the phones themselves dial, so "
            f"its feature codes (pickup, ChanSpy, voicemail) are one typed number away; only DIAL_NUMBER_PATTERN="
            f"{pattern} keeps them out. A context with only the outside routes is safer (docs/deployment.md).")


def _phone_contexts():
    from accounts.models import Extension

    try:
        return set(Extension.objects.exclude(originate_context="").values_list("originate_context", flat=True))
    except Exception:  # noqa: BLE001 - no database here: the stock names still count
        return set()


def _recorded_extensions():
    from accounts.models import Extension

    try:
        return Extension.objects.filter(record_calls=True).count()
    except Exception:  # noqa: BLE001 - no database here: MixMonitor is reported, not required
        return 0


def is_call_event(msg):
    privilege = (msg.get("Privilege") or "").split(",")
    return "call" in privilege or msg.event in CALL_EVENTS


class Probe:
    """The outcome of trying one action: permitted, refused, or could not tell."""

    def __init__(self, permitted, note):
        self.permitted = permitted
        self.note = note


async def probe(client, action, fields, *, as_list=False):
    try:
        if as_list:
            items = await client.send_list(action, fields)
            return Probe(True, f"ran it: {len(items)} channel(s) up now")
        answer = await client.send(action, fields)
        return Probe(True, f"answered {answer.get('Message') or 'Success'!r}")
    except ActionError as exc:
        if exc.message.strip().lower() == "permission denied":
            return Probe(False, "Permission denied")
        # Any other refusal comes from the action itself, past the rights check: it is allowed.
        return Probe(True, f"answered {exc.message!r}, which means it may run")
    except AMIError as exc:
        return Probe(None, f"could not tell: {exc}")


async def check_pbx(host, port, username, secret, auth, *, timeout, events_wait, say, recorded=0):
    """Run every check, `say(line)` each finding; returns the exit code. `recorded`: how many
    extensions are marked "record calls" (MixMonitor is needed only then)."""
    client = AMIClient(
        host, port, username, secret, auth=auth, action_timeout=timeout,
        ping_interval=3600, reconnect_max=3600, name="ami-check",
    )
    call_events = []
    seen_call_event = asyncio.Event()

    def collect(msg):
        if is_call_event(msg):
            call_events.append(msg.event)
            seen_call_event.set()

    client.on_event(collect)
    await client.start()
    try:
        try:
            link = await client.wait_until(links.UP, links.LOGIN_REFUSED, links.DOWN, timeout=timeout * 3 + 1)
        except TimeoutError:
            say(f"AMI: no verdict from {host}:{port} within {timeout * 3 + 1:g} s")
            return 2
        if link.banner:
            say(f"AMI: {host}:{port} greets with {link.banner!r} (AMI version {link.ami_version or 'unknown'})")
        if link.state == links.DOWN:
            say(f"AMI: cannot use {host}:{port}: {link.detail}")
            say("Login: not attempted. Check AMI_HOST/AMI_PORT, that manager.conf has `enabled = yes` "
                "with this port and bindaddr, and any firewall in between.")
            return 2
        if link.state == links.LOGIN_REFUSED:
            say(f"Login: refused for user {username!r} ({auth}): {link.refused_with}. Check AMI_USERNAME/AMI_SECRET "
                f"(AMI_AUTH={auth}) against the [{username}] section of manager.conf, including permit/deny.")
            return 2
        say(f"Login: ok as {username!r} ({'MD5 challenge' if auth == 'md5' else 'plain secret'})")
        await _report_version(client, say)

        probes = {
            "CoreShowChannels": await probe(client, "CoreShowChannels", (), as_list=True),
            "Hangup": await probe(client, "Hangup", [("Channel", PROBE_CHANNEL)]),
            "PlayDTMF": await probe(client, "PlayDTMF", [("Channel", PROBE_CHANNEL), ("Digit", "1")]),
            "DeviceStateList": await probe(client, "DeviceStateList", (), as_list=True),
            "Originate": await probe(client, "Originate", ORIGINATE_PROBE),
            # a channel that cannot exist: `No such channel` proves the right, nothing is recorded
            "MixMonitor": await probe(client, "MixMonitor", [("Channel", PROBE_CHANNEL), ("File", "ami-check-probe.wav")]),
        }
        missing = []
        for action, result in probes.items():
            loses, grant = NEEDS[action]
            if result.permitted:
                say(f"{action}: permitted ({result.note})")
                continue
            verdict = "NOT permitted" if result.permitted is False else "unknown"
            if action in OPTIONAL and not recorded:
                say(f"{action}: {verdict} ({result.note}); no extension is marked 'record calls', so nothing "
                    f"is lost now. To record from the dashboard: manager.conf {grant}.")
                continue
            missing.append(action)
            say(f"{action}: {verdict} ({result.note}). Without it, {loses}. manager.conf: {grant}.")

        if not seen_call_event.is_set():
            try:
                async with asyncio.timeout(events_wait):
                    await seen_call_event.wait()
            except TimeoutError:
                pass
        if call_events:
            names = ", ".join(dict.fromkeys(call_events))
            say(f"Call events: arriving (saw {names})")
        else:
            missing.append("call events")
            cause = (
                "the Originate probe was refused, so nothing made any; this user may still read them"
                if not probes["Originate"].permitted
                else "the Originate probe should have made some"
            )
            say(f"Call events: none seen within {events_wait:g} s ({cause}). Without them the board stays "
                "empty. manager.conf: read=call, and no `eventfilter` or `Events: off` hiding them.")

        if missing:
            say(f"Result: missing {', '.join(missing)}; the dashboard runs degraded as described above.")
            return 1
        say("Result: everything the dashboard needs is permitted.")
        return 0
    finally:
        await client.stop()


async def _report_version(client, say):
    try:
        settings_reply = await client.send("CoreSettings")
    except ActionError as exc:
        hint = "; it needs write=system or reporting" if "permission denied" in exc.message.lower() else ""
        say(f"Asterisk: version unknown (CoreSettings: {exc.message}{hint}); not needed by the dashboard")
        return
    except AMIError as exc:
        say(f"Asterisk: version unknown ({exc})")
        return
    version = settings_reply.get("AsteriskVersion") or "unknown"
    details = [f"AMI {settings_reply.get('AMIversion') or client.link.ami_version or 'unknown'}"]
    if settings_reply.get("SystemName"):
        details.append(f"system name {settings_reply.get('SystemName')}")
    say(f"Asterisk: version {version} ({', '.join(details)})")


class Command(BaseCommand):
    help = "Connect to the PBX's AMI and say, in plain words, whether the dashboard can work with it."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.AMI_HOST, help="AMI host (AMI_HOST)")
        parser.add_argument("--port", type=int, default=settings.AMI_PORT, help="AMI port (AMI_PORT)")
        parser.add_argument("--username", default=settings.AMI_USERNAME, help="AMI user (AMI_USERNAME)")
        parser.add_argument("--secret", default=settings.AMI_SECRET, help="AMI secret (AMI_SECRET)")
        parser.add_argument("--auth", choices=["plain", "md5"], default=settings.AMI_AUTH, help="login kind (AMI_AUTH)")
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer")
        parser.add_argument("--events-wait", type=float, default=3.0, help="seconds to wait for a call event")

    def handle(self, *args, **options):
        ami_log = logging.getLogger("supervision.ami")
        previous = ami_log.level
        if options["verbosity"] < 2:
            ami_log.setLevel(logging.CRITICAL)  # the findings below say it all, in plainer words
        warning = dial_context_warning(settings.AMI_DIAL_CONTEXT, _phone_contexts(), settings.DIAL_NUMBER_PATTERN)
        if warning:
            self.stdout.write(warning)
        try:
            code = asyncio.run(
                check_pbx(
                    options["host"], options["port"], options["username"], options["secret"], options["auth"],
                    timeout=options["timeout"], events_wait=options["events_wait"],
                    say=lambda line: self.stdout.write(line), recorded=_recorded_extensions(),
                )
            )
        finally:
            ami_log.setLevel(previous)
        if code:
            raise SystemExit(code)
