"""What the board tells a card beyond its channels, replayed from the real captures: each phone's
state as the PBX reports it (and "unknown" where it reports nothing), since when a phone is idle,
and the number a click-to-call dialled. The simulator's qualify events and DeviceStateList answer
are compared with the same captures."""

import itertools

import pytest

from fakepbx import qualify
from supervision.board import Board, apply_diffs
from tests.captures import capture_messages


def clock():
    ticks = itertools.count(1_800_000_000)
    return lambda: float(next(ticks))


def events_and_lists(name):
    """The capture's unsolicited events, and its list answers by ActionID (the client keeps a
    list's items away from the event stream)."""
    events, lists = [], {}
    for message in capture_messages(name)[1]:
        action_id = message.get("ActionID")
        if action_id is None:
            if message.event:
                events.append(message)
        elif message.event:
            lists.setdefault(action_id, []).append(message)
    return events, lists


def device_items(messages):
    return [m for m in messages if m.event == "DeviceStateChange"]


@pytest.mark.parametrize("name, technology", [
    ("asterisk20-device-state-qualify", "SIP"),
    ("asterisk22-pjsip-device-state-qualify", "PJSIP"),
])
def test_a_qualified_phone_that_stops_answering_is_offline_and_online_again_when_it_answers(name, technology):
    events, lists = events_and_lists(name)
    board = Board(now=clock())
    diffs = board.rebuild_phones(device_items(lists["dsl-before"]))
    phones = {d["device"]: d["phone"] for d in diffs}
    # NOT_INUSE from the list is no proof that a phone is there: nothing checked it yet.
    assert phones[f"{technology}/105"]["state"] == "not_inuse"
    assert phones[f"{technology}/105"]["presence"] == "unknown"
    seen = {}
    for message in events:
        for diff in board.apply(message):
            if diff["op"] == "phone":
                seen.setdefault(diff["device"], []).append(diff["phone"]["presence"])
    for resource in ("105", "106"):
        history = seen[f"{technology}/{resource}"]
        assert "offline" in history
        assert history[-1] == "online"  # the PBX's qualify says Reachable again
        assert history.index("offline") < len(history) - 1
    # Phones without qualify: the PBX never said a word, so the board never claims anything.
    assert f"{technology}/104" not in seen
    by_device = {phone["device"]: phone for phone in board.phones()}
    assert by_device[f"{technology}/104"]["presence"] == "unknown"


def test_an_unqualified_chan_sip_phone_stays_unknown_through_an_outage():
    events, lists = events_and_lists("asterisk20-device-and-peer-state")
    board = Board(now=clock())
    board.rebuild_phones(device_items(lists["dsl-before"]))
    for message in events:
        assert not [d for d in board.apply(message) if d["op"] == "phone"]
    board.rebuild_phones(device_items(lists["dsl-after"]))
    assert board.phones()
    assert {phone["presence"] for phone in board.phones()} == {"unknown"}


def test_a_list_the_pbx_refused_forgets_what_qualify_said():
    board = Board(now=clock())
    board.apply(qualify_message("PeerStatus", Peer="SIP/105", PeerStatus="Reachable"))
    assert board.phones()[0]["presence"] == "online"
    diffs = board.rebuild_phones(None)
    assert [d["phone"]["presence"] for d in diffs] == ["unknown"]


def qualify_message(event, **fields):
    from supervision.ami.protocol import Message

    return Message([("Event", event), *fields.items()])


@pytest.mark.parametrize("name, device", [
    ("asterisk20-two-calls-one-phone", "SIP/105"),
    ("asterisk22-pjsip-two-calls-one-phone", "PJSIP/105"),
])
def test_a_phone_is_idle_from_the_end_of_its_last_call_not_its_first(name, device):
    now = {"t": 1_800_000_000.0}
    board = Board(now=lambda: now["t"])
    client, hangups = [], 0
    for message in capture_messages(name)[1]:
        if message.get("ActionID") is not None:
            continue
        now["t"] += 1
        diffs = board.apply(message)
        client = apply_diffs(client, diffs)  # the page's mirror skips phone diffs
        if message.event == "Hangup" and message.get("Channel", "").startswith(device + "-"):
            hangups += 1
            idle = [d for d in diffs if d["op"] == "phone" and d["device"] == device]
            if hangups == 1:
                assert idle == []  # the second call is still on
            else:
                assert idle[0]["phone"]["idle_since"] == now["t"]
    assert hangups == 2
    assert {phone["device"]: phone["idle_since"] for phone in board.phones()}[device] is not None


@pytest.mark.parametrize("name, phone_leg", [
    ("asterisk20-click-to-call-connectedline", "SIP/104-0000001b"),
    ("asterisk22-pjsip-click-to-call", "PJSIP/104-0000001a"),
])
def test_a_click_to_call_shows_the_number_dialled_not_the_callers_own(name, phone_leg):
    board = Board(now=clock())
    found = None
    for message in capture_messages(name)[1]:
        if message.get("ActionID") is not None and message.event != "OriginateResponse":
            continue
        board.apply(message)
        channel = board.channel(phone_leg)
        if channel is not None and channel["state"] == "up":
            found = channel
    assert found is not None
    assert found["connected_num"] == "104"  # Asterisk's connected line is the caller's own phone
    assert found["dialled"] == "5551234"


def test_a_rebuild_keeps_the_dialled_number_of_a_channel_it_knew():
    board = Board(now=clock())
    for message in capture_messages("asterisk20-click-to-call-connectedline")[1]:
        if message.get("ActionID") is None or message.event == "OriginateResponse":
            board.apply(message)
        if (board.channel("SIP/104-0000001b") or {}).get("dialled"):
            break
    _, lists = events_and_lists("asterisk20-click-to-call-connectedline")
    items = [m for m in lists["csc-c2c"] if m.event == "CoreShowChannel"]
    assert items and board.channel("SIP/104-0000001b")["dialled"] == "5551234"
    board.rebuild(items)
    assert board.channel("SIP/104-0000001b")["dialled"] == "5551234"


# --- the simulator against the captures ------------------------------------------------------------

def pairs_without_privilege_order(message):
    return [(key, value) for key, value in message.pairs]


@pytest.mark.parametrize("name, device", [
    ("asterisk20-device-state-qualify", "SIP/105"),
    ("asterisk22-pjsip-device-state-qualify", "PJSIP/105"),
])
def test_the_simulators_qualify_events_are_the_pbxs(name, device):
    events, _lists = events_and_lists(name)
    kinds = {"PeerStatus", "ContactStatus", "DeviceStateChange"}
    about = [m for m in events if m.event in kinds
             and device in (m.get("Peer"), m.get("Device"), "PJSIP/" + (m.get("EndpointName") or ""))]
    gone = [m for m in about if m.get("PeerStatus") == "Unreachable" or m.get("ContactStatus") == "Unreachable"
            or m.get("State") == "UNAVAILABLE"]
    back = [m for m in about if m not in gone]
    simulated_gone = [pairs for _klass, pairs in qualify.gone_events(device)]
    simulated_back = [pairs for _klass, pairs in qualify.back_events(device)]
    # The same events with the same lines; their order varies between phones on a real PBX.
    assert len(gone) == (3 if device.startswith("PJSIP/") else 2)
    assert sorted(map(pairs_without_privilege_order, gone)) == sorted(simulated_gone)
    real_back = sorted(map(pairs_without_privilege_order, back))
    fake_back = sorted(simulated_back)
    roundtrip = [p for p in real_back if ("Event", "ContactStatus") in p]
    if roundtrip:  # the PBX measured it; the simulator says a plausible one
        fake_back = [[(k, dict(roundtrip[0])["RoundtripUsec"] if k == "RoundtripUsec" else v) for k, v in p]
                     for p in fake_back]
    assert real_back == fake_back


def test_the_simulators_device_state_list_is_shaped_like_the_pbxs():
    real = [m for m in capture_messages("asterisk20-device-state-qualify")[1] if m.get("ActionID") == "dsl-before"]
    states = [(m.get("Device"), m.get("State")) for m in real if m.event == "DeviceStateChange"]
    fake = qualify.device_state_list("dsl-before", states)
    assert len(states) == 5
    assert [list(m.pairs) for m in real] == fake


def test_a_rebuild_that_finds_a_phones_calls_gone_does_not_claim_when_they_ended():
    """The calls ended while the board was not listening (a lost link): idle since when is unknown."""
    _events, lists = events_and_lists("asterisk20-two-calls-one-phone")
    board = Board(now=clock())
    board.rebuild([m for m in lists["csc-two"] if m.event == "CoreShowChannel"])
    assert [c["device"] for c in board.snapshot()] == ["SIP/105", "SIP/105"]
    diffs = board.rebuild([])
    assert [d["op"] for d in diffs].count("remove") == 2
    phones = [d for d in diffs if d["op"] == "phone"]
    assert phones == []  # never idle-timed before: nothing to take back
    for message in [m for m in capture_messages("asterisk20-two-calls-one-phone")[1] if m.get("ActionID") is None]:
        board.apply(message)
    assert {p["device"]: p["idle_since"] for p in board.phones()}["SIP/105"] is not None
    board.rebuild([m for m in lists["csc-two"] if m.event == "CoreShowChannel"])
    diffs = board.rebuild([])
    assert [(d["device"], d["phone"]["idle_since"]) for d in diffs if d["op"] == "phone"] == [("SIP/105", None)]
