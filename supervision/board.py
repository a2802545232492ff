"""The live call board: AMI events in, channels and small diffs out. Pure: no I/O, no clock
except the injected `now`.

One dict per live channel, keyed by channel name (see "The board" in docs/architecture.md for the
fields). `apply(event)` and `rebuild(CoreShowChannel items)` both return diffs,
`{"op": "upsert", "channel": {...}}` or `{"op": "remove", "name": ..., "device": ...}`, so that
`apply_diffs(old snapshot, diffs) == new snapshot` (the browser mirrors `apply_diffs`).

Decisions (the captures show Asterisk 20 sends no timestamp on Newstate):
- `created_at` is the epoch part of the Uniqueid (`1795687491.12` -> 1795687491.0), so events and
  a rebuild agree on it to the second.
- `answered_at` is `now()` when the board sees the channel go Up. A rebuild cannot know the answer
  time (CoreShowChannel's `Duration` counts from creation), so it keeps what the board already
  knew for that channel, else uses `created_at` for an Up channel: the call then shows the same
  length Asterisk's own `core show channels` does.
- A channel event (Newstate, NewCallerid, NewConnectedLine, Newexten, BridgeEnter) for a channel
  never seen creates it from the snapshot fields every such event carries: after a missed
  Newchannel the board heals instead of dropping the call. BridgeLeave, ChanSpy*, Hangup and
  OriginateResponse never create a channel (a BridgeLeave arrives after its channel's Hangup).
- The application of an originated channel is not in any Newexten: it comes from the
  `OriginateResponse` (`Application`, `Data`), so the bridge must pass those events to `apply`.
  `ApplicationData` is kept outside the channel dict; it gives a ChanSpy channel's `spy_mode`
  (option B: barge, w/W: whisper, else listen) and, in a rebuild, its target.
- Diffs, snapshots and lookups hand out copies: nothing the board does later changes what was
  already sent. Diffs are shallow copies (the board replaces its `peers`/`spied_by` lists, never
  mutates them): treat them as read-only. Snapshots and lookups copy the lists too.
- A person's phone on a real PBX is more than one channel (docs/architecture.md, "A person's phone
  on the board"): on the PJSIP route the Originate's `Local/104@ctx-X;1` runs the application, its
  twin `;2` dials the phone, and the phone's own leg `PJSIP/104-...` is bridged with `;2`. Two fields
  are derived from the others, on every change, so that nobody has to walk the board to know them:
  `leg` says that a channel is not a conversation but a leg of a ChanSpy, PickupChan or Playback
  (`{"role", "of": the channel running it, "target": whom it spies on, "mode"}`), on the channel that
  runs it, its Local twin and the phone leg bridged with that twin; `watchers` on a spied channel
  names the phones (not the Local legs) that spy on it and in which mode. They are a pure function of
  the other fields of the board (tests/test_board.py checks it after every event).
- A click-to-call is an Originate to `Context`/`Exten`: Asterisk never puts the dialled number in
  the connected line (that stays the caller's own phone), only in `Exten` (capture
  `asterisk20-click-to-call-connectedline`). The board keeps it as `dialled`, from the
  `OriginateResponse`, on the channel it names and, on the PJSIP route, on the phone leg that
  channel's Local twin dialled (the `;1` is optimised away while the phone leg goes on).
- Phones, beside the channels (`phones()`, diffs `{"op": "phone", "device", "phone"}`): what the PBX
  itself said about each device (`DeviceStateChange`, `PeerStatus`, `ContactStatus`, the
  `DeviceStateList` of each login: `rebuild_phones`) and when its last channel ended
  (`idle_since`, the board's clock). `presence` is `offline` only on the PBX's word (UNAVAILABLE,
  Unreachable, Unregistered), `online` only when the PBX checks the phone (qualify: Reachable,
  Registered), else `unknown`: chan_sip without qualify reports NOT_INUSE for a phone that is gone
  (`asterisk20-device-and-peer-state`). These handlers are apart from the channel events'.
- Every change to a channel yields an upsert diff with a fresh copy, so the board keeps the last
  copy it published per channel (`published()`): a snapshot for the channel layer is then a list
  of read-only dicts, no copying, and each one's JSON text is built once and kept until the
  channel changes again (a 5,000-call snapshot costs joins, not a 2 MB encode).
"""

import re
import time

from supervision import jsontext

# ast_state names (include/asterisk/channelstate.h), lower case.
STATES = {
    "0": "down",
    "1": "reserved",
    "2": "offhook",
    "3": "dialing",
    "4": "ring",
    "5": "ringing",
    "6": "up",
    "7": "busy",
    "8": "dialing_offhook",
    "9": "prering",
}
# live_channel(): which state matters most to a supervisor looking for a call.
STATE_RANK = {"up": 3, "ringing": 2, "ring": 2, "dialing": 1, "dialing_offhook": 1, "prering": 1}
UNKNOWN = "<unknown>"
# The caller/connected fields every channel event carries: AMI key -> channel field.
_CALLER_FIELDS = (
    ("CallerIDNum", "caller_num"),
    ("CallerIDName", "caller_name"),
    ("ConnectedLineNum", "connected_num"),
    ("ConnectedLineName", "connected_name"),
)
_OPTION_ARGUMENT = re.compile(r"\([^)]*\)")
# Applications whose channel is not a conversation: nobody may be spied on or picked up through it.
LEG_ROLES = {"chanspy": "spy", "pickupchan": "pickup", "playback": "playback"}
# ChanSpy's `d` option: DTMF 4/5/6 received on the spy leg switch spy/whisper/barge (app_chanspy.c).
SPY_DTMF_MODES = {"4": "listen", "5": "whisper", "6": "barge"}


# PeerStatus / ContactStatus words -> the phone's `reach` (lower case); others are ignored.
PEER_REACH = {
    "reachable": "reachable", "lagged": "reachable", "registered": "registered",
    "unreachable": "unreachable", "unregistered": "unregistered", "rejected": "unregistered",
    "created": "registered", "removed": "unregistered",
}
OFFLINE_REACH = {"unreachable", "unregistered"}
ONLINE_REACH = {"reachable", "registered"}


def presence_of(state, reach):
    """What the PBX said about a phone, in one word: `offline`, `online` (only when the PBX checks
    it: qualify), else `unknown` (NOT_INUSE alone proves nothing without qualify)."""
    if reach in OFFLINE_REACH or state in ("unavailable", "invalid"):
        return "offline"
    if reach in ONLINE_REACH:
        return "online"
    return "unknown"


def _is_phone(device):
    return "/" in device and not device.startswith("Local/")


def device_of(name):
    """`SIP/105-0000000a` -> `SIP/105`; `Local/105@phones-00000002;1` -> `Local/105@phones`."""
    head, sep, _tail = name.rpartition("-")
    return head if sep else name


def created_at_of(uniqueid):
    """Epoch seconds from a Uniqueid (`[systemname-]1795687491.12`), None if it has none."""
    try:
        return float(uniqueid.partition(".")[0])
    except ValueError:
        pass  # a `systemname-` prefix (asterisk.conf) or no uniqueid at all
    try:
        return float(uniqueid.rpartition(".")[0].rpartition("-")[2])
    except ValueError:
        return None


def local_twin(name):
    """`Local/104@ctx-0000001b;1` <-> `...;2`; None for a channel that is not half of a Local pair."""
    if name.startswith("Local/") and name[-2:] in (";1", ";2"):
        return name[:-1] + ("2" if name[-1] == "1" else "1")
    return None


_ROLE_OF = {}  # application name as the PBX spells it -> its leg role or None (memo of role_of)


def role_of(application):
    try:
        return _ROLE_OF[application]
    except KeyError:
        pass
    role = LEG_ROLES.get((application or "").lower())
    if len(_ROLE_OF) < 1024:  # the dialplan's applications: a few dozen names; bounded all the same
        _ROLE_OF[application] = role
    return role


def chanspy_arguments(data):
    """`SIP/105,qBx(#)` -> (`SIP/105`, `qBx`): the target and the option letters."""
    target, _sep, options = (data or "").partition(",")
    return target.strip(), _OPTION_ARGUMENT.sub("", options)


def spy_mode_of(application, data):
    if not application or application.lower() != "chanspy":
        return None
    _target, options = chanspy_arguments(data)
    if "B" in options:
        return "barge"
    if "w" in options or "W" in options:
        return "whisper"
    return "listen"


def apply_diffs(channels, diffs):
    """The client side of the protocol: a snapshot list plus diffs gives the new snapshot list."""
    by_name = {channel["name"]: channel for channel in channels}
    for diff in diffs:
        if diff["op"] == "upsert":
            by_name[diff["channel"]["name"]] = diff["channel"]
        elif diff["op"] == "remove":
            by_name.pop(diff["name"], None)
    return list(by_name.values())


def _clean(value):
    return "" if value is None or value == UNKNOWN else value


def _copy(channel):
    copy = dict(channel)
    copy["peers"] = list(copy["peers"])
    copy["spied_by"] = list(copy["spied_by"])
    copy["watchers"] = [dict(w) for w in copy["watchers"]]
    if copy["leg"] is not None:
        copy["leg"] = dict(copy["leg"])
    return copy


def _upsert(channel):
    # The hot path: a shallow copy. The board never mutates a list it handed out (it replaces
    # peers/spied_by), and receivers treat diffs as read-only, so the lists can be shared.
    return {"op": "upsert", "channel": dict(channel)}


def _new_channel(name, get, state):
    """A channel as first seen, from the snapshot fields (`get`) of an event or CoreShowChannel."""
    uniqueid = get("Uniqueid") or ""
    return {
        "name": name,
        "uniqueid": uniqueid,
        "linkedid": get("Linkedid") or uniqueid,
        "device": device_of(name),
        "state": state,
        "caller_num": _clean(get("CallerIDNum")),
        "caller_name": _clean(get("CallerIDName")),
        "connected_num": _clean(get("ConnectedLineNum")),
        "connected_name": _clean(get("ConnectedLineName")),
        "created_at": created_at_of(uniqueid),
        "answered_at": None,
        "bridge_id": None,
        "peers": [],
        "application": "",
        "spied_by": [],
        "spying_on": None,
        "spy_mode": None,
        "leg": None,
        "watchers": [],
        "dialled": None,
    }


class Board:
    def __init__(self, *, now=time.time):
        self._now = now
        self._channels = {}  # name -> channel dict; only copies leave the board
        self._bridges = {}  # bridge id -> set of member channel names
        self._app_data = {}  # name -> application data (ChanSpy target and options)
        self._picked = set()  # channels a Pickup event named as the picker: conversations now
        self._dialers = {}  # channel name -> the channel whose Dial created it (DialBegin)
        self._dialed = {}  # the other way: channel name -> names it dialled
        self._orphans = []  # channels whose dialler just hung up: their derived fields to look at
        # Kept from the diffs (see _record): what was last published per channel, never changed
        # afterwards; its JSON text, built when first asked for; the names on each phone.
        self._published = {}  # name -> channel dict of its last upsert diff
        self._json = {}  # name -> jsontext.dumps(self._published[name])
        self._by_device = {}  # device -> set of channel names
        self._phones = {}  # device -> {"device", "state", "reach", "presence", "idle_since"}, published as is
        self.seq = 0
        # Dispatch on the event name: an event the board does not use costs one dict lookup.
        self._handlers = {
            "Newchannel": self._on_channel,
            "Newstate": self._on_channel,
            "NewCallerid": self._on_channel,
            "NewConnectedLine": self._on_channel,
            "Newexten": self._on_newexten,
            "OriginateResponse": self._on_originate_response,
            "Rename": self._on_rename,
            "BridgeCreate": self._on_bridge_create,
            "BridgeEnter": self._on_bridge_enter,
            "BridgeLeave": self._on_bridge_leave,
            "BridgeDestroy": self._on_bridge_destroy,
            "DialBegin": self._on_dial_begin,
            "ChanSpyStart": self._on_chanspy_start,
            "ChanSpyStop": self._on_chanspy_stop,
            "Pickup": self._on_pickup,
            "DTMFEnd": self._on_dtmf_end,
            "Hangup": self._on_hangup,
            # Phones, not channels: apart from the channel events' path.
            "DeviceStateChange": self._on_device_state,
            "PeerStatus": self._on_peer_status,
            "ContactStatus": self._on_contact_status,
        }

    # -- reading ---------------------------------------------------------------------------

    def snapshot(self):
        return [_copy(channel) for channel in self._channels.values()]

    def channel(self, name):
        channel = self._channels.get(name)
        return _copy(channel) if channel is not None else None

    def published(self):
        """(channels, texts): every channel as last published in a diff, and its JSON text, in the
        same order. The dicts are shared and read-only: neither the board nor anyone else changes
        them (the board publishes a new copy on every change), so they can be handed to the
        channel layer as they are."""
        published, encoded = self._published, self._json
        texts = []
        for name, channel in published.items():
            text = encoded.get(name)
            if text is None:
                text = encoded[name] = jsontext.dumps(channel)
            texts.append(text)
        return list(published.values()), texts

    def phones(self):
        """Every phone the board heard of, as last published (shared, read-only dicts)."""
        return list(self._phones.values())

    def _names_of(self, device):
        return [name for name in self._by_device.get(device, ()) if name in self._channels]

    def channels_of(self, device):
        """That phone's channels, oldest first; reads that phone's only (a pickup press on a board
        of 10,000 channels must not walk them all)."""
        channels = [self._channels[name] for name in self._names_of(device)]
        channels.sort(key=lambda channel: (channel["created_at"] or 0.0, _sequence(channel["uniqueid"])))
        return [_copy(channel) for channel in channels]

    def conversation_of(self, device):
        """The call a press on this phone may reach: like `live_channel`, among that phone's
        conversations only. A leg of a ChanSpy, PickupChan or Playback (`leg`), or a channel that
        is itself spying, is never one: a listen there would hear whatever that leg hears."""
        best, best_key = None, None
        for name in self._names_of(device):
            channel = self._channels[name]
            if channel["leg"] is not None or channel["spying_on"] is not None:
                continue
            key = (STATE_RANK.get(channel["state"], 0), channel["created_at"] or 0.0, -_sequence(channel["uniqueid"]))
            if best_key is None or key > best_key:
                best, best_key = channel, key
        return _copy(best) if best is not None else None

    def owner_device(self, name):
        """The phone a channel belongs to: its own device, except for the `;1` leg of a Local pair
        whose `;2` is bridged with a phone's leg (the PJSIP route): that phone's device."""
        channel = self._channels.get(name)
        return self._owner_device(channel) if channel is not None else device_of(name)

    def live_channel(self, device):
        """The channel a supervisor means by "this phone's call": Up before ringing, then the
        newest call; within the same second the earlier channel (of a Local pair, the `;1` leg
        that runs the originated application). Looks at that phone's channels only (a press on a
        board of 10,000 channels must not walk them all)."""
        best, best_key = None, None
        for name in self._names_of(device):
            channel = self._channels[name]
            key = (STATE_RANK.get(channel["state"], 0), channel["created_at"] or 0.0, -_sequence(channel["uniqueid"]))
            if best_key is None or key > best_key:
                best, best_key = channel, key
        return _copy(best) if best is not None else None

    # -- events ----------------------------------------------------------------------------

    def apply(self, msg):
        handler = self._handlers.get(msg.event)
        if handler is None:
            return []
        diffs = handler(msg)
        if diffs:
            diffs = self._derive(diffs)
            self.seq += 1
            self._record(diffs)
        return diffs

    # -- derived fields: `leg` and `watchers` ------------------------------------------------

    def _derive(self, diffs):
        """Bring `leg` and `watchers` up to date around the channels these diffs touch; a channel
        whose derived fields changed gets a fresh upsert (in place of its own, if it had one)."""
        seeds = []
        published = self._published
        for diff in diffs:
            if diff["op"] == "upsert":
                channel = diff["channel"]
                # Only a change of what the derived fields are made of can change them: bridge
                # peers, spies, the spy target or mode, the application's role. Most changes (state,
                # caller id, a dialplan step) are none of these and cost these few comparisons.
                # (The board replaces the lists it changes, so `is` tells a changed list.)
                old = published.get(channel["name"])
                if old is None:
                    if (channel["peers"] or channel["spied_by"] or channel["spying_on"] is not None
                            or role_of(channel["application"]) is not None):
                        seeds.append(channel["name"])
                elif (old["peers"] is not channel["peers"] or old["spied_by"] is not channel["spied_by"]
                        or old["spying_on"] != channel["spying_on"] or old["spy_mode"] != channel["spy_mode"]
                        or (old["application"] != channel["application"]
                            and role_of(old["application"]) != role_of(channel["application"]))):
                    seeds.append(channel["name"])
            elif diff["op"] == "remove":
                twin = local_twin(diff["name"])
                if twin is not None:
                    seeds.append(twin)
        if self._orphans:
            seeds.extend(self._orphans)
            self._orphans = []
        if not seeds:
            return diffs
        changed = self._refresh(self._around(seeds))
        if not changed:
            return diffs
        out = []
        for diff in diffs:
            if diff["op"] == "upsert" and diff["channel"]["name"] in changed:
                diff = _upsert(changed.pop(diff["channel"]["name"]))
            out.append(diff)
        out.extend(_upsert(channel) for channel in changed.values())
        return out

    def _refresh(self, names):
        changed = {}
        for name in names:
            channel = self._channels.get(name)
            if channel is None:
                continue
            leg, watchers = self._leg_of(channel), self._watchers_of(channel)
            if leg != channel["leg"] or watchers != channel["watchers"]:
                channel["leg"], channel["watchers"] = leg, watchers
                changed[name] = channel
        return changed

    def _around(self, seeds):
        """The seeds and every channel whose derived fields may depend on them: the channel a seed
        spies on (its watchers); for a Local leg, its pair (`;1` runs the application, `;2` dials
        the phone), the phone legs `;2` dialled or is bridged with, and whom `;1` spies on."""
        channels, dialed = self._channels, self._dialed
        found = set(seeds)
        for name in seeds:
            channel = channels.get(name)
            if channel is not None and channel["spying_on"] is not None:
                found.add(channel["spying_on"])
            if not name.startswith("Local/"):
                continue
            if name.endswith(";1"):
                one, two = name, name[:-1] + "2"
            elif name.endswith(";2"):
                one, two = name[:-1] + "1", name
            else:
                continue
            found.add(one)
            found.add(two)
            first, second = channels.get(one), channels.get(two)
            if first is not None and first["spying_on"] is not None:
                found.add(first["spying_on"])
            if second is not None:
                found.update(second["peers"])
            found.update(dialed.get(two, ()))
        return found

    def _leg_source(self, channel):
        """The channel running the ChanSpy / PickupChan / Playback this channel is a leg of: itself,
        its `;1` twin (it is that Local pair's `;2`), or the `;1` whose `;2` it is bridged with (it is
        the phone's own leg on the PJSIP route: dialled by that `;2`, then bridged with it). None for
        a conversation."""
        if role_of(channel["application"]) is not None:
            return channel
        channels = self._channels
        name = channel["name"]
        if name.endswith(";2") and name.startswith("Local/"):
            one = channels.get(name[:-1] + "1")
            if one is not None and role_of(one["application"]) is not None:
                return one
        for peer in (self._dialers.get(name), *channel["peers"]):
            if peer is not None and peer.endswith(";2") and peer.startswith("Local/"):
                one = channels.get(peer[:-1] + "1")
                if one is not None and one is not channel and role_of(one["application"]) is not None:
                    return one
        return None

    def _leg_of(self, channel):
        source = self._leg_source(channel)
        if source is None:
            return None
        return {"role": role_of(source["application"]), "of": source["name"],
                "target": source["spying_on"], "mode": source["spy_mode"]}

    def _owner_device(self, channel):
        name = channel["name"]
        if name.endswith(";1") and name.startswith("Local/"):
            two = name[:-1] + "2"
            if two in self._channels:
                for other in sorted(self._dialed.get(two, ())):
                    if other in self._channels and not other.startswith("Local/"):
                        return self._channels[other]["device"]
                for peer in self._channels[two]["peers"]:
                    if not peer.startswith("Local/") and peer in self._channels:
                        return self._channels[peer]["device"]
        return channel["device"]

    def _watchers_of(self, channel):
        if not channel["spied_by"]:
            return []
        watchers = []
        for name in channel["spied_by"]:
            spy = self._channels.get(name)
            if spy is not None:
                watchers.append({"device": self._owner_device(spy), "mode": spy["spy_mode"]})
        watchers.sort(key=lambda watcher: (watcher["device"], watcher["mode"] or ""))
        return watchers

    def _record(self, diffs):
        """Follow the published state and the per-phone index from the diffs themselves: every
        change comes with its diff, so these can never miss one."""
        published, encoded, by_device = self._published, self._json, self._by_device
        for diff in diffs:
            if diff["op"] == "upsert":
                channel = diff["channel"]
                name = channel["name"]
                if name in published:
                    # Already in its phone's index: a channel's device follows from its name.
                    if name in encoded:
                        del encoded[name]
                else:
                    names = by_device.get(channel["device"])
                    if names is None:
                        by_device[channel["device"]] = {name}
                    else:
                        names.add(name)
                    encoded.pop(name, None)
                published[name] = channel
            elif diff["op"] == "remove":
                name = diff["name"]
                published.pop(name, None)
                encoded.pop(name, None)
                names = by_device.get(diff["device"])
                if names is not None:
                    names.discard(name)
                    if not names:
                        del by_device[diff["device"]]

    def _update(self, msg, create):
        """Bring a channel up to date with the snapshot fields of its event.
        Returns (channel or None, changed). This runs for most events the board uses."""
        get = msg.fields.get
        name = get("Channel")
        channel = self._channels.get(name)
        state_code = get("ChannelState")
        if channel is None:
            if not create or not name:
                return None, False
            state = STATES.get(state_code, "unknown")
            channel = _new_channel(name, get, state)
            if state == "up":
                channel["answered_at"] = self._now()
            self._channels[name] = channel
            return channel, True
        changed = False
        if state_code is not None:
            state = STATES.get(state_code, "unknown")
            if state != channel["state"]:
                channel["state"] = state
                if state == "up" and channel["answered_at"] is None:
                    channel["answered_at"] = self._now()
                changed = True
        # The caller/connected fields (_CALLER_FIELDS), unrolled: this runs for most events.
        value = get("CallerIDNum")
        if value is not None and value != channel["caller_num"]:
            value = "" if value == UNKNOWN else value
            if value != channel["caller_num"]:
                channel["caller_num"] = value
                changed = True
        value = get("CallerIDName")
        if value is not None and value != channel["caller_name"]:
            value = "" if value == UNKNOWN else value
            if value != channel["caller_name"]:
                channel["caller_name"] = value
                changed = True
        value = get("ConnectedLineNum")
        if value is not None and value != channel["connected_num"]:
            value = "" if value == UNKNOWN else value
            if value != channel["connected_num"]:
                channel["connected_num"] = value
                changed = True
        value = get("ConnectedLineName")
        if value is not None and value != channel["connected_name"]:
            value = "" if value == UNKNOWN else value
            if value != channel["connected_name"]:
                channel["connected_name"] = value
                changed = True
        value = get("Linkedid")
        if value is not None and value != channel["linkedid"]:
            channel["linkedid"] = value
            changed = True
        return channel, changed

    def _on_channel(self, msg):
        channel, changed = self._update(msg, True)
        return [_upsert(channel)] if changed else []

    def _set_application(self, channel, application, data):
        name = channel["name"]
        if name in self._picked and application.lower() == "pickupchan":
            return False  # a late OriginateResponse of a picker that already took the call
        if application == channel["application"] and data == self._app_data.get(name):
            return False
        self._app_data[name] = data
        mode = spy_mode_of(application, data)
        if application == channel["application"] and mode == channel["spy_mode"]:
            return False
        channel["application"] = application
        channel["spy_mode"] = mode
        return True

    def _on_newexten(self, msg):
        # The most frequent channel event: it only moves the dialplan on, so only the
        # application is read (NewCallerid/Newstate announce the rest), unless the channel is new.
        get = msg.get  # a few fields: looked up one by one, no table built
        channel = self._channels.get(get("Channel"))
        changed = False
        if channel is None:
            channel, changed = self._update(msg, True)
            if channel is None:
                return []
        if self._set_application(channel, get("Application") or "", get("AppData") or ""):
            changed = True
        return [_upsert(channel)] if changed else []

    def _on_originate_response(self, msg):
        get = msg.get
        channel = self._channels.get(get("Channel"))
        if channel is None or get("Response") != "Success":
            return []
        application = get("Application")
        if application is None:
            return self._dialled(channel, get("Exten"))
        if self._set_application(channel, application, get("Data") or ""):
            return [_upsert(channel)]
        return []

    def _dialled(self, channel, exten):
        """A click-to-call's number (the Originate's `Exten`) on its channel and, on the PJSIP route,
        on the phone legs its Local twin dialled: the card shows whom the phone called."""
        if not exten:
            return []
        touched = [channel]
        twin = local_twin(channel["name"])
        if twin is not None:
            touched.extend(self._channels[name] for name in sorted(self._dialed.get(twin, ())) if name in self._channels)
        diffs = []
        for each in touched:
            if each["dialled"] != exten:
                each["dialled"] = exten
                diffs.append(_upsert(each))
        return diffs

    def _on_rename(self, msg):
        old_name, new_name = msg.get("Channel"), msg.get("Newname")
        channel = self._channels.get(old_name)
        if channel is None or not new_name or new_name == old_name or new_name in self._channels:
            return []
        del self._channels[old_name]
        channel = dict(channel, name=new_name, device=device_of(new_name))
        self._channels[new_name] = channel
        if old_name in self._app_data:
            self._app_data[new_name] = self._app_data.pop(old_name)
        touched = {}
        members = self._bridges.get(channel["bridge_id"])
        if members is not None:
            members.discard(old_name)
            members.add(new_name)
            for member in members:
                if member != new_name:
                    other = self._channels.get(member)
                    if other is not None:
                        other["peers"] = sorted(n if n != old_name else new_name for n in other["peers"])
                        touched[member] = other
        spyee = self._channels.get(channel["spying_on"])
        if spyee is not None:
            spyee["spied_by"] = sorted(n if n != old_name else new_name for n in spyee["spied_by"])
            touched[spyee["name"]] = spyee
        for spyer_name in channel["spied_by"]:
            spyer = self._channels.get(spyer_name)
            if spyer is not None:
                spyer["spying_on"] = new_name
                touched[spyer_name] = spyer
        diffs = [{"op": "remove", "name": old_name, "device": device_of(old_name)}, _upsert(channel)]
        diffs.extend(_upsert(other) for other in touched.values())
        return diffs

    # -- bridges ---------------------------------------------------------------------------

    def _set_peers(self, members, touched):
        for member in members:
            channel = self._channels.get(member)
            if channel is None:
                continue
            peers = sorted(n for n in members if n != member)
            if peers != channel["peers"]:
                channel["peers"] = peers
                touched[member] = channel

    def _leave_bridge(self, channel, touched):
        bridge_id = channel["bridge_id"]
        members = self._bridges.get(bridge_id)
        if members is not None:
            members.discard(channel["name"])
            self._set_peers(members, touched)
        if bridge_id is not None or channel["peers"]:
            channel["bridge_id"] = None
            channel["peers"] = []
            touched[channel["name"]] = channel

    def _on_bridge_create(self, msg):
        self._bridges.setdefault(msg.get("BridgeUniqueid"), set())
        return []

    def _on_bridge_enter(self, msg):
        channel, changed = self._update(msg, True)
        bridge_id = msg.fields.get("BridgeUniqueid")
        if channel is None or not bridge_id:
            return [_upsert(channel)] if changed else []
        touched = {channel["name"]: channel} if changed else {}
        if channel["bridge_id"] != bridge_id:
            if channel["bridge_id"] is not None:
                self._leave_bridge(channel, touched)
            channel["bridge_id"] = bridge_id
            touched[channel["name"]] = channel
        members = self._bridges.setdefault(bridge_id, set())
        members.add(channel["name"])
        self._set_peers(members, touched)
        return [_upsert(c) for c in touched.values()]

    def _on_bridge_leave(self, msg):
        bridge_id = msg.fields.get("BridgeUniqueid")
        channel, changed = self._update(msg, False)
        touched = {channel["name"]: channel} if changed else {}
        if channel is not None and channel["bridge_id"] == bridge_id:
            self._leave_bridge(channel, touched)
        else:
            members = self._bridges.get(bridge_id)
            if members is not None and msg.fields.get("Channel") in members:
                members.discard(msg.fields.get("Channel"))
                self._set_peers(members, touched)
        return [_upsert(c) for c in touched.values()]

    def _on_bridge_destroy(self, msg):
        touched = {}
        for member in self._bridges.pop(msg.get("BridgeUniqueid"), ()):
            channel = self._channels.get(member)
            if channel is not None and (channel["bridge_id"] is not None or channel["peers"]):
                channel["bridge_id"] = None
                channel["peers"] = []
                touched[member] = channel
        return [_upsert(c) for c in touched.values()]

    # -- dialling ---------------------------------------------------------------------------

    def _on_dial_begin(self, msg):
        """Remember who dialled whom: the phone leg a Local `;2` dials belongs to that pair's
        application before the two are bridged. An Originate's own dial has no calling channel."""
        get = msg.get
        caller, dest = get("Channel"), get("DestChannel")
        # Only a Local `;2` dialling a phone makes that phone's leg part of an application's legs.
        if not caller or not caller.endswith(";2") or dest not in self._channels or self._dialers.get(dest) == caller:
            return []
        self._dialers[dest] = caller
        self._dialed.setdefault(caller, set()).add(dest)
        changed = self._refresh(self._around([dest, caller]))
        one = self._channels.get(caller[:-1] + "1")
        if one is not None and one["dialled"] is not None and self._channels[dest]["dialled"] != one["dialled"]:
            self._channels[dest]["dialled"] = one["dialled"]
            changed[dest] = self._channels[dest]
        return [_upsert(channel) for channel in changed.values()]

    # -- spying ----------------------------------------------------------------------------

    def _detach_spy(self, spyer, touched):
        spyee = self._channels.get(spyer["spying_on"])
        if spyee is not None and spyer["name"] in spyee["spied_by"]:
            spyee["spied_by"] = [n for n in spyee["spied_by"] if n != spyer["name"]]
            touched[spyee["name"]] = spyee
        if spyer["spying_on"] is not None:
            spyer["spying_on"] = None
            touched[spyer["name"]] = spyer

    def _on_chanspy_start(self, msg):
        spyer = self._channels.get(msg.get("SpyerChannel"))
        spyee = self._channels.get(msg.get("SpyeeChannel"))
        if spyer is None or spyee is None or spyer is spyee:
            return []
        touched = {}
        if spyer["spying_on"] != spyee["name"]:
            # ChanSpy with a prefix moves on by itself when its call ends: one spyee at a time.
            self._detach_spy(spyer, touched)
            spyer["spying_on"] = spyee["name"]
            touched[spyer["name"]] = spyer
        if spyer["name"] not in spyee["spied_by"]:
            spyee["spied_by"] = sorted(spyee["spied_by"] + [spyer["name"]])
            touched[spyee["name"]] = spyee
        return [_upsert(c) for c in touched.values()]

    def _on_chanspy_stop(self, msg):
        spyer = self._channels.get(msg.get("SpyerChannel"))
        if spyer is None:
            return []
        spyee_name = msg.get("SpyeeChannel")
        if spyee_name is not None and spyer["spying_on"] not in (spyee_name, None):
            return []  # a stale stop for a spyee it already left
        touched = {}
        self._detach_spy(spyer, touched)
        return [_upsert(c) for c in touched.values()]

    def _on_dtmf_end(self, msg):
        """ChanSpy with option `d` switches mode on DTMF 4/5/6 received by the spy leg (the
        product's keypad switch presses them with PlayDTMF). Needs the AMI user's `dtmf` class."""
        get = msg.get
        channel = self._channels.get(get("Channel"))
        mode = SPY_DTMF_MODES.get(get("Digit") or "")
        if channel is None or mode is None or channel["spy_mode"] is None or get("Direction") != "Received":
            return []
        _target, options = chanspy_arguments(self._app_data.get(channel["name"]))
        if "d" not in options or channel["spy_mode"] == mode:
            return []
        channel["spy_mode"] = mode
        return [_upsert(channel)]

    # -- pickup ----------------------------------------------------------------------------

    def _on_pickup(self, msg):
        """The picker (`Channel`) took the ringing call: from now on it carries a conversation."""
        channel = self._channels.get(msg.get("Channel"))
        if channel is None:
            return []
        self._picked.add(channel["name"])
        if channel["application"].lower() != "pickupchan":
            return []
        channel["application"] = ""
        self._app_data.pop(channel["name"], None)
        return [_upsert(channel)]

    # -- hangup ----------------------------------------------------------------------------

    def _on_hangup(self, msg):
        name = msg.get("Channel")
        channel = self._channels.pop(name, None)
        if channel is None:
            return []
        self._app_data.pop(name, None)
        self._picked.discard(name)
        dialer = self._dialers.pop(name, None)
        if dialer is not None:
            self._dialed.get(dialer, set()).discard(name)
        touched = {}
        for dest in self._dialed.pop(name, ()):
            self._dialers.pop(dest, None)
            self._orphans.append(dest)  # its derived fields may have hung on this dialler
        members = self._bridges.get(channel["bridge_id"])
        if members is not None:
            members.discard(name)
            self._set_peers(members, touched)
        spyee = self._channels.get(channel["spying_on"])
        if spyee is not None and name in spyee["spied_by"]:
            spyee["spied_by"] = [n for n in spyee["spied_by"] if n != name]
            touched[spyee["name"]] = spyee
        for spyer_name in channel["spied_by"]:
            spyer = self._channels.get(spyer_name)
            if spyer is not None and spyer["spying_on"] == name:
                spyer["spying_on"] = None
                touched[spyer_name] = spyer
        diffs = [_upsert(c) for c in touched.values()]
        device = channel["device"]
        diffs.append({"op": "remove", "name": name, "device": device})
        names = self._by_device.get(device)
        if _is_phone(device) and (not names or (len(names) == 1 and name in names)):
            diffs.append(self._set_phone(device, idle_since=self._now()))  # its last channel ended
        return diffs

    # -- phones ----------------------------------------------------------------------------

    def _set_phone(self, device, **fields):
        """A new published record of the phone with `fields` changed, and its diff."""
        old = self._phones.get(device)
        phone = dict(old) if old is not None else {
            "device": device, "state": None, "reach": None, "presence": "unknown", "idle_since": None}
        phone.update(fields)
        phone["presence"] = presence_of(phone["state"], phone["reach"])
        self._phones[device] = phone
        return {"op": "phone", "device": device, "phone": phone}

    def _phone_diffs(self, device, **fields):
        if not device or not _is_phone(device):
            return []
        old = self._phones.get(device)
        if old is None and all(value is None for value in fields.values()):
            return []  # nothing known about a phone never heard of
        if old is not None and all(old[key] == value for key, value in fields.items()):
            return []
        return [self._set_phone(device, **fields)]

    def _on_device_state(self, msg):
        get = msg.get
        device = get("Device")
        if not device or not _is_phone(device):
            return []  # a Local channel's device, a queue, a custom state...: not a phone
        state = (get("State") or "").lower() or None
        old = self._phones.get(device)
        if old is not None and old["state"] == state:
            return []  # what the board already says
        return self._phone_diffs(device, state=state)

    def _on_peer_status(self, msg):
        get = msg.get
        reach = PEER_REACH.get((get("PeerStatus") or "").lower())
        return self._phone_diffs(get("Peer"), reach=reach) if reach else []

    def _on_contact_status(self, msg):
        """PJSIP's qualify of one contact; the phone is `PJSIP/<EndpointName>`."""
        get = msg.get
        reach = PEER_REACH.get((get("ContactStatus") or "").lower())
        endpoint = get("EndpointName") or get("AOR")
        return self._phone_diffs("PJSIP/" + endpoint, reach=reach) if reach and endpoint else []

    def rebuild_phones(self, items):
        """After a login: the device states of a `DeviceStateList` (its `DeviceStateChange` items),
        or None when the PBX would not list them. What qualify said before is forgotten (events may
        have been missed meanwhile): `reach` comes back with the next PeerStatus/ContactStatus."""
        states = {}
        for item in items or ():
            device = item.get("Device")
            if device and _is_phone(device):
                states[device] = (item.get("State") or "").lower() or None
        diffs = []
        for device in sorted(set(self._phones) | set(states)):
            diffs.extend(self._phone_diffs(device, state=states.get(device), reach=None))
        if diffs:
            self.seq += 1
        return diffs

    # -- rebuild ---------------------------------------------------------------------------

    def rebuild(self, items):
        """Diffs that turn the board into exactly the channels of a CoreShowChannels list."""
        old = self._channels
        channels, app_data, bridges = {}, {}, {}
        for item in items:
            get = getattr(item, "fields", item).get  # a Message's table: a dozen fields are read
            name = get("Channel")
            if not name:
                continue
            state = STATES.get(get("ChannelState"), "unknown")
            channel = _new_channel(name, get, state)
            previous = old.get(name)
            if previous is not None and previous["uniqueid"] == channel["uniqueid"]:
                channel["dialled"] = previous["dialled"]
            if previous is not None and previous["uniqueid"] == channel["uniqueid"] and previous["answered_at"] is not None:
                channel["answered_at"] = previous["answered_at"]
            elif state == "up":
                channel["answered_at"] = channel["created_at"]
            application = get("Application") or ""
            data = get("ApplicationData") or ""
            channel["application"] = application
            channel["spy_mode"] = spy_mode_of(application, data)
            if (channel["spy_mode"] is not None and previous is not None and previous["uniqueid"] == channel["uniqueid"]
                    and previous["spy_mode"] is not None and self._app_data.get(name) == data):
                # A keypad switch (option d) changed the mode; the listing still shows the options.
                channel["spy_mode"] = previous["spy_mode"]
            app_data[name] = data
            bridge_id = get("BridgeId") or None
            if bridge_id:
                channel["bridge_id"] = bridge_id
                bridges.setdefault(bridge_id, set()).add(name)
            channels[name] = channel
        for members in bridges.values():
            for member in members:
                channels[member]["peers"] = sorted(n for n in members if n != member)
        for name, channel in channels.items():
            if channel["spy_mode"] is None:
                continue
            previous = old.get(name)
            target = _spy_target(name, app_data[name], channels, previous["spying_on"] if previous else None)
            if target is not None:
                channel["spying_on"] = target
                channels[target]["spied_by"].append(name)
        for channel in channels.values():
            if len(channel["spied_by"]) > 1:
                channel["spied_by"].sort()
        self._channels, self._app_data = channels, app_data
        self._bridges = bridges
        self._picked &= set(channels)
        self._dialers = {dest: dialer for dest, dialer in self._dialers.items() if dest in channels and dialer in channels}
        self._dialed = {}
        for dest, dialer in self._dialers.items():
            self._dialed.setdefault(dialer, set()).add(dest)
        self._refresh(channels)
        diffs = [_upsert(channel) for name, channel in channels.items() if old.get(name) != channel]
        diffs.extend(
            {"op": "remove", "name": name, "device": channel["device"]}
            for name, channel in old.items()
            if name not in channels
        )
        # A phone whose channels ended while the board was not listening: when is not known.
        busy = {channel["device"] for channel in channels.values()}
        for device in sorted({channel["device"] for channel in old.values()} - busy):
            diffs.extend(self._phone_diffs(device, idle_since=None))
        if diffs:
            self.seq += 1
            self._record(diffs)
        return diffs


def _sequence(uniqueid):
    try:
        return int(uniqueid.rpartition(".")[2])
    except ValueError:
        return 0


def _spy_target(spyer, data, channels, known):
    """The channel a ChanSpy channel listens to, as Asterisk resolves its first argument: with
    option `u` a uniqueid or exact name; otherwise a plain name prefix (`SIP/105` also matches
    `SIP/1050-...`), an exact name first, else the first listed match. A target the board already
    saw in a ChanSpyStart is kept while it still matches."""
    target, options = chanspy_arguments(data)

    def matches(name):
        if name == spyer or name not in channels:
            return False
        if "u" in options:
            return name == target or channels[name]["uniqueid"] == target
        return name.startswith(target)

    if known is not None and matches(known):
        return known
    if target in channels and target != spyer:
        return target
    for name in channels:
        if matches(name):
            return name
    return None
