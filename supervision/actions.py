"""The AMI actions the product sends, built from roster objects and the board's channel names only.

Pure: no I/O, no database. Each builder returns the fields (ordered `(key, value)` pairs) that go
after `Action: <name>`; the AMI client frames them. The browser never supplies any of these values:
the spyer's phone comes from the roster (validated at the model level), the target channel is the
exact name the board learnt from Asterisk, and both are checked again here.

The spy Originate is the article's (see the Asterisk 20 captures `asterisk20-chanspy-*`):

    Channel: Local/104@phones          (the spyer's Extension.dial_string)
    Application: ChanSpy
    Data: SIP/105-0000003c,qx          (exact live channel, options for the mode)
    CallerID: Spy-105 <105>
    Async: true
    ActionID: ...
    Variable: SIPADDHEADER="Call-Info:\\;answer-after=0"   (the phone preset's auto-answer)

ChanSpy's first argument is a plain prefix (`SIP/105` also spies on `SIP/1050`); the exact channel
name `SIP/105-0000003c` can only match that channel, since Asterisk's suffix has a fixed width.

Options come from settings.SPY_OPTIONS (design card: listen `qx`, whisper `wx`, barge `qBx`).
`d` (keypad 4/5/6 switch listen/whisper/barge) is appended only when the caller says the user may
use all three modes on this target: the keypad would reach every one of them. `E` (leave when the
spied call ends) is appended to every spy: without it ChanSpy stays up in silence once the spied
call is gone, and only an AMI Hangup ends it, which a user without the `call` write class may not
send (`asterisk20-restricted-stop-*`; with `E` the leg hangs up 2 ms after `ChanSpyStop`,
`-exit-option-*`). The card's bare `x` is kept as it is: Asterisk 20 ignores it with a NOTICE
(`asterisk20-x-option-notice`), and AMI shows no difference.
"""

import re

from django.conf import settings

MODES = ("listen", "whisper", "barge")
SWITCH_DIGITS = {"listen": "4", "whisper": "5", "barge": "6"}  # ChanSpy's `d` option

# TECH/resource-suffix, Local/105@phones-00000002;1 included. Nothing that splits ChanSpy's
# or Originate's arguments (`,` `|` parentheses), no whitespace, no control characters.
CHANNEL_RE = re.compile(r"^[A-Za-z0-9_]+/[A-Za-z0-9_.+*#@;:/=~-]+$")
OPTIONS_RE = re.compile(r"^[A-Za-z0-9]*$")


class UnsafeValue(ValueError):
    """A value that must never reach AMI (it would split a header, an argument list or a frame)."""


def check_channel(name):
    """The name of a live channel as the board has it; refused if it could inject anything."""
    if not isinstance(name, str) or not CHANNEL_RE.fullmatch(name) or len(name) > 200:
        raise UnsafeValue(f"not a channel name: {name!r}")
    return name


def _check_plain(value, what):
    if not isinstance(value, str) or not value or any(c in value for c in ",|()\r\n\t ;\x00"):
        raise UnsafeValue(f"unsafe {what}: {value!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise UnsafeValue(f"unsafe {what}: {value!r}")
    return value


def channel_resource(channel_name):
    """`SIP/105-0000003c` -> `105`; `Local/105@phones-00000002;1` -> `105`."""
    device = check_channel(channel_name).rsplit("-", 1)[0]
    return device.split("/", 1)[1].split("@", 1)[0]


def spy_options(mode, *, allow_switch):
    if mode not in MODES:
        raise UnsafeValue(f"unknown spy mode: {mode!r}")
    options = settings.SPY_OPTIONS[mode]
    if not OPTIONS_RE.fullmatch(options):
        raise UnsafeValue(f"unsafe ChanSpy options: {options!r}")
    if "E" not in options:
        options += "E"  # the spy ends with the spied call, whatever the AMI user may hang up
    if allow_switch and "d" not in options:
        options += "d"
    elif not allow_switch:
        options = options.replace("d", "")  # never hand out the keypad switch by configuration
    return options


def spy_originate(spyer_extension, target_channel_name, mode, *, allow_switch, action_id=None, target_resource=None):
    """Originate fields that ring the spyer's phone (auto-answered) into ChanSpy on the target."""
    channel = check_channel(target_channel_name)
    resource = _check_plain(target_resource or channel_resource(channel), "target resource")
    head, tail = _own_phone(spyer_extension, action_id)
    return head + [
        ("Application", "ChanSpy"),
        ("Data", f"{channel},{spy_options(mode, allow_switch=allow_switch)}"),
        ("CallerID", f"Spy-{resource} <{resource}>"),
        ("Async", "true"),
    ] + tail


def hangup_action(channel):
    """Fields of `Action: Hangup` for exactly this channel (never a regex: no `/` delimiters)."""
    return [("Channel", check_channel(channel))]


def switch_dtmf(spy_channel, mode):
    """Fields of `Action: PlayDTMF` pressing ChanSpy's 4/5/6 on the spy leg (needs option `d`).

    `Receive: true` makes Asterisk treat the digit as coming from the phone, which is what ChanSpy
    listens to."""
    if mode not in SWITCH_DIGITS:
        raise UnsafeValue(f"unknown spy mode: {mode!r}")
    return [("Channel", check_channel(spy_channel)), ("Digit", SWITCH_DIGITS[mode]), ("Receive", "true")]


# --- the article's other Originate moves: pickup, click-to-call, playback ----------------------

# What a person may type into the dial box: digits, `+`, `*`, `#` (1..32). Nothing that could
# leave Exten (no letters: `_X.` patterns, `@context`), split a header or end a frame.
DIAL_NUMBER_RE = re.compile(r"[0-9+*#]{1,32}")
# A sound file as Playback wants it: absolute, no extension, plain path segments only.
SOUND_PATH_RE = re.compile(r"(/[A-Za-z0-9_-]+)+")


def check_number(number):
    """A number that cannot inject anything, and that the site lets its people dial
    (DIAL_NUMBER_PATTERN: digits only unless the site says otherwise)."""
    if not isinstance(number, str) or not DIAL_NUMBER_RE.fullmatch(number):
        raise UnsafeValue(f"not a dialable number: {number!r}")
    if not re.fullmatch(settings.DIAL_NUMBER_PATTERN, number):
        raise UnsafeValue(f"outside DIAL_NUMBER_PATTERN: {number!r}")
    return number


def check_sound_path(path, root):
    """`path` must be a plain file path strictly under `root` (no `..`, no extension, no commas)."""
    root = root.rstrip("/")
    if not isinstance(path, str) or len(path) > 200 or not SOUND_PATH_RE.fullmatch(path):
        raise UnsafeValue(f"not a sound file path: {path!r}")
    if not SOUND_PATH_RE.fullmatch(root) or not path.startswith(root + "/"):
        raise UnsafeValue(f"sound file outside {root}: {path!r}")
    return path


# A call recording's name holds the call's uniqueid (`1796097282.161`): dots allowed, never a `..` step.
RECORDING_PATH_RE = re.compile(r"(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)+")


def call_recording_originate(extension, sound_path, *, root, action_id=None):
    """A call's recording played to the user's phone (history/recordings_play.py): Playback of the
    file as the PBX names it, without extension, strictly under `root` (CALL_RECORDINGS_PBX_DIR)."""
    root = root.rstrip("/")
    if (not isinstance(sound_path, str) or len(sound_path) > 200 or not RECORDING_PATH_RE.fullmatch(sound_path)
            or "/.." in sound_path or not sound_path.startswith(root + "/")):
        raise UnsafeValue(f"not a call recording under {root}: {sound_path!r}")
    head, tail = _own_phone(extension, action_id)
    return head + [("Application", "Playback"), ("Data", sound_path), ("CallerID", "Playback"), ("Async", "true")] + tail


def _own_phone(extension, action_id):
    """The Originate fields every move shares: ring the user's own phone, then the rest (an
    ActionID only when given: the AMI client sets its own; the captures show one)."""
    return [("Channel", _check_plain(extension.dial_string, "dial string"))], (
        [("ActionID", _check_plain(action_id, "ActionID"))] if action_id is not None else []
    ) + [("Variable", value) for value in extension.autoanswer_variables()]


def pickup_originate(picker_extension, ringing_channel_name, *, action_id=None):
    """The article's pickup: the picker's phone (auto-answered) runs PickupChan on the exact
    ringing channel (`asterisk20-sip-ringing-pickupchan`: `CallerID: Pickup <104>`)."""
    head, tail = _own_phone(picker_extension, action_id)
    resource = _check_plain(picker_extension.resource, "resource")
    return head + [
        ("Application", "PickupChan"),
        ("Data", check_channel(ringing_channel_name)),
        ("CallerID", f"Pickup <{resource}>"),
        ("Async", "true"),
    ] + tail


def dial_originate(extension, number, *, context, action_id=None):
    """Click-to-call (the article's first example): the user's phone answers by itself, then the
    call goes to `number` in `context`, priority 1. The CallerID is the user's own number: it is
    what the called party sees."""
    head, tail = _own_phone(extension, action_id)
    resource = _check_plain(extension.resource, "resource")
    return head + [
        ("Context", _check_plain(context, "context")),
        ("Exten", check_number(number)),
        ("Priority", "1"),
        ("CallerID", f"{resource} <{resource}>"),
        ("Async", "true"),
    ] + tail


def playback_originate(extension, sound_path, *, root, action_id=None):
    """A training recording played to the user's phone: Playback of the file without extension."""
    head, tail = _own_phone(extension, action_id)
    return head + [
        ("Application", "Playback"),
        ("Data", check_sound_path(sound_path, root)),
        ("CallerID", "Playback"),
        ("Async", "true"),
    ] + tail
