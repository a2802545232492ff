"""What one ended call of a roster phone becomes in the history: pure functions, no I/O.

The recorder (history/recorder.py) hands over the phone's channel as the board had it just before
its Hangup, plus what only the recorder saw: when the board first saw the channel (the board's own
clock: Asterisk's events carry no time stamps), the state it was created in, and the Hangup's
`Cause` and `Exten`.
"""

import datetime
from dataclasses import dataclass, field

from history.models import Direction

# Newchannel's ChannelState 4 (Ring): the phone went off hook and dialled, its channel hears the
# ringback. A channel the PBX rings (a Dial to the phone, an Originate) starts Down (0).
STATE_RING = "4"
NOT_A_NUMBER = {"", "s"}  # Exten of a channel before any dialplan step (asterisk20-click-to-call-connectedline)


@dataclass
class Ended:
    """One roster channel's end, as captured in the event loop."""

    channel: dict  # board channel (a copy), before the Hangup removed it
    ended_at: float  # board clock
    seen_at: float | None = None  # board clock at its Newchannel; None when the board healed or rebuilt it
    first_state: str | None = None  # Newchannel's ChannelState
    cause: int | None = None
    exten: str = ""  # the Hangup's Exten: the number a phone dialled itself (asterisk22-pjsip-call-105-answered)
    recording_file: str = ""  # relative to CALL_RECORDINGS_ROOT (history/recordings_bridge.py), or ""


@dataclass
class RosterPhone:
    extension_id: int
    person_id: int
    person_label: str
    resource: str


@dataclass
class Roster:
    phones: dict = field(default_factory=dict)  # device -> RosterPhone
    numbers: frozenset = frozenset()  # every roster extension's number (resource)

    @property
    def devices(self):
        return frozenset(self.phones)


def is_local_second_half(name):
    return name.startswith("Local/") and name.endswith(";2")


def placed_by_phone(ended):
    """Did the phone place this call? A click-to-call (`dialled`), or a channel created off hook
    (Ring); a channel the board never saw created (rebuilt after a login) is taken as placed by the
    phone when it started its call (uniqueid == linkedid)."""
    channel = ended.channel
    if channel.get("dialled"):
        return True
    if ended.first_state is not None:
        return ended.first_state == STATE_RING
    return bool(channel["uniqueid"]) and channel["uniqueid"] == channel.get("linkedid")


def other_party(ended, placed, own):
    """(number, name) of the other side as the PBX gave them."""
    channel = ended.channel
    connected_num, connected_name = channel.get("connected_num") or "", channel.get("connected_name") or ""
    caller_num, caller_name = channel.get("caller_num") or "", channel.get("caller_name") or ""
    if placed:
        # The connected line of a click-to-call is the phone's own number: the dialled one is in
        # `Exten` (board `dialled`; the Hangup's Exten for a call the phone dialled itself).
        number = channel.get("dialled") or ""
        if not number and ended.exten not in NOT_A_NUMBER and ended.exten != own:
            number = ended.exten
        if not number and connected_num and connected_num != own:
            number = connected_num
        name = connected_name if connected_num and connected_num == number else ""
        return number, name
    if connected_num and connected_num != own:
        return connected_num, connected_name
    if caller_num and caller_num != own:
        return caller_num, caller_name
    return "", connected_name or caller_name


def _when(epoch):
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc) if epoch is not None else None


def record_fields(ended, phone, roster):
    """The CallRecord fields (minus the monitoring ones) of one ended call of `phone`."""
    channel = ended.channel
    placed = placed_by_phone(ended)
    number, name = other_party(ended, placed, phone.resource)
    if number and number != phone.resource and number in roster.numbers:
        direction = Direction.INTERNAL
    else:
        direction = Direction.OUT if placed else Direction.IN
    start = ended.seen_at if ended.seen_at is not None else channel.get("created_at")
    if start is None or start > ended.ended_at:
        start = ended.ended_at
    answered = channel.get("answered_at")
    if answered is not None:
        answered = min(max(answered, start), ended.ended_at)
    ring = (answered if answered is not None else ended.ended_at) - start
    talk = ended.ended_at - answered if answered is not None else 0.0
    return {
        "uniqueid": channel["uniqueid"][:64],
        "linkedid": (channel.get("linkedid") or "")[:64],
        "channel": channel["name"][:200],
        "device": channel["device"][:128],
        "extension_id": phone.extension_id,
        "person_id": phone.person_id,
        "person_label": phone.person_label[:160],
        "direction": direction,
        "other_number": number[:80],
        "other_name": name[:160],
        "ring_started_at": _when(start),
        "answered_at": _when(answered),
        "ended_at": _when(ended.ended_at),
        "ring_seconds": round(max(ring, 0.0), 3),
        "talk_seconds": round(max(talk, 0.0), 3),
        "hangup_cause": ended.cause,
        "recording_file": ended.recording_file[:255],
    }


def join_modes(rows):
    """The modes of a call's monitoring rows, in the order they were used, each once
    (`listen,barge`). `rows`: (modes, mode) pairs oldest first."""
    seen = []
    for modes, mode in rows:
        for each in (modes or mode or "").split(","):
            if each and each not in seen:
                seen.append(each)
    return ",".join(seen)
