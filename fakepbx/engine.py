"""The call engine of the simulated Asterisk: phones, Originate, the applications the product uses
(Wait, ChanSpy, PickupChan, Playback, Dial), hangups and inbound customer calls.

Every change is reported through `emit(event_class, pairs)` in the order Asterisk sends it (the
sequences are copied from ../shared/ami-captures; what differs between Asterisk 20 with chan_sip
and Asterisk 22 with PJSIP is in flavours). Timing uses asyncio sleeps so tests can shrink it:
phones carry their own ring time, Originate its own Timeout. The PJSIP Local route lives in
local_route, PickupChan in pickup, calls that start at a phone or a trunk in phone_calls.

Dial strings understood:
- `SIP/104`, `PJSIP/104`, `IAX2/...`: the phone registered under exactly that device.
- `Local/<ext>@<context>`: a Local pair `;1`/`;2`. The contexts of the capture dialplan behave as
  there (`busy`, `congested`, `rejected`, `ringing`, `from-internal`); on Asterisk 20 any other
  context rings the registered phone whose resource is `<ext>` (`SIP/104` for `Local/104@phones`);
  on Asterisk 22 any context but the lab's runs deploy/extensions-autoanswer.conf (local_route).
- anything else: unknown technology (Reason 0).
"""

import asyncio
import re
from dataclasses import dataclass, field

from . import channels as calls
from .channels import Bridge, Channel, IdSource
from .flavours import flavour_named
from .local_route import CUSTOMER_NUMBER, LocalPhoneRoute
from .mixmonitor import MixMonitor
from .phone_calls import PhoneCalls
from .pickup import PickupChan, pickup_race_mode

TECHNOLOGIES = {"SIP", "PJSIP", "IAX2", "DAHDI", "Local"}
BEHAVIOURS = ("answer", "autoanswer", "busy", "noanswer", "congestion", "unregistered", "unreachable")
# Contexts of the capture dialplan that decide the outcome themselves.
CONTEXT_BEHAVIOUR = {
    "busy": "busy", "congested": "congestion", "rejected": "rejected",
    "ringing": "ringing-context", "dialer": "ringing-context", "from-internal": "answer-now",
}
# The capture lab's names for files it did not have (`no/such-file`, `.../training/no-such-file`).
LAB_MISSING_SOUND = re.compile(r"(^|/)no[-/]such")
# Sound files this PBX has with their own length in seconds, by file name (any folder): the demo
# library's recording (accounts/demo.py) plays this long; any other file plays playback_seconds.
SOUND_SECONDS = {"demo-welcome-call": 20.0}
# The capture dialplan's own contexts; on Asterisk 22 every other Local context is the product's
# deploy/extensions-autoanswer.conf (see local_route).
LAB_CONTEXTS = set(CONTEXT_BEHAVIOUR) | {"phones", "customer"}
SPY_DTMF = {"4": "listen", "5": "whisper", "6": "barge"}
REASON = {"answer": 4, "busy": 5, "congestion": 8, "noanswer": 3, "failed": 0}
@dataclass
class Phone:
    device: str
    behaviour: str = "answer"
    ring_seconds: float = 1.0

    @property
    def resource(self):
        return self.device.split("/", 1)[1].split("@", 1)[0]


@dataclass
class OriginateRequest:
    channel: str
    application: str = ""
    data: str = ""
    context: str = ""
    exten: str = ""
    priority: str = "1"
    caller_id: str = ""
    variables: list = field(default_factory=list)
    timeout: float = 30.0
    action_id: str | None = None

    def target(self):
        if self.application:
            return [("Application", self.application), ("Data", self.data)]
        return [("Context", self.context), ("Exten", self.exten)]


def wants_autoanswer(variables):
    """Auto-answer asked by the Originate: a SIP/PJSIP header with Call-Info/Alert-Info, or AUTOANSWER."""
    for item in variables:
        name, _, value = item.partition("=")
        upper = name.upper()
        if "AUTOANSWER" in upper:
            return True
        if ("SIPADDHEADER" in upper or "PJSIP_HEADER" in upper) and ("call-info" in value.lower() or "alert-info" in value.lower()):
            return True
    return False


class Switch(LocalPhoneRoute, PickupChan, PhoneCalls, MixMonitor):
    def __init__(self, emit, *, phones=None, default_behaviour=None, clock=None, playback_seconds=3.0,
                 ringing_context_seconds=20.0, spy_poll_seconds=0.05, transmit_silence=True,
                 flavour="asterisk20", missing_sounds=(), pickup_race=None, race_random=None, monitor_dir=None,
                 dialplan_recorded=()):
        self.emit = emit
        # MixMonitor (fakepbx.mixmonitor): the PBX's monitor folder, where recordings are written,
        # and the phones whose calls the site's own dialplan records.
        self.monitor_dir = monitor_dir
        self.dialplan_recorded = set(dialplan_recorded)
        self.flavour = flavour_named(flavour) if isinstance(flavour, str) else flavour
        # Sound files this PBX does not have: ChanSpy without `q` beeps, and without `beep` the spy
        # leg ends at once (asterisk20-whisper-no-beep); Playback of a missing file ends at once.
        self.missing_sounds = set(missing_sounds)
        self.pickup_race = pickup_race_mode(pickup_race)
        self.race_random = race_random
        # asterisk.conf `transmit_silence`: with `no`, a spy told to hang up stays until a frame
        # of audio reaches ChanSpy; on a silent call that is when the spied call ends
        # (asterisk20-chanspy-hangup-spy-no-media).
        self.transmit_silence = transmit_silence
        per_technology = self.flavour.counter_per_technology
        self.ids = IdSource(clock, per_technology=per_technology) if clock else IdSource(per_technology=per_technology)
        self.phones = {}
        for device, behaviour in (phones or {}).items():
            self.set_phone(device, behaviour)
        self.default_behaviour = default_behaviour
        self.channels = {}  # name -> Channel, in creation order
        self.playback_seconds = playback_seconds
        self.ringing_context_seconds = ringing_context_seconds
        self.spy_poll_seconds = spy_poll_seconds
        self.spy_modes = {}  # spy channel name -> listen/whisper/barge
        self._ring_waits = {}  # ringing Channel -> Future resolved by answer/pickup
        self._tasks = set()

    # --- phones --------------------------------------------------------------------------------

    def set_phone(self, device, behaviour="answer", ring_seconds=None):
        if isinstance(behaviour, Phone):
            self.phones[device] = behaviour
            return behaviour
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown phone behaviour {behaviour!r}; one of {', '.join(BEHAVIOURS)}")
        phone = self.phones.get(device) or Phone(device)
        phone.behaviour = behaviour
        if ring_seconds is not None:
            phone.ring_seconds = ring_seconds
        self.phones[device] = phone
        return phone

    def phone_for(self, device):
        phone = self.phones.get(device)
        if phone is None and self.default_behaviour and "/" in device:
            phone = self.set_phone(device, self.default_behaviour)
        return phone

    def phone_by_resource(self, resource):
        for phone in self.phones.values():
            if phone.resource == resource:
                return phone
        return None

    def dialplan_has(self, context, exten):
        if context in CONTEXT_BEHAVIOUR:
            return len(exten) >= 2 and exten.isdigit()
        return self.phone_by_resource(exten) is not None

    # --- channel bookkeeping -------------------------------------------------------------------

    def spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def channel_name(self, device):
        """`SIP/105` -> `SIP/105-0000002a`: the device plus its technology's next suffix."""
        return f"{device}-{self.ids.channel_suffix(device.split('/', 1)[0])}"

    def new_channel(self, name, *, state=0, context="from-internal", exten="s", linkedid=None, device=None,
                    caller=None):
        channel = Channel(name, self.ids.uniqueid(), linkedid, state=state, context=context, exten=exten, device=device)
        if caller is not None:
            channel.caller_num, channel.caller_name = caller
        self.channels[name] = channel
        self.emit(*calls.channel_event("Newchannel", channel))
        return channel

    def new_local_pair(self, exten, context, linkedid=None):
        base = self.channel_name(f"Local/{exten}@{context}")
        one = self.new_channel(f"{base};1", context=context, exten=exten, linkedid=linkedid)
        two = self.new_channel(f"{base};2", state=4, context=context, exten=exten, linkedid=one.linkedid)
        one.local_twin, two.local_twin = two, one
        return one, two

    def set_callerid(self, channel, num, name):
        channel.caller_num, channel.caller_name = num or calls.UNKNOWN, name or calls.UNKNOWN
        self.emit(*calls.newcallerid(channel))
        channel.connected_num, channel.connected_name = channel.caller_num, channel.caller_name
        self.emit(*calls.channel_event("NewConnectedLine", channel))

    def set_state(self, channel, state):
        channel.state = state
        self.emit(*calls.channel_event("Newstate", channel))

    def find(self, name):
        return self.channels.get(name)

    def cancel_all(self):
        for task in list(self._tasks):
            task.cancel()
        self.channels.clear()
        self._ring_waits.clear()

    # --- hangup --------------------------------------------------------------------------------

    def request_hangup(self, channel, cause=None):
        """A Hangup action: at once, except for a spy on a silent call without transmit_silence,
        which goes when its ChanSpy next wakes up (see `_app_chanspy`)."""
        if not self.transmit_silence and channel.spying is not None:
            channel.variables["__hangup_requested"] = cause
            return
        if cause is None and channel.bridge is None and not channel.name.startswith("Local/"):
            # Asterisk 22: Cause 0 outside a bridge, 16 inside (asterisk22-pjsip-two-calls-one-phone)
            cause = self.flavour.unbridged_hangup_cause
        self.hangup(channel, cause)

    def hangup(self, channel, cause=None, *, requests=True):
        """Tear a channel down with the events Asterisk sends, then whatever depended on it.
        `requests=False`: no Hangup/SoftHangupRequest for the Local twin (a dialplan that never ran)."""
        if not channel.alive:
            return
        local = channel.name.startswith("Local/")
        cause = (0 if local else 16) if cause is None else cause
        channel.alive = False
        self.mixmonitor_hangup(channel)  # the file is complete before the Hangup goes out
        twin = channel.local_twin if channel.local_twin is not None and channel.local_twin.alive else None
        self._end_spying(channel)
        for spy in list(channel.spies):
            self._spyee_gone(spy, channel)
        bridge = channel.bridge
        if bridge is not None:
            bridge.channels.remove(channel)
            self.emit(*calls.bridge_event("BridgeLeave", bridge, channel))
            channel.bridge = None
            if not bridge.channels:
                self.emit(*calls.bridge_event("BridgeDestroy", bridge))
        if twin is not None and requests:
            self.emit(*calls.channel_event("HangupRequest", twin, ("Cause", str(cause))))
        self.emit(*calls.hangup_event(channel, cause))
        self.channels.pop(channel.name, None)
        waiter = self._ring_waits.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(("hungup", None))
        if channel.task is not None and channel.task is not asyncio.current_task():
            channel.task.cancel()
        for callback in channel.on_hangup:
            callback(channel)
        # A bridge's other side and a Local `;2` that was bridged end with Normal Clearing even when
        # this channel's cause was 0 (asterisk22-pjsip-chanspy-listen: `;1` 0, `;2` and PJSIP/104 16).
        if bridge is not None:
            for peer in list(bridge.channels):
                self.hangup(peer, cause or 16)
        if twin is not None:
            if requests:
                self.emit(*calls.channel_event("SoftHangupRequest", twin, ("Cause", "16")))
            self.hangup(twin, (cause or 16) if twin.bridge is not None else cause, requests=requests)

    def cli_hangup(self, channel):
        """`channel request hangup` on the CLI: `SoftHangupRequest` Cause 32, then the hangup; a
        ringing Originate's dial ends NOANSWER and the Originate fails with Reason 0
        (asterisk20-pickup-race-too-late-hungup)."""
        self.emit(*calls.channel_event("SoftHangupRequest", channel, ("Cause", "32")))
        if channel in self._ring_waits and channel.state == 5:
            self.emit(*calls.dial_event("DialEnd", None, channel, ("DialStatus", "NOANSWER")))
        self.hangup(channel, None if channel.name.startswith("Local/") else 16)

    def cli_hangup_all(self):
        """`channel request hangup all` on the CLI, as the capture lab cleaned up between scenarios:
        every channel gets its `SoftHangupRequest` 32 and ends with its own cause (a Local leg
        outside a bridge 0, the others 16), those outside a bridge first."""
        live = list(self.channels.values())
        for channel in live:
            self.emit(*calls.channel_event("SoftHangupRequest", channel, ("Cause", "32")))
        for channel in sorted(live, key=lambda c: c.bridge is not None):
            if channel.alive:
                self.hangup(channel, None if channel.name.startswith("Local/") else 16)

    # --- Originate -----------------------------------------------------------------------------

    async def originate(self, req):
        """Run one Originate to its outcome. Returns (success, reason, channel or None)."""
        tech, _, resource = req.channel.partition("/")
        if tech not in TECHNOLOGIES or not resource:
            return self._fail(req, 0)
        if tech == "Local":
            return await self._originate_local(req, resource)
        phone = self.phone_for(req.channel)
        if phone is None or phone.behaviour == "unregistered":
            return self._fail(req, 0)
        channel = self.new_channel(self.channel_name(req.channel), device=req.channel)
        if not self.flavour.local_phone_route:
            # chan_sip's outgoing channel shows an empty Exten after its Newchannel (asterisk20-whisper-no-beep)
            channel.exten = ""
        num, name = calls.parse_callerid(req.caller_id)
        if req.caller_id:
            self.set_callerid(channel, num, name)
        self.emit(*calls.dial_event("DialBegin", None, channel, ("DialString", resource)))
        outcome, picker = await self._ring(channel, phone, req)
        if outcome == "answer":
            self.set_state(channel, 6)
            self.emit(*calls.dial_event("DialEnd", None, channel, ("DialStatus", "ANSWER")))
            return self._answered(req, channel)
        if outcome == "pickup":
            return self._picked_up(req, channel, picker)
        if outcome == "hungup":
            return self._fail(req, 0)
        status = {"busy": "BUSY", "congestion": "CONGESTION"}.get(outcome, "NOANSWER")
        cause = {"busy": 17, "congestion": 34}.get(outcome, 19)
        if outcome == "busy" and self.flavour.local_phone_route:
            # a PJSIP phone's `486 Busy` (asterisk22-pjsip-originate-failures, orig-busy-headset-pjsip-direct)
            self.emit(*calls.channel_event("HangupRequest", channel, ("Cause", str(cause))))
        if outcome not in ("unreachable", "noanswer"):
            # a dial given up at the Originate Timeout ends with no DialEnd (asterisk20- and
            # asterisk22-pjsip-originate-failures)
            self.emit(*calls.dial_event("DialEnd", None, channel, ("DialStatus", status)))
        self.hangup(channel, cause)
        # Reason is the last control frame: 5 after chan_sip's busy, 0 after PJSIP's 486 (see flavours)
        reason = self.flavour.phone_busy_reason if outcome == "busy" else REASON.get(outcome, 3)
        return self._fail(req, reason)

    async def _ring(self, channel, phone, req):
        """A phone's answer to an INVITE: answer / pickup / busy / congestion / noanswer / unreachable."""
        behaviour = phone.behaviour
        if behaviour in ("busy", "congestion"):
            return behaviour, None
        if behaviour == "autoanswer" and wants_autoanswer(req.variables):
            return "answer", None
        if behaviour in ("answer", "autoanswer") and phone.ring_seconds <= 0:
            return "answer", None
        if behaviour == "unreachable":
            await asyncio.sleep(req.timeout)
            return "unreachable", None
        self.set_state(channel, 5)
        self.emit(*calls.dial_event("DialState", None, channel, ("DialStatus", "RINGING")))
        return await self._wait_ringing(channel, None if behaviour == "noanswer" else phone.ring_seconds, req.timeout)

    async def _wait_ringing(self, channel, answer_after, timeout):
        waiter = asyncio.get_running_loop().create_future()
        self._ring_waits[channel] = waiter
        limit = timeout if answer_after is None else min(answer_after, timeout)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(waiter), limit)
        except asyncio.TimeoutError:
            outcome = ("answer" if answer_after is not None and answer_after <= timeout else "noanswer", None)
        self._ring_waits.pop(channel, None)
        return outcome

    async def _originate_local(self, req, resource):
        exten, _, context = resource.partition("@")
        if self.flavour.local_phone_route and context and context not in LAB_CONTEXTS:
            return await self._originate_phone_route(req, exten, context)
        one, two = self.new_local_pair(exten, context or "default")
        if not self.dialplan_has(one.context, exten):
            self.hangup(two, 0, requests=False)
            return self._fail(req, 0)
        num, name = calls.parse_callerid(req.caller_id)
        if req.caller_id:
            for leg in (one, two):
                self.set_callerid(leg, num, name)
        self.emit(*calls.local_bridge(one, two))
        self.emit(*calls.dial_event("DialBegin", None, one, ("DialString", resource)))
        behaviour = CONTEXT_BEHAVIOUR.get(one.context)
        phone = None
        if behaviour is None:
            phone = self.phone_by_resource(exten)
            behaviour = phone.behaviour
            two.device = phone.device
        if behaviour in ("busy", "congestion"):
            self.set_state(two, 7)
            self.emit(*calls.dial_event("DialEnd", None, one, ("DialStatus", behaviour.upper())))
            self.emit(*calls.channel_event("HangupRequest", two, ("Cause", "0")))
            self.emit(*calls.channel_event("SoftHangupRequest", two, ("Cause", "16")))
            # `;2` ends busy/congested, `;1` with Cause 0 (asterisk20- and asterisk22-pjsip-originate-failures)
            self._drop(two, 17 if behaviour == "busy" else 34)
            self._drop(one, 0)
            return self._fail(req, REASON[behaviour])
        if behaviour in ("rejected", "unregistered"):
            return self._fail_local(req, one, two, 0, 21)
        if behaviour == "answer-now" or (behaviour == "autoanswer" and wants_autoanswer(req.variables)) or (
            behaviour in ("answer", "autoanswer") and phone.ring_seconds <= 0
        ):
            return self._answer_local(req, one, two)
        self.set_state(one, 5)
        self.emit(*calls.dial_event("DialState", None, one, ("DialStatus", "RINGING")))
        ring = {"ringing-context": self.ringing_context_seconds, "noanswer": None, "unreachable": None}.get(
            behaviour, phone.ring_seconds if phone else 1.0)
        outcome, picker = await self._wait_ringing(one, ring, req.timeout)
        if outcome == "answer":
            return self._answer_local(req, one, two)
        if outcome == "pickup":
            return self._picked_up(req, one, picker)
        if outcome == "hungup":
            return self._fail(req, 0)
        return self._fail_local(req, one, two, 3, 19)

    def _answer_local(self, req, one, two):
        two.priority = 2
        self.set_state(two, 6)
        self.set_state(one, 6)
        self.emit(*calls.dial_event("DialEnd", None, one, ("DialStatus", "ANSWER")))
        two.priority = 3
        two.application, two.app_data = "Wait", "3600"
        return self._answered(req, one)

    def _fail_local(self, req, one, two, reason, cause):
        result = self._fail(req, reason)
        self.hangup(two, cause)
        return result

    def _fail(self, req, reason):
        return False, reason, None

    def _answered(self, req, channel):
        channel.variables.update(v.partition("=")[::2] for v in req.variables)
        if req.application:
            channel.application, channel.app_data = req.application, req.data
        else:
            channel.context, channel.exten, channel.priority = req.context, req.exten, int(req.priority or 1)
            channel.application, channel.app_data = "Wait", "3600"
        return True, 4, channel

    # --- applications --------------------------------------------------------------------------

    def start_application(self, channel, req):
        """Run the Originate's application on the answered channel (Async: after OriginateResponse)."""
        for step in channel.after_response:
            step()
        channel.after_response.clear()
        if not channel.alive:
            return
        if not req.application:
            if (self.flavour.local_phone_route and channel.local_twin is not None and req.context == "from-internal"
                    and CUSTOMER_NUMBER.match(req.exten)):
                channel.task = self.spawn(self._route_dial_customer(channel, req.exten))
            return
        app = req.application.lower()
        if app == "pickupchan":
            self._app_pickupchan(channel, req.data)
            return
        runner = {
            "wait": self._app_wait, "chanspy": self._app_chanspy, "playback": self._app_playback,
            "dial": self._app_dial,
        }.get(app)
        if runner is not None:
            channel.task = self.spawn(self._guard(channel, runner(channel, req.data)))

    async def _guard(self, channel, coro):
        try:
            await coro
        except asyncio.CancelledError:
            raise

    async def _app_wait(self, channel, data):
        try:
            seconds = float(data)
        except ValueError:
            seconds = 0.0
        await asyncio.sleep(seconds)
        self._dialplan_ends(channel)

    def _dialplan_ends(self, channel):
        """The application returned and the dialplan has nothing more: Asterisk 22 hangs a channel
        outside a bridge up with Cause 0 (orig-answered-pjsip-direct-rings-first), 20 with 16."""
        local = channel.name.startswith("Local/")
        self.hangup(channel, None if local or channel.bridge else self.flavour.unbridged_hangup_cause)

    def has_sound(self, name):
        return name not in self.missing_sounds and not LAB_MISSING_SOUND.search(name)

    def sound_seconds(self, name):
        recorded = self.recording_seconds(name)  # a call this PBX recorded plays as long as it lasts
        if recorded is not None:
            return recorded
        return SOUND_SECONDS.get(name.rsplit("/", 1)[-1], self.playback_seconds)

    async def _app_playback(self, channel, data):
        files = [name for name in data.split(",")[0].split("&") if name]
        if files and all(self.has_sound(name) for name in files):
            await asyncio.sleep(sum(self.sound_seconds(name) for name in files))
        self._dialplan_ends(channel)

    async def _app_dial(self, channel, data):
        """Dial(Local/<num>@from-internal) from an answered phone: the trainee's customer call."""
        target = data.split(",")[0]
        tech, _, resource = target.partition("/")
        if tech != "Local":
            peer = self.new_channel(self.channel_name(target), device=target)
            dial_string = resource
            far = None
        else:
            exten, _, context = resource.partition("@")
            peer, far = self.new_local_pair(exten, context or "default", linkedid=channel.linkedid)
            dial_string = resource
            # the dialled `;1` carries the caller's name and, as connected line, its number; the
            # `;2` running the dialplan carries the caller id (asterisk20-whisper-no-beep)
            peer.exten = ""
            peer.caller_name = channel.caller_name
            peer.connected_num, peer.connected_name = channel.caller_num, channel.caller_name
            self.emit(*calls.newcallerid(peer))
            self.emit(*calls.channel_event("NewConnectedLine", peer))
            far.caller_num, far.caller_name = channel.caller_num, channel.caller_name
            far.connected_name = channel.caller_name
            self.emit(*calls.newcallerid(far))
            self.emit(*calls.channel_event("NewConnectedLine", far))
            self.emit(*calls.local_bridge(peer, far))
        self.emit(*calls.dial_event("DialBegin", channel, peer, ("DialString", dial_string)))
        if far is not None:
            far.priority = 2
            self.set_state(far, 6)
        self.set_state(peer, 6)
        self.emit(*calls.dial_event("DialEnd", channel, peer, ("DialStatus", "ANSWER")))
        peer.application, peer.app_data = "AppDial", "(Outgoing Line)"
        if far is not None:
            far.application, far.app_data = "Wait", "3600"  # the lab's from-internal answers and waits
        self.join_bridge([peer, channel])

    def join_bridge(self, channels):
        bridge = Bridge(self.ids.bridge_id())
        self.emit(*calls.bridge_event("BridgeCreate", bridge))
        for channel in channels:
            self.enter_bridge(bridge, channel)
        return bridge

    def enter_bridge(self, bridge, channel):
        bridge.channels.append(channel)
        channel.bridge = bridge
        self.emit(*calls.bridge_event("BridgeEnter", bridge, channel))

    # ChanSpy ----------------------------------------------------------------------------------

    def _spy_candidates(self, spy, spec, uniqueid_mode):
        skip = {spy, spy.local_twin}
        found = [
            c for c in self.channels.values()
            if c not in skip and c.alive and c.state == 6 and calls.chanspy_matches(c, spec, uniqueid_mode)
        ]
        # Asterisk walks its channel hash in no documented order; the captures show the exact
        # extension (`Local/105@`) taken before a longer one (`Local/1050@`), so that goes first.
        found.sort(key=lambda c: c.name[len(spec):len(spec) + 1].isdigit())
        return found

    async def _app_chanspy(self, spy, data):
        spec, _, option_text = data.partition(",")
        options = calls.parse_chanspy_options(option_text)
        uniqueid_mode = "u" in options
        self.spy_modes[spy.name] = calls.spy_mode(options)
        spy.variables["__chanspy_options"] = options
        done_with = set()
        while spy.alive:
            targets = [c for c in self._spy_candidates(spy, spec, uniqueid_mode) if c not in done_with]
            if not targets:
                if "E" in options and done_with:
                    break
                await asyncio.sleep(self.spy_poll_seconds)
                continue
            target = targets[0]
            if "q" not in options and "beep" in self.missing_sounds:
                # ChanSpy beeps before it attaches; without the file it gives up: the spy leg hangs
                # up at once, with no ChanSpyStart (asterisk20-whisper-no-beep).
                break
            ended = asyncio.get_running_loop().create_future()
            spy.spying = target
            spy.variables["__spy_ended"] = ended
            target.spies.append(spy)
            self.emit(*calls.chanspy_event("ChanSpyStart", spy, target))
            await ended
            done_with.add(target)
            if "E" in options or "__hangup_requested" in spy.variables:
                break
        self.hangup(spy, spy.variables.get("__hangup_requested"))

    def _spyee_gone(self, spy, target):
        """The spied-on channel hung up: ChanSpyStop, then the spy moves on (or ends with E)."""
        if spy.spying is target:
            self.emit(*calls.chanspy_event("ChanSpyStop", spy, target))
            spy.spying = None
            ended = spy.variables.get("__spy_ended")
            if ended is not None and not ended.done():
                ended.set_result(True)
        if spy in target.spies:
            target.spies.remove(spy)

    def _end_spying(self, spy):
        target = spy.spying
        if target is not None:
            self.emit(*calls.chanspy_event("ChanSpyStop", spy, target))
            spy.spying = None
            if spy in target.spies:
                target.spies.remove(spy)

    def receive_dtmf(self, channel, digit):
        """A digit queued by PlayDTMF with Receive: only a `DTMFEnd` of 0 ms reaches AMI; ChanSpy
        with `d` switches spy/whisper/barge on 4/5/6 (asterisk22-pjsip-chanspy-switch-dtmf-playdtmf)."""
        self.emit(*calls.channel_event(
            "DTMFEnd", channel, ("Digit", digit), ("DurationMs", "0"), ("Direction", "Received"), klass="dtmf"))
        options = channel.variables.get("__chanspy_options") or {}
        if "d" in options and digit in SPY_DTMF:
            self.spy_modes[channel.name] = SPY_DTMF[digit]
