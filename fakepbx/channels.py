"""Channels of the simulated Asterisk and the AMI events that describe them, key for key as
Asterisk 20 sends them (see ../shared/ami-captures). Pure: no sockets, no clock reads except
through the `IdSource` handed in.
"""

import time
import uuid

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
CAUSE_TEXT = {
    0: "Unknown", 3: "No route to destination", 16: "Normal Clearing", 17: "User busy", 19: "User alerting, no answer",
    21: "Call Rejected", 26: "Answered elsewhere", 32: "Network out of order", 34: "Circuit/channel congestion",
}
UNKNOWN = "<unknown>"


class IdSource:
    """Asterisk's id schemes: channel suffixes are 8-hex-digit counters, uniqueids are
    `<epoch>.<counter>` with their own counter (both keep counting across calls, and start again
    at 0 when the PBX restarts: asterisk22-pjsip-restart-core-restart-now-reconnect).

    Asterisk 20 (chan_sip) has one suffix counter for every technology; on Asterisk 22 PJSIP and
    Local channels count separately (`PJSIP/105-00000003` next to `Local/...-00000005`,
    asterisk22-pjsip-chanspy-listen): `per_technology=True`."""

    def __init__(self, clock=time.time, *, per_technology=False):
        self.clock = clock
        self.per_technology = per_technology
        self.restart()

    def restart(self):
        self.channel_seqs = {}
        self.unique_seq = 0

    @property
    def channel_seq(self):
        return sum(self.channel_seqs.values())

    def channel_suffix(self, technology=""):
        key = technology if self.per_technology else ""
        seq = self.channel_seqs.get(key, 0)
        self.channel_seqs[key] = seq + 1
        return f"{seq:08x}"

    def uniqueid(self):
        value = f"{int(self.clock())}.{self.unique_seq}"
        self.unique_seq += 1
        return value

    @staticmethod
    def bridge_id():
        return str(uuid.uuid4())


class Channel:
    __slots__ = (
        "name", "uniqueid", "linkedid", "state", "caller_num", "caller_name", "connected_num",
        "connected_name", "context", "exten", "priority", "application", "app_data", "created",
        "bridge", "device", "peer", "spies", "spying", "variables", "task", "alive", "local_twin",
        "hangup_cause", "on_hangup", "after_response",
    )

    def __init__(self, name, uniqueid, linkedid=None, *, state=0, context="default", exten="s", device=None):
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid or uniqueid
        self.state = state
        self.caller_num = UNKNOWN
        self.caller_name = UNKNOWN
        self.connected_num = UNKNOWN
        self.connected_name = UNKNOWN
        self.context = context
        self.exten = exten
        self.priority = 1
        self.application = ""
        self.app_data = ""
        self.created = time.time()
        self.bridge = None  # Bridge or None
        self.device = device  # the phone it rings (SIP/105), or None for dialplan-only legs
        self.peer = None
        self.spies = []  # ChanSpy sessions watching this channel
        self.spying = None
        self.variables = {}
        self.task = None
        self.alive = True
        self.local_twin = None  # the other half of a Local pair
        self.hangup_cause = 16
        self.on_hangup = []
        # what Asterisk does on this channel once the OriginateResponse is out (the Local route's
        # `;1` answers and bridges after it: asterisk22-pjsip-chanspy-listen)
        self.after_response = []

    def block(self, prefix=""):
        """The standard channel snapshot fields (prefix `Dest`, `Spyer`, `LocalOne`, ...)."""
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.caller_num),
            (f"{prefix}CallerIDName", self.caller_name),
            (f"{prefix}ConnectedLineNum", self.connected_num),
            (f"{prefix}ConnectedLineName", self.connected_name),
            (f"{prefix}Language", "en"),
            (f"{prefix}AccountCode", ""),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]

    def __repr__(self):
        return f"<Channel {self.name} state={self.state}>"


class Bridge:
    __slots__ = ("uniqueid", "channels")

    def __init__(self, uniqueid):
        self.uniqueid = uniqueid
        self.channels = []

    def block(self):
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", str(len(self.channels))),
            ("BridgeVideoSourceMode", "none"),
        ]


# --- event builders: each returns (event class, [(key, value), ...]) --------------------------

def event(name, klass, fields):
    return klass, [("Event", name), ("Privilege", f"{klass},all")] + list(fields)


def channel_event(name, channel, *extra, klass="call"):
    return event(name, klass, channel.block() + list(extra))


def newcallerid(channel):
    return channel_event("NewCallerid", channel, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))


def hangup_event(channel, cause):
    return channel_event("Hangup", channel, ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown")))


def dial_event(name, caller, dest, last):
    fields = caller.block() if caller is not None else []
    return event(name, "call", fields + dest.block("Dest") + [last])


def local_bridge(one, two):
    context, exten = two.context, two.exten  # where the `;2` runs
    return event(
        "LocalBridge", "call",
        one.block("LocalOne") + two.block("LocalTwo")
        + [("Context", context), ("Exten", exten), ("LocalOptimization", "Yes")],
    )


def bridge_event(name, bridge, channel=None):
    return event(name, "call", bridge.block() + (channel.block() if channel else []))


def chanspy_event(name, spyer, spyee):
    return event(name, "call", spyer.block("Spyer") + spyee.block("Spyee"))


def pickup_event(picker, target):
    return event("Pickup", "call", picker.block() + target.block("Target"))


def action_id_field(action_id):
    """The `ActionID` line of an answer, or none when the action came without one."""
    return [("ActionID", action_id)] if action_id is not None else []


def originate_response(action_id, success, channel_name, target, reason, uniqueid, caller_num, caller_name):
    """`target` is [("Application", app), ("Data", data)] or [("Context",..), ("Exten",..)]."""
    fields = action_id_field(action_id)
    fields += [("Response", "Success" if success else "Failure"), ("Channel", channel_name)]
    fields += target
    fields += [("Reason", str(reason)), ("Uniqueid", uniqueid), ("CallerIDNum", caller_num), ("CallerIDName", caller_name)]
    return event("OriginateResponse", "call", fields)


def core_show_channel(channel, action_id, now):
    fields = [("Event", "CoreShowChannel"), *action_id_field(action_id)]
    fields += channel.block()
    seconds = int(now - channel.created)
    fields += [
        ("Application", channel.application),
        ("ApplicationData", channel.app_data),
        ("Duration", f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"),
        ("BridgeId", channel.bridge.uniqueid if channel.bridge else ""),
    ]
    return fields


def status_event(channel, action_id, now):
    fields = [("Event", "Status"), ("Privilege", "Call")] + channel.block()
    fields += [
        ("Type", channel.name.split("/", 1)[0]),
        ("DNID", ""),
        ("EffectiveConnectedLineNum", channel.connected_num),
        ("EffectiveConnectedLineName", channel.connected_name),
        ("TimeToHangup", "0"),
        ("BridgeID", channel.bridge.uniqueid if channel.bridge else ""),
        ("Application", channel.application),
        ("Data", channel.app_data),
        ("Nativeformats", "(ulaw)"),
        ("Readformat", "ulaw"),
        ("Readtrans", ""),
        ("Writeformat", "ulaw"),
        ("Writetrans", ""),
        ("Callgroup", "0"),
        ("Pickupgroup", "0"),
        ("Seconds", str(int(now - channel.created))),
    ]
    return fields + action_id_field(action_id)


def list_complete(name, action_id, count, *extra):
    return [("Event", name), *action_id_field(action_id), ("EventList", "Complete"), ("ListItems", str(count)), *extra]


def parse_callerid(text):
    """`Spy-105 <105>` -> ("105", "Spy-105"); `"Name" <num>`; a bare number -> (num, ""); a bare
    word is a name, as ast_callerid_parse reads it (`CallerID: Playback`: asterisk22-pjsip-originate-playback)."""
    text = (text or "").strip()
    if "<" in text and text.endswith(">"):
        name, _, num = text[:-1].partition("<")
        return num.strip(), name.strip().strip('"')
    if text and not all(c.isdigit() or c in "+*#-() " for c in text):
        return "", text.strip('"')
    return text, ""


def chanspy_matches(target, spec, uniqueid_mode):
    """ChanSpy's choice of victims: a plain string prefix of the name, or with `u` the exact
    uniqueid or full channel name."""
    if uniqueid_mode:
        return spec in (target.uniqueid, target.name)
    return target.name.startswith(spec)


def parse_chanspy_options(text):
    """`qBx`, `qx(#)`, `wE`, `d`... -> dict of flags (arguments of x/... are kept, not interpreted)."""
    options = {}
    i = 0
    while i < len(text):
        letter = text[i]
        i += 1
        arg = None
        if i < len(text) and text[i] == "(":
            end = text.find(")", i)
            end = len(text) if end < 0 else end
            arg = text[i + 1 : end]
            i = end + 1
        options[letter] = arg if arg is not None else True
    return options


def spy_mode(options):
    if "B" in options:
        return "barge"
    if "w" in options or "W" in options:
        return "whisper"
    return "listen"
