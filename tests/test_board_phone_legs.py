"""A person's phone on the board, replayed from real Asterisk 20 (chan_sip) and 22 (PJSIP) traffic:
which channels are conversations, which are legs of a spy / pickup / playback, and who spies.

On the PJSIP route the Originate returns `Local/104@dashboard-phones-X;1` (it runs ChanSpy), its
`;2` dials the phone, and the phone's own `PJSIP/104-...` is bridged with `;2`: all three are that
person's, and none of them is a conversation anybody may be put into.
"""

from supervision.board import Board
from tests.captures import capture_messages


def fixed_clock():
    return 1000.0


def replay_until(name, stop):
    """A board that applied the capture's messages up to (not including) the first `stop(message)`;
    returns (board, that message)."""
    board = Board(now=fixed_clock)
    for message in capture_messages(name)[1]:
        if stop(message):
            return board, message
        board.apply(message)
    raise AssertionError(f"{name}: the stop message never came")


def after(name, stop):
    """The board right after the first message for which `stop(message)` holds."""
    board = Board(now=fixed_clock)
    for message in capture_messages(name)[1]:
        board.apply(message)
        if stop(message):
            return board
    raise AssertionError(f"{name}: the stop message never came")


def event(name, **fields):
    def matches(message):
        return message.event == name and all(message.get(key) == value for key, value in fields.items())

    return matches


def test_pjsip_listen_names_the_curators_phone_and_marks_his_legs():
    board = after("asterisk22-pjsip-chanspy-listen", event("ChanSpyStart"))
    spy_one = "Local/104@dashboard-phones-00000006;1"
    trainee = board.channel("PJSIP/105-00000003")
    assert trainee["spied_by"] == [spy_one]
    assert trainee["watchers"] == [{"device": "PJSIP/104", "mode": "listen"}]
    assert trainee["leg"] is None
    assert board.owner_device(spy_one) == "PJSIP/104"
    leg = {"role": "spy", "of": spy_one, "target": "PJSIP/105-00000003", "mode": "listen"}
    for name in (spy_one, "Local/104@dashboard-phones-00000006;2", "PJSIP/104-00000004"):
        assert board.channel(name)["leg"] == leg, name
    # The curator's phone leg is up, but it is not a call anybody may join; the trainee's is.
    assert board.live_channel("PJSIP/104")["name"] == "PJSIP/104-00000004"
    assert board.conversation_of("PJSIP/104") is None
    assert board.conversation_of("PJSIP/105")["name"] == "PJSIP/105-00000003"


def test_pjsip_barge_watcher_and_a_whisper_that_never_started():
    name = "asterisk22-pjsip-chanspy-barge"
    board = after(name, event("ChanSpyStart"))
    spyee = board.channel(next(m for m in capture_messages(name)[1] if m.event == "ChanSpyStart")["SpyeeChannel"])
    assert spyee["watchers"] == [{"device": "PJSIP/104", "mode": "barge"}]
    # This PBX had no `beep` sound: the whisper leg answered and hung up without a ChanSpyStart.
    # Until then it is a whisper leg of the curator's phone, attached to nobody yet.
    name = "asterisk22-pjsip-chanspy-whisper"
    assert not any(m.event == "ChanSpyStart" for m in capture_messages(name)[1])
    board = after(name, event("OriginateResponse"))
    one = "Local/104@dashboard-phones-00000008;1"
    assert board.channel("PJSIP/104-00000006")["leg"] == {"role": "spy", "of": one, "target": None, "mode": "whisper"}
    assert board.channel("PJSIP/105-00000005")["watchers"] == []


def test_pjsip_keypad_switch_changes_the_mode_the_watchers_show():
    name = "asterisk22-pjsip-chanspy-switch-dtmf-playdtmf"
    messages = capture_messages(name)[1]
    digits = [m["Digit"] for m in messages if m.event == "DTMFEnd" and m.get("Direction") == "Received"]
    assert digits, "the capture presses keys on the spy leg"
    board = after(name, lambda m: m.event == "DTMFEnd" and m.get("Direction") == "Received")
    spyer = next(m for m in messages if m.event == "ChanSpyStart")
    expected = {"4": "listen", "5": "whisper", "6": "barge"}[digits[0]]
    assert board.channel(spyer["SpyerChannel"])["spy_mode"] == expected
    assert board.channel(spyer["SpyeeChannel"])["watchers"] == [{"device": "PJSIP/104", "mode": expected}]


def test_a_listen_on_a_curator_who_is_spying_finds_no_conversation():
    # The trainee's press on his curator (PJSIP/104) came while the curator was listening to
    # another trainee: his only Up channel was his phone leg, bridged into the ChanSpy. The product
    # picked that leg and the trainee heard PJSIP/105's customer.
    name = "asterisk22-pjsip-live-product-trainee-via-curator-spy-leg"
    board, press = replay_until(name, event("OriginateResponse", Data="PJSIP/104-0000002c,qx"))
    assert board.live_channel("PJSIP/104")["name"] == "PJSIP/104-0000002c"  # what the product took
    assert board.channel("PJSIP/104-0000002c")["leg"]["role"] == "spy"
    assert board.conversation_of("PJSIP/104") is None
    assert board.channel("PJSIP/105-0000002b")["watchers"] == [{"device": "PJSIP/104", "mode": "listen"}]


def test_chan_sip_spy_leg_is_never_the_conversation_of_its_phone():
    board = after("asterisk20-sip-chanspy-listen", event("ChanSpyStart"))
    spy = board.channel("SIP/104-00000002")
    assert spy["leg"] == {"role": "spy", "of": "SIP/104-00000002", "target": "SIP/105-00000001", "mode": "listen"}
    assert board.conversation_of("SIP/104") is None
    assert board.channel("SIP/105-00000001")["watchers"] == [{"device": "SIP/104", "mode": "listen"}]


def test_a_busy_phone_with_a_call_and_a_spy_leg_offers_the_call_only():
    for name, call, spy in [
        ("asterisk20-busy-own-phone", "SIP/104-00000055", "SIP/104-00000057"),
        ("asterisk22-pjsip-busy-own-phone", "PJSIP/104-0000003d", "PJSIP/104-0000003f"),
    ]:
        board, _ = replay_until(name, lambda m: m.event is None and m.action_id == "csc-busy")
        device = call.rpartition("-")[0]
        assert {c["name"] for c in board.channels_of(device)} == {call, spy}, name
        assert board.channel(spy)["leg"]["role"] == "spy", name
        assert board.conversation_of(device)["name"] == call, name


def test_pjsip_click_to_call_leaves_the_phone_leg_as_the_call():
    name = "asterisk22-pjsip-click-to-call"
    board = after(name, event("Hangup", Channel="Local/104@dashboard-phones-0000001b;1"))
    call = board.conversation_of("PJSIP/104")
    assert call["name"] == "PJSIP/104-0000001a"
    assert call["leg"] is None and call["peers"] == ["Local/5551234@customer-0000001c;1"]


def test_pjsip_pickup_makes_the_pickers_legs_a_conversation():
    name = "asterisk22-pjsip-pickupchan"
    board = after(name, event("OriginateResponse", Application="PickupChan"))
    assert board.channel("PJSIP/104-00000015")["leg"]["role"] == "pickup"
    board = after(name, event("Pickup"))
    for leg in ("Local/104@dashboard-phones-00000016;1", "PJSIP/104-00000015"):
        assert board.channel(leg)["leg"] is None, leg
    assert board.conversation_of("PJSIP/104")["name"] == "PJSIP/104-00000015"


def test_pjsip_playback_legs_are_not_a_conversation():
    name = "asterisk22-pjsip-originate-playback"
    board = after(name, lambda m: m.event == "BridgeEnter" and m["Channel"].endswith(";2"))
    assert board.channel("PJSIP/104-00000018")["leg"]["role"] == "playback"
    assert board.conversation_of("PJSIP/104") is None
