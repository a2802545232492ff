"""The simulated PBX against the real captures, field by field, for the behaviours the product was
caught out by on a real Asterisk 20 (chan_sip) and Asterisk 22 (PJSIP).

Each test replays a capture's `.sent.txt` (or makes the same moves the capture lab made from its
CLI or its headsets) against a fresh simulator of the right flavour, then compares what the product
reads: the message kinds and the values of PRODUCT_FIELDS. Channel names, uniqueids and bridge ids
differ between runs, so both sides are renamed by order of first appearance (`PJSIP/105-#1`,
`uid#3`, `bridge#1`) before comparing. Inside one action's segment Asterisk's own order varies
between runs, so segments are compared as sorted lists, and the orders that matter are asserted
on their own.
"""

import asyncio
import re
from collections import Counter

import pytest

from fakepbx import FakePBX
from supervision.ami.protocol import encode
from tests.captures import capture_messages, sent_messages
from tests.conftest import FAKEPBX_FAST
from tests.test_fakepbx import CAPTURE_USERS, Raw, is_reply, originate_response_before_next_reply

pytestmark = pytest.mark.timeout(60)

# The events and fields the product reads (supervision/ami, board, monitoring, presses).
PRODUCT_EVENTS = {
    "Newchannel", "Newstate", "Hangup", "OriginateResponse", "ChanSpyStart", "ChanSpyStop", "Pickup",
    "BridgeEnter", "BridgeLeave", "DialEnd", "CoreShowChannel", "CoreShowChannelsComplete", "Status",
    "LocalOptimizationBegin", "LocalOptimizationEnd",
}
PRODUCT_FIELDS = (
    "Response", "Message", "Channel", "ChannelState", "Cause", "Cause-txt", "DialStatus", "DestChannel",
    "SpyerChannel", "SpyeeChannel", "TargetChannel", "Application", "Data", "ApplicationData", "Context",
    "Exten", "Reason", "Uniqueid", "Linkedid", "BridgeUniqueid", "BridgeId", "CallerIDNum", "ListItems",
    "LocalOneChannel", "LocalTwoChannel",
)
CHANNEL = re.compile(r"\b((?:PJSIP|SIP|Local)/[^\s,]+?)-([0-9a-f]{8})(;[12])?(?=$|[\s,])")
UNIQUEID = re.compile(r"\b\d{9,10}\.\d+\b")
BRIDGE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")

LAB_USERS = dict(CAPTURE_USERS)


class Renamer:
    """Replaces run-specific ids by their order of first appearance."""

    def __init__(self):
        self.suffixes = {}  # (family, suffix) -> ordinal within the family
        self.family_count = Counter()
        self.ids = {}
        self.bridges = {}

    def _channel(self, match):
        family, suffix, leg = match.group(1), match.group(2), match.group(3) or ""
        key = (family, suffix)
        if key not in self.suffixes:
            self.family_count[family] += 1
            self.suffixes[key] = self.family_count[family]
        return f"{family}-#{self.suffixes[key]}{leg}"

    def value(self, text):
        text = CHANNEL.sub(self._channel, text)
        text = UNIQUEID.sub(lambda m: f"uid#{self.ids.setdefault(m.group(0), len(self.ids) + 1)}", text)
        return BRIDGE.sub(lambda m: f"bridge#{self.bridges.setdefault(m.group(0), len(self.bridges) + 1)}", text)

    def concrete(self, family, ordinal):
        for (fam, suffix), number in self.suffixes.items():
            if fam == family and number == ordinal:
                return suffix
        return None


def product_view(messages, fields=PRODUCT_FIELDS, events=PRODUCT_EVENTS):
    """[(kind, ((field, renamed value), ...)), ...] for the messages the product reads."""
    names = Renamer()
    out = []
    for message in messages:
        if message.event is not None and message.event not in events:
            continue
        kind = message.event or f"Response: {message.response}"
        out.append((kind, tuple((key, names.value(message[key])) for key in fields if key in message)))
    return out


def product_segments(messages, **kwargs):
    out, current = [], []
    for item in product_view(messages, **kwargs):
        if item[0].startswith("Response: "):
            out.append(sorted(current))
            current = [item]
        else:
            current.append(item)
    out.append(sorted(current))
    return out


def lab_pbx(flavour, **options):
    """The capture lab's PBX: headsets 104-108 and 1050 answer at once when asked to auto-answer
    (Call-Info / AUTOANSWER), else ring first; 106 rings long; 108 answers `486 Busy`; nothing
    listens behind 998; 999 never registered."""
    pbx = FakePBX(port=0, users=LAB_USERS, flavour=flavour, **{**FAKEPBX_FAST, **options})
    tech = "PJSIP" if flavour == "asterisk22" else "SIP"
    for ext in ("104", "105", "107", "1050"):
        pbx.set_phone(f"{tech}/{ext}", "autoanswer", ring_seconds=0.05)
    pbx.set_phone(f"{tech}/106", "autoanswer", ring_seconds=30)
    pbx.set_phone(f"{tech}/108", "busy")
    pbx.set_phone(f"{tech}/998", "unreachable")
    pbx.set_phone(f"{tech}/999", "unregistered")
    return pbx


async def replay(name, flavour, *, moves=None, pbx_options=None, skip=(), pbx=None, together=()):
    """Send the capture's actions to a fresh simulator; `moves[action_id]` is a coroutine
    function `(pbx, conn)` run once that action's reply arrived (what the lab did outside AMI).
    Channel names and uniqueids in the actions are rewritten to ours (same family, same ordinal).
    Actions whose ActionID is in `skip` are neither sent nor compared (the simulator does not
    answer them). An action in `together` goes out with the next one, back to back (the reply is
    not awaited first). With `pbx` the replay runs on that (started) simulator and leaves it running.
    A move replaces the wait for the action's OriginateResponse.
    Returns (capture messages, our messages)."""
    moves = moves or {}
    _, capture = capture_messages(name)
    capture = [m for m in capture if m.action_id not in skip]
    capture_names = Renamer()
    for message in capture:
        for _, value in message.pairs:
            capture_names.value(value)
    own = pbx is None
    if own:
        pbx = lab_pbx(flavour, **(pbx_options or {}))
        await pbx.start()
    try:
        conn = await Raw.connect(pbx)
        ours = Renamer()
        pending = b""
        for action in sent_messages(name):
            if action.action_id in skip:
                continue
            for message in conn.messages:
                for _, value in message.pairs:
                    ours.value(value)
            pairs = [(key, _rewrite(value, capture_names, ours)) for key, value in action.pairs]
            if action.get("Action") == "Originate":
                pairs = [(k, str(int(v) // 20) if k == "Timeout" else v) for k, v in pairs]
            action_id = action.action_id
            pending += encode(pairs)
            if action_id in together:
                continue  # sent with the next action, in one write
            conn.send_bytes(pending)
            pending = b""
            if action.get("Action") == "Logoff":
                await conn.until_eof()
                break
            reply = await conn.wait_for(lambda m, a=action_id: is_reply(m, a))
            if action_id in moves:
                await moves[action_id](pbx, conn)
            elif action.get("Action") == "Originate" and reply.response == "Success":
                if originate_response_before_next_reply(capture, action_id):
                    await conn.event("OriginateResponse", ActionID=action_id)
            await asyncio.sleep(0.1)  # ChanSpy attaches, the call settles, as the lab's scripts paused
        return capture, conn.messages
    finally:
        if own:
            await pbx.stop()


def _rewrite(value, capture_names, ours):
    def channel(match):
        family, suffix, leg = match.group(1), match.group(2), match.group(3) or ""
        ordinal = capture_names.suffixes.get((family, suffix))
        mine = ours.concrete(family, ordinal) if ordinal else None
        return f"{family}-{mine}{leg}" if mine else match.group(0)

    def uniqueid(match):
        ordinal = capture_names.ids.get(match.group(0))
        for value, number in ours.ids.items():
            if number == ordinal:
                return value
        return match.group(0)

    return UNIQUEID.sub(uniqueid, CHANNEL.sub(channel, value))


def events_of(messages, name, **match):
    return [m for m in messages if m.event == name and all(m.get(k) == v for k, v in match.items())]


async def trainee_dials_customer(pbx, conn):
    """The lab's headset 105 dials 5551234 (the Asterisk 22 trainee call)."""
    await pbx.phone_calls("PJSIP/105", "5551234", caller_name="Dmitry Ivanov")
    await conn.event("BridgeEnter", CallerIDNum="105")


def assert_same_segments(capture, ours, **kwargs):
    expected, got = product_segments(capture, **kwargs), product_segments(ours, **kwargs)
    assert len(got) == len(expected)
    for index, (want, have) in enumerate(zip(expected, got)):
        missing = [item for item in want if item not in have]
        extra = [item for item in have if item not in want]
        assert have == want, f"segment {index}: missing {missing}, extra {extra}"


# --- Asterisk 22: the PJSIP Local route -----------------------------------------------------------

@pytest.mark.parametrize("name", ["asterisk22-pjsip-chanspy-listen", "asterisk22-pjsip-chanspy-barge",
                                  "asterisk22-pjsip-chanspy-listen-alert-info"])
async def test_spy_through_the_local_route_has_three_channels(name):
    capture, ours = await replay(name, "asterisk22", moves={"login-1": trainee_dials_customer})
    assert_same_segments(capture, ours)
    start = events_of(ours, "ChanSpyStart")[0]
    answered = next(m for m in ours if m.event == "OriginateResponse" and m.action_id.startswith("spy"))
    assert start["SpyerChannel"] == answered["Channel"] and answered["Channel"].endswith(";1")
    phone_leg = events_of(ours, "BridgeEnter", CallerIDNum="104")[0]
    two = answered["Channel"][:-1] + "2"
    assert events_of(ours, "BridgeEnter", Channel=two)[0]["BridgeUniqueid"] == phone_leg["BridgeUniqueid"]


async def test_whisper_through_the_local_route_without_a_beep_file_ends_at_once():
    # The Asterisk 22 lab had no `beep` sound either: the whisper spy (no `q`) answers, then its
    # `;1` hangs up at once with no ChanSpyStart, as in asterisk20-whisper-no-beep.
    capture, ours = await replay("asterisk22-pjsip-chanspy-whisper", "asterisk22",
                                 moves={"login-1": trainee_dials_customer}, pbx_options={"missing_sounds": {"beep"}})
    assert_same_segments(capture, ours)
    assert not events_of(ours, "ChanSpyStart")


async def test_coreshowchannels_lists_the_three_channels_of_a_spy():
    capture, ours = await replay("asterisk22-pjsip-coreshowchannels", "asterisk22",
                                 moves={"login-1": trainee_dials_customer})
    assert_same_segments(capture, ours)
    listed = {m["Channel"]: m for m in events_of(ours, "CoreShowChannel")}
    spy = next(m for m in listed.values() if m["Application"] == "ChanSpy")
    assert spy["Channel"].endswith(";1") and spy["ApplicationData"].endswith(",qx") and spy["BridgeId"] == ""
    dial = listed[spy["Channel"][:-1] + "2"]
    assert dial["Application"] == "Dial"
    assert dial["ApplicationData"] == "PJSIP/104,30,b(dashboard-autoanswer^s^1(call-info))"
    phone = next(m for m in listed.values() if m["Channel"].startswith("PJSIP/104-"))
    assert (phone["Application"], phone["BridgeId"]) == ("AppDial", dial["BridgeId"])


async def test_without_auto_answer_the_originate_response_waits_for_the_phone():
    capture, ours = await replay("asterisk22-pjsip-chanspy-listen-no-autoanswer", "asterisk22",
                                 moves={"login-1": trainee_dials_customer})
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        kinds = [(m.event, m.get("Channel", "")[:9], m.get("ChannelState")) for m in messages]
        ringing = kinds.index(("Newstate", "PJSIP/104", "5"))
        assert ringing < kinds.index(("Newstate", "PJSIP/104", "6")) < kinds.index(("OriginateResponse", "Local/104", None))


async def test_playdtmf_received_on_the_spy_leg_switches_modes():
    modes = []

    def mode_after(digit):
        async def move(pbx, conn):
            await conn.event("DTMFEnd", Digit=digit)
            spy = (await conn.event("ChanSpyStart"))["SpyerChannel"]
            modes.append(pbx.spy_mode(spy))
        return move

    capture, ours = await replay("asterisk22-pjsip-chanspy-switch-dtmf-playdtmf", "asterisk22",
                                 moves={"login-1": trainee_dials_customer, "dtmf-5": mode_after("5"),
                                        "dtmf-6": mode_after("6"), "dtmf-4": mode_after("4")})
    dtmf = {"DTMFBegin", "DTMFEnd"}  # a real PBX sends only DTMFEnd here; a DTMFBegin would show
    assert_same_segments(capture, ours, events=PRODUCT_EVENTS | dtmf,
                         fields=PRODUCT_FIELDS + ("Digit", "Direction"))
    assert modes == ["whisper", "barge", "listen"]  # option d: 5 whisper, 6 barge, 4 listen


async def test_busy_own_phone_takes_a_second_call_through_the_local_route():
    async def curator_and_trainee_calls(pbx, conn):
        await pbx.phone_calls("PJSIP/104", "200", caller_name="Anna Petrova")
        await trainee_dials_customer(pbx, conn)

    capture, ours = await replay("asterisk22-pjsip-busy-own-phone", "asterisk22",
                                 moves={"login-1": curator_and_trainee_calls}, skip=("dsl-busy",))
    assert_same_segments(capture, ours)
    listed = [m["Channel"] for m in events_of(ours, "CoreShowChannel") if m["Channel"].startswith("PJSIP/104-")]
    assert len(listed) == 2


async def test_playback_through_the_local_route_hangs_up_when_the_file_ends():
    async def until_played(pbx, conn):
        await conn.event("Hangup", Channel=(await conn.event("OriginateResponse", ActionID="play-lesson"))["Channel"])

    capture, ours = await replay("asterisk22-pjsip-originate-playback", "asterisk22", moves={"play-lesson": until_played})
    assert_same_segments(capture, ours)


async def test_channel_counters_start_again_after_a_restart():
    # The lab's Asterisk 22 had just been restarted: its first call's channels end in 00000000,
    # PJSIP and Local alike; after `core restart now` no call is left and Uptime is 0.
    _, before = capture_messages("asterisk22-pjsip-restart-core-restart-now-admin")
    first_call = [m["Channel"] for m in before if m.event == "Newchannel"][:3]
    pbx = lab_pbx("asterisk22")
    await pbx.start()
    try:
        conn = await Raw.connect(pbx)
        await conn.login("admin", "adminsecret")
        await pbx.phone_calls("PJSIP/105", "5551234")
        await pbx.phone_calls("PJSIP/105", "5551234")
        await pbx.stop()
        await pbx.start()
        capture, ours = await replay("asterisk22-pjsip-restart-core-restart-now-reconnect", "asterisk22", pbx=pbx)
        assert_same_segments(capture, ours)
        assert [m["Uptime"] for m in ours if m.event == "FullyBooted"] == ["0"]
        watcher = await Raw.connect(pbx)
        await watcher.login("admin", "adminsecret")
        await pbx.phone_calls("PJSIP/105", "5551234")
        await watcher.event("BridgeEnter", CallerIDNum="105")
        again = [m["Channel"] for m in watcher.messages if m.event == "Newchannel"]
    finally:
        await pbx.stop()
    assert again == first_call == ["PJSIP/105-00000000", "Local/5551234@customer-00000000;1",
                                   "Local/5551234@customer-00000000;2"]


async def test_a_phone_placing_a_call_looks_like_the_trainee_call():
    pbx = lab_pbx("asterisk22")
    await pbx.start()
    try:
        conn = await Raw.connect(pbx)
        await conn.login("admin", "adminsecret")
        await pbx.phone_calls("PJSIP/105", "5551234", caller_name="Dmitry Ivanov", talk_seconds=0.1)
        await conn.event("Hangup", CallerIDNum="105", Exten="5551234")
        conn.send("Logoff", {}, "logoff-1")
        ours = await conn.until_eof()
    finally:
        await pbx.stop()
    _, capture = capture_messages("asterisk22-pjsip-call-105-answered")
    assert_same_segments(capture, ours)
    view = [kind for kind, _ in product_view(ours)]
    assert view.index("BridgeEnter") < view.index("Hangup")


def until_hung_up(action_id):
    async def move(pbx, conn):
        answered = await conn.event("OriginateResponse", ActionID=action_id)
        await conn.event("Hangup", Channel=answered["Channel"])
        await asyncio.sleep(0.05)  # the rest of the call's teardown
    return move


async def lab_cleanup(pbx, conn):
    """The lab hung every channel up from the CLI between scenarios (SoftHangupRequest 32)."""
    await pbx.cli_hangup_all()


async def test_pickupchan_through_the_local_route():
    capture, ours = await replay("asterisk22-pjsip-pickupchan", "asterisk22", moves={"csc-after-pickup": lab_cleanup})
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        picker = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "pickup-106")
        assert (picker["Response"], picker["Reason"]) == ("Success", "4") and picker["Channel"].endswith(";1")
        pickup = events_of(messages, "Pickup")
        assert len(pickup) == 1 and pickup[0]["Channel"] == picker["Channel"]
        assert pickup[0]["TargetChannel"].startswith("PJSIP/106-")
        assert messages.index(picker) < messages.index(pickup[0])  # the response comes first
        rung = events_of(messages, "Hangup", Channel=pickup[0]["TargetChannel"])[0]
        assert (rung["Cause"], rung["ChannelState"]) == ("26", "5")
        assert not events_of(messages, "Rename")
        late = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "pickup-none")
        assert late["Reason"] == "4" and events_of(messages, "Hangup", Channel=late["Channel"])


async def test_click_to_call_through_the_local_route_optimises_the_local_pair_away():
    capture, ours = await replay("asterisk22-pjsip-click-to-call", "asterisk22",
                                 moves={"csc-5551234": lab_cleanup, "csc-201": lab_cleanup})
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        answered = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "dial-5551234")
        one = answered["Channel"]
        begin = events_of(messages, "LocalOptimizationBegin")[0]
        assert begin["LocalOneChannel"] == one
        gone = events_of(messages, "Hangup", Channel=one)[0]
        assert gone["Cause"] == "16" and messages.index(begin) < messages.index(gone)
        listed = [m for m in messages if m.event == "CoreShowChannel" and m.action_id == "csc-5551234"]
        phone = next(m for m in listed if m["Channel"].startswith("PJSIP/104-"))
        customer = next(m for m in listed if m["Channel"].startswith("Local/5551234@customer-") and m["Channel"].endswith(";1"))
        assert phone["BridgeId"] == customer["BridgeId"] != ""
        assert not any(m["Channel"].startswith("Local/104@") for m in listed)


async def test_originate_failures_through_pjsip():
    # the lab waited for each answered call's Wait(2) to end before the next Originate
    answered = ("orig-answered-local-autoanswer", "orig-answered-pjsip-direct-rings-first")
    capture, ours = await replay("asterisk22-pjsip-originate-failures", "asterisk22",
                                 moves={action_id: until_hung_up(action_id) for action_id in answered})

    def outcomes(messages):
        return [(m.action_id, m["Response"], m["Reason"], m["Channel"] if m["Response"] == "Failure" else "",
                 m["Uniqueid"] if m["Response"] == "Failure" else "")
                for m in messages if m.event == "OriginateResponse"]

    assert outcomes(ours) == outcomes(capture)
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        busy = [m for m in messages if m.get("Channel", "").startswith("PJSIP/108-")]
        assert [m["DialStatus"] for m in messages if m.event == "DialEnd" and m.get("DestChannel", "").startswith("PJSIP/108-")] == ["BUSY", "BUSY"]
        assert {m["Cause"] for m in busy if m.event in ("HangupRequest", "Hangup")} == {"17"}


async def test_banner_and_versions_of_asterisk_22():
    # `Command` (core show version) is not simulated: the product does not send it
    capture, ours = await replay("asterisk22-pjsip-banner-login-version", "asterisk22", skip=("cmd-version",))
    pbx = lab_pbx("asterisk22")
    await pbx.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", pbx.port)
        line = await reader.readline()
        writer.close()
    finally:
        await pbx.stop()
    banner, _ = capture_messages("asterisk22-pjsip-banner-login-version")
    assert line.decode().strip() == banner == "Asterisk Call Manager/11.0.0"
    real_settings = next(m for m in capture if "AMIversion" in m)
    settings = next(m for m in ours if "AMIversion" in m)
    assert (settings["AMIversion"], settings["AsteriskVersion"]) == (real_settings["AMIversion"], real_settings["AsteriskVersion"])
    assert [k for k, _ in settings.pairs] == [k for k, _ in real_settings.pairs]


# --- Asterisk 20 (chan_sip), and both flavours ----------------------------------------------------

TRAINEE_CALL = [("Channel", "SIP/105"), ("Application", "Dial"), ("Data", "Local/5551234@from-internal"),
                ("CallerID", "Customer <5551234>"), ("Async", "true")]


async def admin_places_the_trainee_call(pbx, conn):
    """What the lab's admin connection did beside a 1cami capture: the trainee call, until bridged."""
    admin = await Raw.connect(pbx)
    await admin.login("admin", "adminsecret")
    admin.send("Originate", TRAINEE_CALL, "trainee-105")
    await admin.event("OriginateResponse", ActionID="trainee-105")
    await conn.wait_for(lambda m: m.event == "BridgeEnter" and m["Channel"].startswith("SIP/105-"))
    admin.close()


def spied_call_ends_from_the_cli(pbx, conn):
    async def move(pbx, conn):
        start = await conn.event("ChanSpyStart")
        await pbx.cli_hangup(start["SpyeeChannel"])
        await conn.event("ChanSpyStop")
        await asyncio.sleep(0.1)  # what comes next for the spy leg, if anything
    return move(pbx, conn)


async def test_spy_with_option_e_ends_when_the_spied_call_ends():
    capture, ours = await replay("asterisk20-restricted-stop-exit-option-1cami", "asterisk20",
                                 moves={"login-1cami": admin_places_the_trainee_call,
                                        "spy-1cami": spied_call_ends_from_the_cli})
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        spy = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "spy-1cami")["Channel"]
        about_spy = [(m.event, m.get("Cause")) for m in messages
                     if spy in (m.get("Channel"), m.get("SpyerChannel")) and m.event in PRODUCT_EVENTS | {"SoftHangupRequest"}]
        assert about_spy[-2:] == [("ChanSpyStop", None), ("Hangup", "16")]
        assert ("SoftHangupRequest", "32") not in about_spy


async def test_restricted_user_cannot_hang_up_and_a_spy_without_e_stays_after_chanspystop():
    async def refused_then_spied_call_ends(pbx, conn):
        await conn.response("hangup-spy-1cami")
        await spied_call_ends_from_the_cli(pbx, conn)
        await lab_cleanup(pbx, conn)  # only this ends the spy leg

    capture, ours = await replay("asterisk20-restricted-stop-1cami", "asterisk20",
                                 moves={"login-1cami": admin_places_the_trainee_call,
                                        "spy-1cami": lambda pbx, conn: conn.event("ChanSpyStart"),
                                        "hangup-spy-1cami": refused_then_spied_call_ends})
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        refused = next(m for m in messages if is_reply(m, "hangup-spy-1cami"))
        assert [k for k, _ in refused.pairs] == ["Response", "ActionID", "Message"]
        assert (refused["Response"], refused["Message"]) == ("Error", "Permission denied")
        assert {m["Privilege"] for m in messages if m.event} == {"call,all"}
        spy = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "spy-1cami")["Channel"]
        stop = events_of(messages, "ChanSpyStop", SpyerChannel=spy)[0]
        cleanup = events_of(messages, "SoftHangupRequest", Channel=spy, Cause="32")[0]
        assert messages.index(stop) < messages.index(cleanup) < messages.index(events_of(messages, "Hangup", Channel=spy)[0])


async def test_whisper_without_the_beep_file_ends_before_it_starts():
    capture, ours = await replay("asterisk20-whisper-no-beep", "asterisk20", pbx_options={"missing_sounds": {"beep"}},
                                 moves={"trainee-105": lambda pbx, conn: conn.event("BridgeEnter", CallerIDNum="5551234")})
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        answered = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "spy-whisper-105")
        assert (answered["Response"], answered["Reason"]) == ("Success", "4")
        gone = events_of(messages, "Hangup", Channel=answered["Channel"])[0]
        assert gone["Cause"] == "16" and not events_of(messages, "ChanSpyStart") and not events_of(messages, "ChanSpyStop")


async def test_a_spy_leg_is_found_again_by_coreshowchannels_after_its_client_went_away():
    pbx = lab_pbx("asterisk20")
    await pbx.start()
    try:
        setup_capture, setup = await replay(
            "asterisk20-spy-leg-coreshowchannels-setup", "asterisk20", pbx=pbx,
            moves={"trainee-105": lambda pbx, conn: conn.event("BridgeEnter", CallerIDNum="5551234"),
                   "spy-listen-105": lambda pbx, conn: conn.event("ChanSpyStart")})
        assert_same_segments(setup_capture, setup)
        capture, ours = await replay("asterisk20-spy-leg-coreshowchannels", "asterisk20", pbx=pbx)
    finally:
        await pbx.stop()
    fields = PRODUCT_FIELDS + ("CallerIDName", "ConnectedLineNum", "ConnectedLineName")
    listed = [m for m in ours if m.event == "CoreShowChannel"]
    real = [m for m in capture if m.event == "CoreShowChannel"]
    rename_ours, rename_real = Renamer(), Renamer()
    for message in setup:
        for _, value in message.pairs:
            rename_ours.value(value)
    for message in setup_capture:
        for _, value in message.pairs:
            rename_real.value(value)

    def view(messages, names):
        return sorted(tuple((k, names.value(m[k])) for k in fields if k in m) for m in messages)

    assert view(listed, rename_ours) == view(real, rename_real), (view(listed, rename_ours), view(real, rename_real))
    spy = next(m for m in listed if m["Application"] == "ChanSpy")
    assert (spy["CallerIDNum"], spy["CallerIDName"], spy["BridgeId"]) == ("105", "Spy-105", "")
    assert spy["Linkedid"] == spy["Uniqueid"]
    assert [m.event for m in ours if m.event in ("ChanSpyStop", "Hangup")] == ["ChanSpyStop", "Hangup"]


async def test_click_to_call_keeps_the_originate_callerid_as_connected_line():
    capture, ours = await replay("asterisk20-click-to-call-connectedline", "asterisk20")
    fields = PRODUCT_FIELDS + ("ConnectedLineNum", "ConnectedLineName")
    assert_same_segments(capture, ours, fields=fields, events=PRODUCT_EVENTS | {"NewConnectedLine"})
    for messages in (capture, ours):
        leg = [m for m in messages if m.get("Channel", "").startswith("SIP/104-") and "ConnectedLineNum" in m]
        first = next(i for i, m in enumerate(leg) if m.event == "NewConnectedLine")
        assert {(m["ConnectedLineNum"], m["ConnectedLineName"]) for m in leg[first:]} == {("104", "104")}
        assert "5551234" in {m.get("Exten") for m in leg}


@pytest.mark.parametrize("name", ["asterisk20-busy-own-phone"])
async def test_a_busy_own_phone_takes_a_second_call(name):
    capture, ours = await replay(name, "asterisk20", skip=("dsl-busy",),
                                 moves={"curator-104-call": lambda p, c: c.event("BridgeEnter", CallerIDNum="200"),
                                        "trainee-105": lambda p, c: c.event("BridgeEnter", CallerIDNum="5551234"),
                                        "spy-busy-104": lambda p, c: c.event("ChanSpyStart")})
    assert_same_segments(capture, ours)
    listed = [m["Channel"] for m in events_of(ours, "CoreShowChannel") if m["Channel"].startswith("SIP/104-")]
    assert len(listed) == 2


# --- chan_sip PickupChan: the race and its losers ---------------------------------------------------

RACE_OF_RUN = {  # the README's race table: which row each captured run is
    1: "response-first-own-leg", 2: "response-first-own-leg", 3: "response-first-ringing-leg",
    4: "pickup-first-ringing-leg", 5: "response-first-own-leg", 6: "pickup-first-ringing-leg",
}


def rings(pbx, conn):
    return conn.wait_for(lambda m: m.event == "Newstate" and m["ChannelState"] == "5"
                         and m["Channel"].startswith("SIP/106-"))


async def picked_up(pbx, conn):
    await conn.event("Pickup")
    await conn.event("OriginateResponse", ActionID="ring-106")
    await conn.wait_for(lambda m: m.event == "Hangup" and m["Channel"].startswith("SIP/106-"))


def race_view(messages):
    """What a product reads of a pickup, ids renamed: the order of the picker's response and the
    Pickup, the response's channel and uniqueid, the rung leg's end."""
    names = Renamer()
    for message in messages:
        for _, value in message.pairs:
            names.value(value)
    answered = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "pickup-104")
    pickup = events_of(messages, "Pickup")[0]
    rung = events_of(messages, "Hangup", Channel=pickup["TargetChannel"])[0]
    return {
        "order": "response-first" if messages.index(answered) < messages.index(pickup) else "pickup-first",
        "response": tuple(names.value(answered[k]) for k in ("Response", "Reason", "Channel", "Uniqueid")),
        "pickup": tuple(names.value(pickup[k]) for k in ("Channel", "Uniqueid", "TargetChannel", "TargetUniqueid")),
        "rung": (rung["Cause"], rung["Cause-txt"], rung["ChannelState"]),
        "ring response": names.value(next(m for m in messages if m.event == "OriginateResponse"
                                          and m.action_id == "ring-106")["Channel"]),
    }


@pytest.mark.parametrize("run", sorted(RACE_OF_RUN))
async def test_each_captured_pickup_race_can_be_played(run):
    name = f"asterisk20-pickup-race-{run}"
    capture, ours = await replay(name, "asterisk20", pbx_options={"pickup_race": RACE_OF_RUN[run]},
                                 moves={"ring-106": rings, "pickup-104": picked_up})
    assert race_view(ours) == race_view(capture)
    assert_same_segments(capture, ours)


async def test_the_random_pickup_race_plays_every_row_from_its_seed():
    seen = set()
    for seed in range(12):
        capture, ours = await replay("asterisk20-pickup-race-1", "asterisk20",
                                     pbx_options={"pickup_race": "random", "seed": seed},
                                     moves={"ring-106": rings, "pickup-104": picked_up})
        view = race_view(ours)
        seen.add((view["order"], view["response"][2].startswith("SIP/104")))
        if len(seen) == 3:
            break
    assert seen == {("response-first", True), ("response-first", False), ("pickup-first", False)}


async def test_two_pickers_one_wins_the_other_answers_and_hangs_up():
    async def both_done(pbx, conn):
        await conn.event("OriginateResponse", ActionID="pickup-104")
        await conn.event("OriginateResponse", ActionID="ring-106")
        await asyncio.sleep(0.1)

    capture, ours = await replay("asterisk20-pickup-race-two-pickers", "asterisk20", together=("pickup-107",),
                                 moves={"ring-106": rings, "pickup-104": both_done})
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        winner = events_of(messages, "Pickup")
        assert len(winner) == 1 and winner[0]["Channel"].startswith("SIP/107-")
        loser = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "pickup-104")
        assert (loser["Response"], loser["Reason"]) == ("Success", "4") and loser["Channel"].startswith("SIP/104-")
        assert events_of(messages, "Hangup", Channel=loser["Channel"])[0]["Cause"] == "16"


async def test_a_picker_too_late_for_an_answered_call_answers_and_hangs_up_at_once():
    capture, ours = await replay("asterisk20-pickup-race-too-late-answered", "asterisk20",
                                 moves={"ring-106": rings, "pickup-107": picked_up_by_107,
                                        "pickup-104": late_picker_gone})
    assert_same_segments(capture, ours)
    check_too_late(capture, ours)


async def picked_up_by_107(pbx, conn):
    await conn.event("Pickup")
    await asyncio.sleep(0.1)


async def late_picker_gone(pbx, conn):
    late = await conn.event("OriginateResponse", ActionID="pickup-104")
    await conn.event("Hangup", Channel=late["Channel"])


def check_too_late(capture, ours):
    for messages in (capture, ours):
        late = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "pickup-104")
        assert (late["Response"], late["Reason"]) == ("Success", "4") and late["Channel"].startswith("SIP/104-")
        gone = events_of(messages, "Hangup", Channel=late["Channel"])[0]
        assert (gone["Cause"], gone["Cause-txt"]) == ("16", "Normal Clearing")
        assert messages.index(late) < messages.index(gone)
        assert not [m for m in events_of(messages, "Pickup") if m["Channel"] == late["Channel"]]


async def test_a_picker_too_late_for_a_caller_who_gave_up():
    async def caller_gives_up(pbx, conn):
        ringing = await rings(pbx, conn)
        await pbx.cli_hangup(ringing["Channel"])
        await conn.event("OriginateResponse", ActionID="ring-106")

    capture, ours = await replay("asterisk20-pickup-race-too-late-hungup", "asterisk20",
                                 moves={"ring-106": caller_gives_up, "pickup-104": late_picker_gone})
    assert_same_segments(capture, ours, events=PRODUCT_EVENTS | {"SoftHangupRequest"})
    check_too_late(capture, ours)
    for messages in (capture, ours):
        given_up = next(m for m in messages if m.event == "OriginateResponse" and m.action_id == "ring-106")
        assert (given_up["Response"], given_up["Reason"], given_up["Channel"], given_up["Uniqueid"]) == (
            "Failure", "0", "SIP/106", "<unknown>")
        rung = [m for m in messages if m.get("Channel", m.get("DestChannel", "")).startswith("SIP/106-")]
        assert [(m.event, m.get("Cause"), m.get("DialStatus")) for m in rung if m.event in (
            "SoftHangupRequest", "DialEnd", "Hangup")] == [
            ("SoftHangupRequest", "32", None), ("DialEnd", None, "NOANSWER"), ("Hangup", "16", None)]


async def test_customers_call_pjsip_phones_in_too():
    # No capture has a trunk; this checks the Asterisk 22 names and that a spy reaches the call.
    pbx = lab_pbx("asterisk22")
    await pbx.start()
    try:
        conn = await Raw.connect(pbx)
        await conn.login("admin", "adminsecret")
        agent = await pbx.inbound_call("PJSIP/105", caller_num="5559876", caller_name="Customer")
        assert agent.startswith("PJSIP/105-")
        await conn.event("BridgeEnter", Channel=agent)
        conn.send("Originate", [("Channel", "Local/104@dashboard-phones"), ("Application", "ChanSpy"),
                                ("Data", f"{agent},qx"), ("Async", "true"), ("Variable", "AUTOANSWER=call-info")], "spy")
        spy = await conn.event("OriginateResponse", ActionID="spy")
        assert (await conn.event("ChanSpyStart", SpyerChannel=spy["Channel"]))["SpyeeChannel"] == agent
        assert all(not m.get("Channel", "").startswith("SIP/") for m in conn.messages)
    finally:
        await pbx.stop()


async def test_the_spy_prefix_is_a_plain_string_prefix_on_pjsip_too():
    async def trainee_1050_dials(pbx, conn):
        await pbx.phone_calls("PJSIP/1050", "5551234", caller_name="Trainee 1050")
        await conn.event("BridgeEnter", CallerIDNum="1050")

    capture, ours = await replay("asterisk22-pjsip-chanspy-prefix-1050", "asterisk22",
                                 moves={"login-1": trainee_1050_dials})
    assert_same_segments(capture, ours)
    for messages in (capture, ours):
        assert [m["SpyeeChannel"][:11] for m in events_of(messages, "ChanSpyStart")] == ["PJSIP/1050-"]


@pytest.mark.parametrize("name,flavour", [("asterisk20-two-calls-one-phone", "asterisk20"),
                                          ("asterisk22-pjsip-two-calls-one-phone", "asterisk22")])
async def test_one_phone_holds_two_calls(name, flavour):
    capture, ours = await replay(name, flavour, skip=("dsl-two",))
    assert_same_segments(capture, ours)
    listed = [m for m in events_of(ours, "CoreShowChannel")]
    assert len(listed) == 2 and {m["ConnectedLineNum"] for m in listed} == {"5551111", "5552222"}
