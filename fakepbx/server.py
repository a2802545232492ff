"""A simulated Asterisk Manager Interface (Asterisk 20 with chan_sip, or 22 with PJSIP: see
flavours): a real asyncio TCP server that logs users in from a manager.conf, enforces their
read/write classes like manager.c, answers the actions the product uses and streams events shaped
exactly like the captures in ../shared/ami-captures.

    pbx = FakePBX(port=0, phones={"SIP/105": "answer"})
    await pbx.start(); ...; await pbx.stop()

The call logic lives in engine (Switch), the event shapes in channels, users and
rights in manager_conf, the scenarios (demo day, load) in scenarios.
"""

import asyncio
import hashlib
import random
import re
import threading
import time

from .channels import (
    UNKNOWN, action_id_field, core_show_channel, list_complete, originate_response, parse_callerid, status_event,
)
from .manager_conf import (
    IMPLEMENTED_ACTIONS, OPEN_ACTIONS, demo_users, load_manager_conf, originate_blacklisted, parse_classes,
    users_from_dict,
)
from . import qualify
from .engine import OriginateRequest, Switch
from .scenarios import run_scenario
from supervision.ami.protocol import Parser, ProtocolError, banner, encode

GOODBYE = "Thanks for all the fish."
PRE_LOGIN_ACTIONS = {"login", "logoff", "challenge"}


class Session:
    """One AMI connection."""

    def __init__(self, pbx, reader, writer):
        self.pbx = pbx
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("0.0.0.0", 0)
        self.address = peer[0]
        self.user = None
        self.challenge = None
        self.event_mask = None  # None = every class the user may read; else a set
        self.actions = []
        self.closed = False

    @property
    def authenticated(self):
        return self.user is not None

    def send(self, pairs):
        if not self.closed:
            self.writer.write(encode(pairs))

    def respond(self, action_id, response, *fields):
        self.send([("Response", response), *action_id_field(action_id), *fields])

    def error(self, action_id, message):
        self.respond(action_id, "Error", ("Message", message))

    def wants(self, event_class):
        if self.user is None or not self.user.may_read(event_class):
            return False
        return self.event_mask is None or event_class in self.event_mask

    def close(self):
        if not self.closed:
            self.closed = True
            self.writer.close()


class FakePBX:
    def __init__(self, host="127.0.0.1", port=0, users=None, manager_conf=None, scenario="idle", phones=None, *,
                 auth_fail_delay=1.0, auth_timeout=30.0, seed=None, default_behaviour=None,
                 playback_seconds=3.0, ringing_context_seconds=20.0, demo_options=None, transmit_silence=True,
                 flavour="asterisk20", missing_sounds=(), pickup_race=None, monitor_dir=None, dialplan_recorded=()):
        self.host = host
        self.port = port
        if manager_conf is not None:
            self.users = load_manager_conf(manager_conf)
        elif users is not None:
            self.users = users_from_dict(users)
        else:
            self.users = demo_users()
        self.scenario = scenario
        self.auth_fail_delay = auth_fail_delay
        self.auth_timeout = auth_timeout
        self.random = random.Random(seed)
        if isinstance(phones, (list, tuple)):
            phones = {device: "answer" for device in phones}
        self.switch = Switch(self._emit, phones=phones, default_behaviour=default_behaviour,
                             playback_seconds=playback_seconds, ringing_context_seconds=ringing_context_seconds,
                             transmit_silence=transmit_silence, flavour=flavour, missing_sounds=missing_sounds,
                             pickup_race=pickup_race, race_random=self.random, monitor_dir=monitor_dir,
                             dialplan_recorded=dialplan_recorded)
        self.flavour = self.switch.flavour
        self.demo_options = demo_options or {}
        self.unavailable = set()  # qualified phones that stopped answering (phone_gone)
        self.actions = []  # every action Message received, in order (all connections)
        self.raw_actions = []  # the bytes of each action frame, in order
        self.logins_total = 0
        self.events_sent = 0
        self.started_at = time.time()
        self._sessions = set()
        self._server = None
        self._scenario_task = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self):
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self.started_at = time.time()
        if self.scenario != "idle":
            self._scenario_task = asyncio.get_running_loop().create_task(run_scenario(self, self.scenario))
        return self

    async def stop(self):
        """Like SIGKILL: every socket gets EOF at once, the calls vanish, the port closes."""
        await self._close_all(shutdown_event=False)

    async def shutdown(self):
        """Like SIGTERM: `Shutdown` to users who read `system`, then EOF."""
        await self._close_all(shutdown_event=True)

    async def _close_all(self, *, shutdown_event):
        if self._scenario_task is not None:
            self._scenario_task.cancel()
            self._scenario_task = None
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            if shutdown_event and session.wants("system"):
                session.send([("Event", "Shutdown"), ("Privilege", "system,all"), ("Shutdown", "Cleanly"),
                              ("Restart", "False")])
            session.close()
        self._sessions.clear()
        self.switch.cancel_all()
        # a restarted Asterisk counts channels from 00000000 again (asterisk22-pjsip-restart-*)
        self.switch.ids.restart()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @property
    def sessions(self):
        return sum(1 for session in self._sessions if session.authenticated)

    @property
    def channels(self):
        return dict(self.switch.channels)

    # --- control API for tests and scenarios ---------------------------------------------------

    def set_phone(self, device, behaviour="answer", ring_seconds=None):
        return self.switch.set_phone(device, behaviour, ring_seconds)

    async def inbound_call(self, device, caller_num="5551234", caller_name="Customer", answer=True, talk_seconds=None):
        return await self.switch.inbound_call(device, caller_num, caller_name, answer, talk_seconds)

    async def internal_call(self, device, to_device, caller_name=None, answer=True, talk_seconds=None):
        """Phone `device` calls phone `to_device`; returns (caller's channel, rung phone's channel)."""
        return await self.switch.internal_call(device, to_device, caller_name, answer, talk_seconds)

    async def hangup(self, name, cause=None):
        channel = self.switch.find(name)
        if channel is None:
            raise KeyError(name)
        self.switch.hangup(channel, cause)

    async def cli_hangup(self, name):
        """`channel request hangup <name>` on the Asterisk CLI, as the capture lab cleaned up:
        `SoftHangupRequest` Cause 32 first; a ringing Originate then fails (Reason 0, Channel = the
        dial string) with `DialEnd` NOANSWER (asterisk20-pickup-race-too-late-hungup)."""
        channel = self.switch.find(name)
        if channel is None:
            raise KeyError(name)
        self.switch.cli_hangup(channel)

    async def cli_hangup_all(self):
        """`channel request hangup all` on the CLI (the capture lab's clean-up between scenarios)."""
        self.switch.cli_hangup_all()

    async def phone_calls(self, device, number, caller_name=None, talk_seconds=None):
        """The phone `device` dials `number` itself (a trainee calling a customer); returns the
        phone's incoming channel name (asterisk22-pjsip-call-105-answered)."""
        return await self.switch.phone_calls(device, number, caller_name, talk_seconds)

    def phone_gone(self, device):
        """A phone with qualify on stops answering: the PBX's events, and `DeviceStateList` says
        UNAVAILABLE until `phone_back` (fakepbx.qualify)."""
        self.unavailable.add(device)
        for klass, pairs in qualify.gone_events(device):
            self._emit(klass, pairs)

    def phone_back(self, device):
        self.unavailable.discard(device)
        for klass, pairs in qualify.back_events(device):
            self._emit(klass, pairs)

    def device_states(self):
        """[(device, STATE)] as DeviceStateList lists them: chan_sip stays NOT_INUSE in calls (no
        call-limit) and does not list a peer that never registered; PJSIP says INUSE / RINGING,
        and UNAVAILABLE for an endpoint without a contact (asterisk2*-busy-own-phone, -qualify)."""
        states = []
        for device, phone in sorted(self.switch.phones.items()):
            pjsip = device.startswith("PJSIP/")
            if device in self.unavailable or (pjsip and phone.behaviour == "unregistered"):
                states.append((device, "UNAVAILABLE"))
                continue
            if phone.behaviour == "unregistered" or "/" not in device or device.startswith("Local/"):
                continue
            codes = {channel.state for channel in self.switch.channels.values() if channel.name.rpartition("-")[0] == device}
            if pjsip and 6 in codes:
                states.append((device, "INUSE"))
            elif pjsip and 5 in codes:
                states.append((device, "RINGING"))
            else:
                states.append((device, "NOT_INUSE"))
        return states

    def spy_mode(self, name):
        return self.switch.spy_modes.get(name)

    # --- events --------------------------------------------------------------------------------

    def _emit(self, event_class, pairs):
        data = None
        for session in self._sessions:
            if not session.closed and session.wants(event_class):
                if data is None:
                    data = encode(pairs)
                session.writer.write(data)
                self.events_sent += 1

    # --- connections ---------------------------------------------------------------------------

    async def _serve(self, reader, writer):
        session = Session(self, reader, writer)
        self._sessions.add(session)
        writer.write(banner(self.flavour.ami_version))
        watchdog = asyncio.get_running_loop().call_later(self.auth_timeout, self._auth_expired, session)
        parser = Parser(expect_banner=False, lenient_newlines=True)
        raw = b""
        try:
            while not session.closed:
                data = await reader.read(65536)
                if not data:
                    break
                raw += data
                while b"\r\n\r\n" in raw:
                    frame, raw = raw.split(b"\r\n\r\n", 1)
                    self.raw_actions.append(frame + b"\r\n\r\n")
                for message in parser.feed(data):
                    self.actions.append(message)
                    session.actions.append(message)
                    await self._dispatch(session, message)
                    if session.closed:
                        break
                await writer.drain()
        except (ConnectionError, ProtocolError, asyncio.CancelledError):
            pass
        finally:
            watchdog.cancel()
            self._sessions.discard(session)
            session.close()

    def _auth_expired(self, session):
        if not session.authenticated:
            session.close()

    async def _dispatch(self, session, message):
        fields = {}
        for key, value in message.pairs:
            fields.setdefault(key.lower(), value)
        variables = [value for key, value in message.pairs if key.lower() == "variable"]
        action_id = fields.get("actionid")
        action = fields.get("action", "").strip()
        if not action:
            session.error(action_id, "Missing action in request")
            return
        name = action.lower()
        if not session.authenticated and name not in PRE_LOGIN_ACTIONS:
            session.error(action_id, "Permission denied")
            return
        handler = getattr(self, f"_action_{name}", None)
        if handler is None:
            session.error(action_id, f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.")
            return
        if session.authenticated and not session.user.may_write(name):
            session.error(action_id, "Permission denied")
            return
        await handler(session, action_id, fields, variables)

    # --- actions -------------------------------------------------------------------------------

    async def _action_login(self, session, action_id, fields, variables):
        if session.authenticated:
            session.respond(action_id, "Success", ("Message", "Already authenticated"))
            return
        user = self.users.get(fields.get("username", ""))
        ok = user is not None and user.address_allowed(session.address)
        if ok and fields.get("authtype", "").lower() == "md5":
            expected = hashlib.md5(f"{session.challenge or ''}{user.secret}".encode()).hexdigest()
            ok = session.challenge is not None and fields.get("key", "").lower() == expected
        elif ok:
            ok = fields.get("secret", "") == user.secret
        if not ok:
            await asyncio.sleep(self.auth_fail_delay)
            session.error(action_id, "Authentication failed")
            await session.writer.drain()
            session.close()
            return
        session.user = user
        events = fields.get("events")
        if events is not None:
            session.event_mask = _event_mask(events)
        self.logins_total += 1
        session.respond(action_id, "Success", ("Message", "Authentication accepted"))
        if session.wants("system"):
            uptime = str(int(time.time() - self.started_at))
            session.send([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime),
                          ("LastReload", uptime), ("Status", "Fully Booted")])

    async def _action_challenge(self, session, action_id, fields, variables):
        if fields.get("authtype", "").lower() != "md5":
            session.error(action_id, "Must specify AuthType")
            return
        if session.challenge is None:
            session.challenge = str(self.random.randrange(10**8, 10**9))
        session.respond(action_id, "Success", ("Challenge", session.challenge))

    async def _action_logoff(self, session, action_id, fields, variables):
        session.respond(action_id, "Goodbye", ("Message", GOODBYE))
        await session.writer.drain()
        session.close()

    async def _action_ping(self, session, action_id, fields, variables):
        session.respond(action_id, "Success", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}"))

    async def _action_events(self, session, action_id, fields, variables):
        session.event_mask = _event_mask(fields.get("eventmask", "on"))
        state = "On" if session.event_mask is None or session.event_mask else "Off"
        session.respond(action_id, "Success", ("Events", state))

    async def _action_listcommands(self, session, action_id, fields, variables):
        names = list(OPEN_ACTIONS) + [name for name in IMPLEMENTED_ACTIONS if session.user.may_write(name)]
        lines = []
        for name in sorted(names):
            lines.append((name, f" (Priv: {IMPLEMENTED_ACTIONS.get(name, '<none>')})"))
        session.respond(action_id, "Success", *lines)

    async def _action_originate(self, session, action_id, fields, variables):
        channel = fields.get("channel", "")
        if not channel:
            session.error(action_id, "Channel not specified")
            return
        application = fields.get("application", "")
        data = fields.get("data", "")
        if application and "system" not in session.user.write and originate_blacklisted(application, data):
            session.error(action_id, "Originate Access Forbidden: app or data blacklisted")
            return
        context, exten = fields.get("context", ""), fields.get("exten", "")
        if not application and exten and not self.switch.dialplan_has(context, exten):
            session.error(action_id, "Extension does not exist.")
            return
        try:
            timeout = float(fields.get("timeout", "30000")) / 1000.0
        except ValueError:
            session.error(action_id, "Invalid timeout")
            return
        request = OriginateRequest(
            channel=channel, application=application, data=data, context=context, exten=exten,
            priority=fields.get("priority", "1"), caller_id=fields.get("callerid", ""),
            variables=[v for value in variables for v in value.split(",") if v], timeout=timeout,
            action_id=action_id,
        )
        if fields.get("async", "").lower() in ("true", "yes", "1", "on"):
            session.respond(action_id, "Success", ("Message", "Originate successfully queued"))
            self.switch.spawn(self._run_originate(request, None))
        else:
            self.switch.spawn(self._run_originate(request, session))

    async def _run_originate(self, request, sync_session):
        success, reason, channel = await self.switch.originate(request)
        if sync_session is not None:
            # A synchronous Originate answers only once the outcome is known, and sends no event.
            if success:
                sync_session.respond(request.action_id, "Success", ("Message", "Originate successfully queued"))
            else:
                sync_session.error(request.action_id, "Originate failed")
        else:
            if success:
                shown = channel
                if request.application.lower() == "pickupchan":
                    shown = self.switch.pickup_before_response(channel, request.data)
                num, cid_name = channel.variables.get("__response_caller", (channel.caller_num, channel.caller_name))
                name, uniqueid = shown.name, shown.uniqueid
            else:
                num, cid_name = _callerid_or_unknown(request.caller_id)
                name, uniqueid = request.channel, "<unknown>"
            self._emit(*originate_response(request.action_id, success, name, request.target(), reason, uniqueid, num, cid_name))
        if success:
            self.switch.start_application(channel, request)

    def _match_channels(self, pattern):
        if _is_regex(pattern):
            try:
                regex = re.compile(pattern[1:-1])
            except re.error:
                return None
            return [c for c in self.switch.channels.values() if regex.search(c.name)]
        channel = self.switch.find(pattern)
        return [channel] if channel else []

    async def _action_hangup(self, session, action_id, fields, variables):
        pattern = fields.get("channel", "")
        if not pattern:
            session.error(action_id, "No channel specified")
            return
        cause = fields.get("cause")
        cause = int(cause) if cause and cause.isdigit() else None
        matches = self._match_channels(pattern)
        if matches is None:
            session.error(action_id, "Invalid regex")
            return
        if not _is_regex(pattern):
            if not matches:
                session.error(action_id, "No such channel")
                return
            session.respond(action_id, "Success", ("Message", "Channel Hungup"))
            self.switch.request_hangup(matches[0], cause)
            return
        session.respond(action_id, "Success", ("EventList", "start"), ("Message", "Channels hung up will follow"))
        for channel in matches:
            session.send([("Event", "ChannelHungup"), ("Channel", channel.name)] + action_id_field(action_id))
        session.send(list_complete("ChannelsHungupListComplete", action_id, len(matches)))
        for channel in matches:
            self.switch.request_hangup(channel, cause)

    async def _action_coreshowchannels(self, session, action_id, fields, variables):
        session.respond(action_id, "Success", ("EventList", "start"), ("Message", "Channels will follow"))
        now = time.time()
        channels = list(self.switch.channels.values())
        for channel in channels:
            session.send(core_show_channel(channel, action_id, now))
        session.send(list_complete("CoreShowChannelsComplete", action_id, len(channels)))

    async def _action_devicestatelist(self, session, action_id, fields, variables):
        for frame in qualify.device_state_list(action_id, self.device_states()):
            session.send(frame)

    async def _action_coresettings(self, session, action_id, fields, variables):
        # Shaped like Asterisk 20's reply (asterisk20-command-core-show-version); SystemName says
        # which PBX this is, so `ami_check` against the simulator does not pass for a real one.
        session.respond(action_id, "Success", ("AMIversion", self.flavour.ami_version),
                        ("AsteriskVersion", self.flavour.asterisk_version),
                        ("SystemName", "simulated-pbx"), ("CoreMaxCalls", "0"), ("CoreMaxLoadAvg", "0.000000"),
                        ("CoreRunUser", ""), ("CoreRunGroup", ""), ("CoreMaxFilehandles", "0"),
                        ("CoreRealTimeEnabled", "No"), ("CoreCDRenabled", "Yes"), ("CoreHTTPenabled", "No"),
                        ("SoundsSearchCustomDir", "No"))

    async def _action_status(self, session, action_id, fields, variables):
        name = fields.get("channel")
        if name:
            channel = self.switch.find(name)
            if channel is None:
                session.error(action_id, "No such channel")
                return
            channels = [channel]
        else:
            channels = list(self.switch.channels.values())
        session.respond(action_id, "Success", ("EventList", "start"), ("Message", "Channel status will follow"))
        now = time.time()
        for channel in channels:
            session.send(status_event(channel, action_id, now))
        session.send(list_complete("StatusComplete", action_id, len(channels), ("Items", str(len(channels)))))

    async def _action_mixmonitor(self, session, action_id, fields, variables):
        """Record a channel (fakepbx.mixmonitor); answers as manager_mixmonitor does."""
        name = fields.get("channel", "")
        if not name:
            session.error(action_id, "No channel specified")
            return
        channel = self.switch.find(name)
        if channel is None:
            session.error(action_id, "No such channel")
            return
        if not fields.get("file", "").strip():
            session.error(action_id, "Could not start monitoring channel")
            return
        # The answer goes out before the VarSet and MixMonitorStart (asterisk2*-mixmonitor).
        session.respond(action_id, "Success")
        self.switch.mixmonitor_start(channel, fields.get("file", ""), fields.get("options", ""))

    async def _action_stopmixmonitor(self, session, action_id, fields, variables):
        name = fields.get("channel", "")
        if not name:
            session.error(action_id, "No channel specified")
            return
        channel = self.switch.find(name)
        if channel is None:
            session.error(action_id, "No such channel")
            return
        if not channel.variables.get("__mixmonitors"):
            session.error(action_id, "Could not stop monitoring channel")
            return
        session.respond(action_id, "Success")
        self.switch.mixmonitor_stop(channel)

    async def _action_playdtmf(self, session, action_id, fields, variables):
        channel = self.switch.find(fields.get("channel", ""))
        if channel is None:
            session.error(action_id, "Channel not found")
            return
        digit = fields.get("digit", "")
        if not digit:
            session.error(action_id, "No digit specified")
            return
        session.respond(action_id, "Success", ("Message", "DTMF successfully queued"))
        if fields.get("receive", "").lower() in ("true", "yes", "1", "on"):
            self.switch.receive_dtmf(channel, digit[0])


def _is_regex(pattern):
    """Hangup's `Channel: /regex/` form: every channel whose name matches, answered as a list."""
    return len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/")


def _callerid_or_unknown(text):
    num, name = parse_callerid(text)
    return num or UNKNOWN, name or UNKNOWN


def _event_mask(text):
    """`on` -> None (everything readable), `off` -> empty set, `call,system` -> those classes."""
    value = text.strip().lower()
    if value in ("on", "yes", "true", "all", "1"):
        return None
    if value in ("off", "no", "false", "none", "0"):
        return set()
    return parse_classes(value)


class FakePBXThread:
    """A FakePBX in its own event loop thread, for tests where the code under test is another
    process or thread (browser tests). `with FakePBXThread(port=0) as pbx: pbx.port; pbx.call(...)`."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.loop = None
        self.pbx = None
        self._thread = None
        self._ready = threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self._thread = threading.Thread(target=self._run, name="fakepbx", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the simulated PBX did not start")
        if isinstance(self.pbx, BaseException):
            raise self.pbx

    def _run(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.pbx = FakePBX(**self.kwargs)
            self.loop.run_until_complete(self.pbx.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self.pbx = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    @property
    def port(self):
        return self.pbx.port

    def call(self, fn, *args, timeout=10, **kwargs):
        """Run `fn(pbx, *args)` in the PBX loop (awaited if it is a coroutine function); return its result."""

        async def runner():
            result = fn(self.pbx, *args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result(timeout)

    def close(self):
        if self.loop is None or not self.loop.is_running():
            return
        try:
            self.call(lambda pbx: pbx.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
