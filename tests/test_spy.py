"""Spy commands end to end on the simulated PBX over TCP: the real AMI client, the real bridge and
board, the audit rows. Every refused press is audited and sends nothing to the PBX."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer

from accounts.models import Role
from fakepbx import FakePBX
from supervision.bridge_host import build_bridge
from supervision.models import LIVE_OUTCOMES, Kind, MonitoringSession, Outcome
from tests.conftest import FAKEPBX_FAST, FAKEPBX_PHONES
from tests.live_stack import (  # noqa: F401
    Inbox,
    bridge,
    originates,
    press,
    press_on_page,
    roster,
    rows,
    take_permission,
    until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def live_call(pbx, bridge, device):
    name = await pbx.inbound_call(device)
    await until(lambda: (bridge.board.channel(name) or {}).get("state") == "up")
    return name


def sent(pbx, action):
    return [a for a in pbx.actions if a.get("Action") == action]


# --- the happy path, per mode ------------------------------------------------------------------


@pytest.mark.parametrize("mode, options, spy_mode", [("listen", "qxEd", "listen"), ("whisper", "wxEd", "whisper"),
                                                      ("barge", "qBxEd", "barge")])
async def test_a_curator_spies_on_his_trainee(fakepbx, bridge, roster, mode, options, spy_mode):
    people, phones = roster
    curator, trainee = people["petrova"], people["anna"]
    inbox = await Inbox(bridge.layer, curator.pk).open()
    watched = await Inbox(bridge.layer, trainee.pk).open()
    agent = await live_call(fakepbx, bridge, "SIP/105")

    await press(bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": mode})
    spying = await inbox.next(state="spying")

    # The exact Originate the PBX received.
    [originate] = originates(fakepbx)
    raw = next(r for r in fakepbx.raw_actions if r.startswith(b"Action: Originate\r\n"))
    action_id = originate["ActionID"]
    assert raw == (
        f"Action: Originate\r\nActionID: {action_id}\r\nChannel: SIP/104\r\nApplication: ChanSpy\r\n"
        f"Data: {agent},{options}\r\nCallerID: Spy-105 <105>\r\nAsync: true\r\n"
        'Variable: SIPADDHEADER="Call-Info:\\;answer-after=0"\r\n\r\n'
    ).encode()
    # The messages, in the session's order.
    assert inbox.states() == ["queued", "answered", "spying"]
    assert spying["text"] == {"listen": "Listening to Anna", "whisper": "Whispering to Anna",
                              "barge": "Barging in on Anna"}[mode]
    assert await watched.next(type="monitored") == {"type": "monitored", "by": "Olga", "mode": mode, "active": True}
    # The board shows the spy on the trainee's call.
    [row] = await rows()
    spy_channel = row["spy_channel"]
    assert spy_channel.startswith("SIP/104-")
    assert bridge.board.channel(agent)["spied_by"] == [spy_channel]
    assert bridge.board.channel(spy_channel)["spying_on"] == agent
    assert bridge.board.channel(spy_channel)["spy_mode"] == spy_mode
    assert fakepbx.spy_mode(spy_channel) == spy_mode
    # The audit row so far.
    assert row["outcome"] == Outcome.SPYING
    assert row["action_id"] == action_id
    assert row["target_channel"] == agent
    assert (row["mode"], row["modes"], row["reason"], row["allow_switch"]) == (mode, mode, "ok", True)
    assert row["answered_at"] and row["spying_started_at"] and not row["ended_at"]
    assert row["client_address"] == "192.0.2.7"
    assert (row["user_label"], row["target_label"], row["from_device"], row["target_device"]) == (
        "Olga", "Anna", "SIP/104", "SIP/105")

    await press(bridge, curator, {"type": "spy.stop"})
    ended = await inbox.next(state="ended")

    assert [h.as_dict() for h in sent(fakepbx, "Hangup")] == [
        {"Action": "Hangup", "ActionID": sent(fakepbx, "Hangup")[0]["ActionID"], "Channel": spy_channel}]
    assert ended["text"] == "Stopped monitoring Anna."
    [row] = await rows()
    assert row["outcome"] == Outcome.ENDED and row["ended_at"]
    assert await watched.next(type="monitored", active=False)
    await until(lambda: bridge.board.channel(spy_channel) is None)
    assert bridge.board.channel(agent)["spied_by"] == []


async def test_spying_on_105_never_catches_1050(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    other = await live_call(fakepbx, bridge, "SIP/1050")
    agent = await live_call(fakepbx, bridge, "SIP/105")

    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")

    assert originates(fakepbx)[0]["Data"] == f"{agent},qxEd"
    assert bridge.board.channel(agent)["spied_by"]
    assert bridge.board.channel(other)["spied_by"] == []


async def test_the_spied_call_ending_ends_the_session(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    agent = await live_call(fakepbx, bridge, "SIP/105")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")

    await fakepbx.hangup(agent)
    await inbox.next(state="ended")

    [row] = await rows()
    assert row["outcome"] == Outcome.ENDED
    await until(lambda: bridge.board.channel(row["spy_channel"]) is None)  # the silent spy leg is hung up


async def test_a_spy_the_pbx_keeps_until_the_call_ends_shows_stopping_then_ends(fakepbx, bridge, roster):
    """With asterisk.conf transmit_silence=no a stopped spy on a silent call lingers until the
    spied call ends: the presser sees "stopping" at once, and the row ends when the PBX ends it."""
    fakepbx.switch.transmit_silence = False
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    agent = await live_call(fakepbx, bridge, "SIP/105")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")

    await press(bridge, people["petrova"], {"type": "spy.stop"})
    stopping = await inbox.next(state="stopping")
    assert stopping["text"] == "Stopping…"
    [row] = await rows()
    assert row["outcome"] == Outcome.SPYING and not row["ended_at"]

    await fakepbx.hangup(agent)
    await inbox.next(state="ended")
    [row] = await rows()
    assert row["outcome"] == Outcome.ENDED and row["ended_at"]
    await until(lambda: bridge.board.channel(row["spy_channel"]) is None)


# --- switching mode ---------------------------------------------------------------------------


async def test_switch_in_place_with_the_keypad_option(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")

    await press(bridge, people["petrova"], {"type": "spy.switch", "mode": "whisper"})
    switched = await inbox.next(reason="switched")

    [row] = await rows()
    [dtmf] = sent(fakepbx, "PlayDTMF")
    assert (dtmf["Channel"], dtmf["Digit"], dtmf["Receive"]) == (row["spy_channel"], "5", "true")
    assert switched["text"] == "Whispering to Anna"
    assert (row["mode"], row["modes"], row["outcome"]) == ("whisper", "listen,whisper", Outcome.SPYING)
    assert len(originates(fakepbx)) == 1
    await until(lambda: fakepbx.spy_mode(row["spy_channel"]) == "whisper")


async def test_switch_without_all_three_rights_is_stop_and_a_new_session(fakepbx, bridge, roster):
    people, phones = roster
    await take_permission(Role.CURATOR, "barge")
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")

    await press(bridge, people["petrova"], {"type": "spy.switch", "mode": "whisper"})
    await inbox.next(state="spying", mode="whisper")

    first, second = await rows()
    assert [o["Data"].split(",")[1] for o in originates(fakepbx)] == ["qxE", "wxE"]  # no `d`
    assert sent(fakepbx, "PlayDTMF") == []
    assert [h["Channel"] for h in sent(fakepbx, "Hangup")] == [first["spy_channel"]]
    assert (first["outcome"], first["allow_switch"], first["outcome_detail"]) == (
        Outcome.ENDED, False, "Switched to whisper.")
    assert (second["outcome"], second["mode"]) == (Outcome.SPYING, "whisper")


async def test_switch_to_a_mode_taken_away_is_refused(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")
    await take_permission(Role.CURATOR, "barge")

    await press(bridge, people["petrova"], {"type": "spy.switch", "mode": "barge"})
    refused = await inbox.next(state="denied")

    assert refused["reason"] == "no_permission"
    assert sent(fakepbx, "PlayDTMF") == []
    live, denied = await rows()
    assert (live["outcome"], live["modes"]) == (Outcome.SPYING, "listen")
    assert (denied["outcome"], denied["reason"], denied["mode"]) == (Outcome.DENIED, "no_permission", "barge")


# --- refusals: audited, nothing sent ------------------------------------------------------------


@pytest.mark.parametrize(
    "who, target, mode, reason, text",
    [
        ("anna", "petrova", "barge", "not_for_role", "Your role allows only listening, not barge."),
        ("petrova", "vera", "listen", "not_your_team", "Vera is not in your team."),
        ("petrova", 999999, "listen", "not_found", "That phone does not exist (any more)."),
        ("petrova", "105", "listen", "not_found", "That phone does not exist (any more)."),
        ("petrova", None, "listen", "not_found", "That phone does not exist (any more)."),
        ("petrova", "anna", "hijack", "unknown_action", "Unknown action."),
        ("petrova", "petrova", "listen", "own_call", "You cannot monitor your own calls."),
    ],
)
async def test_abuse_is_refused_audited_and_sends_nothing(fakepbx, bridge, roster, who, target, mode, reason, text):
    people, phones = roster
    await live_call(fakepbx, bridge, "SIP/104")
    await live_call(fakepbx, bridge, "SIP/106")
    inbox = await Inbox(bridge.layer, people[who].pk).open()
    target_id = phones[target].pk if target in phones else target

    await press(bridge, people[who], {"type": "spy", "target": target_id, "mode": mode})
    refused = await inbox.next(state="denied")

    assert (refused["reason"], refused["text"]) == (reason, text)
    assert originates(fakepbx) == []
    [row] = await rows()
    assert (row["outcome"], row["reason"], row["outcome_detail"]) == (Outcome.DENIED, reason, text)
    assert row["user_id"] == people[who].pk and row["ended_at"]


async def test_a_target_with_no_live_call_is_refused(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()

    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    refused = await inbox.next(state="denied")

    assert (refused["reason"], refused["text"]) == ("no_call", "Anna has no call right now.")
    assert originates(fakepbx) == []
    [row] = await rows()
    assert (row["outcome"], row["target_user_id"]) == (Outcome.DENIED, people["anna"].pk)


async def test_a_flood_of_presses_gets_one_originate(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")
    command = {"type": "spy", "target": phones["anna"].pk, "mode": "listen"}

    await asyncio.gather(*(press(bridge, people["petrova"], command) for _ in range(8)))
    await inbox.next(state="spying")

    assert len(originates(fakepbx)) == 1
    outcomes = [(r["outcome"], r["reason"]) for r in await rows()]
    assert outcomes.count((Outcome.SPYING, "ok")) == 1
    assert outcomes.count((Outcome.DENIED, "already_monitoring")) == 4
    assert outcomes.count((Outcome.DENIED, "rate_limited")) == 1  # the burst, summarised
    [burst] = await rows(reason="rate_limited")
    assert burst["outcome_detail"] == "3 presses refused: Too many presses; wait a few seconds."
    texts = {m["text"] for m in inbox.messages if m.get("state") == "denied"}
    assert "Too many presses; wait a few seconds." in texts


async def test_pbx_down_is_refused_and_audited(fakepbx, bridge, roster):
    people, phones = roster
    await live_call(fakepbx, bridge, "SIP/105")
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await fakepbx.stop()
    await until(lambda: bridge.client.link.state != "up")

    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    refused = await inbox.next(state="denied")

    assert refused["reason"] == "pbx_down"
    assert refused["text"].startswith("The PBX link is ")
    assert originates(fakepbx) == []
    [row] = await rows()
    assert (row["outcome"], row["reason"]) == (Outcome.DENIED, "pbx_down")


async def restarted(pbx):
    """Asterisk started again on the same port: no calls, counters from 00000000."""
    await pbx.stop()
    again = FakePBX(port=pbx.port, **FAKEPBX_FAST)
    for device in FAKEPBX_PHONES:
        again.set_phone(device, "answer", ring_seconds=0)
    return await again.start()


async def test_a_pbx_that_dies_holds_the_spy_until_it_is_back_and_lists_no_spy_leg(fakepbx, bridge, roster):
    """When the link goes, the spy leg may go on (a network cut) or be gone (Asterisk died): no
    verdict until the next login's CoreShowChannels says which."""
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    watched = await Inbox(bridge.layer, people["anna"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")
    await watched.next(type="monitored", active=True)

    port = fakepbx.port
    await fakepbx.stop()
    held = await inbox.next(reason="link_down")

    assert held["state"] == "spying"
    assert held["text"] == ("The PBX link was lost (down). Your phone may still be connected to Anna's call: hang up "
                            "your phone to stop. The session is taken back when the link returns.")
    [row] = await rows()
    assert row["outcome"] == Outcome.SPYING and row["ended_at"] is None
    await press(bridge, people["petrova"], {"type": "spy.stop"})
    refused = await inbox.next(reason="pbx_down")
    assert refused["text"] == ("The PBX link is down, so the dashboard cannot end or change the call: hang up your "
                               "phone to stop.")
    assert bridge.spy_monitor.sessions_of(people["petrova"].pk)[0]["reason"] == "link_down"

    pbx = await restarted(fakepbx)
    try:
        ended = await inbox.next(state="interrupted")
    finally:
        await pbx.stop()
    assert pbx.port == port
    assert ended["text"] == "The PBX link was lost, and when it came back your phone's spy call was gone."
    [row] = await rows()
    assert (row["outcome"], row["outcome_detail"]) == (Outcome.INTERRUPTED, ended["text"])
    assert await watched.next(type="monitored", active=False)
    assert bridge.spy_monitor.by_user == {} and bridge.spy_monitor.held == {}


async def test_a_press_whose_phone_had_not_answered_ends_with_the_link(fakepbx, bridge, roster):
    people, phones = roster
    fakepbx.set_phone("SIP/104", "answer", ring_seconds=30)
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="queued")

    await fakepbx.stop()
    interrupted = await inbox.next(state="interrupted")

    assert interrupted["text"] == "The PBX link was lost (down)."
    [row] = await rows()
    assert row["outcome"] == Outcome.INTERRUPTED
    assert bridge.spy_monitor.by_user == {} and bridge.spy_monitor.held == {}


async def test_rows_left_open_by_a_dead_bridge_end_interrupted_when_the_pbx_has_no_leg_for_them(fakepbx, roster):
    """Spy rows wait for the first login's CoreShowChannels (tests/test_spy_take_back.py takes
    live legs back); rows of other kinds cannot be followed again and end at start."""
    people, phones = roster

    @sync_to_async
    def open_rows():
        for outcome in (Outcome.REQUESTED, Outcome.QUEUED, Outcome.ANSWERED, Outcome.SPYING, Outcome.ENDED):
            MonitoringSession.objects.create(user=people["petrova"], mode="listen", outcome=outcome,
                                             spy_channel="SIP/104-0000002a", spy_uniqueid="1796096285.34")
        MonitoringSession.objects.create(user=people["petrova"], kind=Kind.PICKUP, outcome=Outcome.QUEUED)

    await open_rows()
    bridge = build_bridge(InMemoryChannelLayer(), host="127.0.0.1", port=fakepbx.port)
    await bridge.spy_monitor.startup
    assert sorted(r["outcome"] for r in await rows(kind=Kind.PICKUP)) == [Outcome.INTERRUPTED]
    assert len(await rows(kind=Kind.SPY, outcome__in=LIVE_OUTCOMES)) == 4

    await bridge.start()
    try:
        await bridge.client.wait_until("up", timeout=10)
        outcomes = sorted(r["outcome"] for r in await rows(kind=Kind.SPY))
    finally:
        await bridge.stop()
    assert outcomes == sorted([Outcome.INTERRUPTED] * 4 + [Outcome.ENDED])
    assert bridge.spy_monitor.by_user == {}


async def test_the_phone_not_answering_fails_with_the_reason_in_words(fakepbx, bridge, roster):
    people, phones = roster
    fakepbx.set_phone("SIP/104", "busy")
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")

    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    failed = await inbox.next(state="failed")

    assert failed["text"] == "Your phone did not connect: busy."
    [row] = await rows()
    assert (row["outcome"], row["outcome_detail"]) == (Outcome.FAILED, "Your phone did not connect: busy.")
    assert bridge.spy_monitor.by_user == {}


async def test_only_the_owner_stops_a_session(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    other = await Inbox(bridge.layer, people["smirnov"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    started = await inbox.next(state="spying")

    await press(bridge, people["smirnov"], {"type": "spy.stop", "session": started["session"]})
    refused = await other.next(type="spy.status")

    assert (refused["state"], refused["reason"]) == ("idle", "no_session")
    assert sent(fakepbx, "Hangup") == []
    [row] = await rows()
    assert row["outcome"] == Outcome.SPYING


# --- the language of the page that pressed --------------------------------------------------


async def test_a_russian_press_hears_what_the_pbx_does_later_in_russian(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    watched = await Inbox(bridge.layer, people["anna"].pk).open()
    agent = await live_call(fakepbx, bridge, "SIP/105")

    await press_on_page(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"}, "ru")
    spying = await inbox.next(state="spying")
    await fakepbx.hangup(agent)
    ended = await inbox.next(state="ended")

    texts = {m["state"]: m["text"] for m in inbox.messages}
    assert texts == {"queued": "Вызываем ваш телефон…",
                     "answered": "Ваш телефон ответил; подключаемся к разговору: Anna…",
                     "spying": "Прослушивание: Anna",
                     "ended": "Разговор пользователя Anna завершён."}
    assert (spying["text"], ended["text"]) == (texts["spying"], texts["ended"])
    # The monitored person's notice carries no words: her own page says it in its own language.
    assert await watched.next(type="monitored") == {"type": "monitored", "by": "Olga", "mode": "listen",
                                                    "active": True}
    [row] = await rows()
    assert row["outcome_detail"] == "Разговор пользователя Anna завершён."


async def test_the_reason_a_phone_did_not_connect_is_in_the_pressers_language(fakepbx, bridge, roster):
    people, phones = roster
    fakepbx.set_phone("SIP/104", "busy")
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")

    await press_on_page(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"}, "ru")
    failed = await inbox.next(state="failed")

    assert failed["text"] == "Ваш телефон не подключился: занято."


async def test_a_lost_link_is_told_to_each_presser_in_his_own_pages_language(fakepbx, bridge, roster):
    people, phones = roster
    olga = await Inbox(bridge.layer, people["petrova"].pk).open()
    ivan = await Inbox(bridge.layer, people["smirnov"].pk).open()
    await live_call(fakepbx, bridge, "SIP/105")
    await live_call(fakepbx, bridge, "SIP/106")
    await press_on_page(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"}, "ru")
    await press_on_page(bridge, people["smirnov"], {"type": "spy", "target": phones["vera"].pk, "mode": "listen"}, "en")
    await olga.next(state="spying")
    await ivan.next(state="spying")

    pbx = await restarted(fakepbx)
    try:
        held = [await olga.next(reason="link_down"), await ivan.next(reason="link_down")]
        ended = [await olga.next(state="interrupted"), await ivan.next(state="interrupted")]
    finally:
        await pbx.stop()

    assert held[0]["text"].startswith("Связь с АТС потеряна")
    assert held[1]["text"].startswith("The PBX link was lost")
    assert ended[0]["text"] == "Связь с АТС была потеряна, а когда она вернулась, вызова прослушивания уже не было."
    assert ended[1]["text"] == "The PBX link was lost, and when it came back your phone's spy call was gone."
    details = sorted(r["outcome_detail"] for r in await rows())
    assert details == sorted(message["text"] for message in ended)
