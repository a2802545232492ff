"""The page says "picked up", "ended" and "busy" only when the PBX's own events say so, on chan_sip
and on the PJSIP route, over TCP with the simulated PBX playing each behaviour of the captures:

- a pickup's OriginateResponse may come before the `Pickup` event and name either leg
  (asterisk20-pickup-race-*; on the Local route it always comes first: asterisk22-pjsip-pickupchan);
- click-to-call through the Local route: Asterisk optimises the Local pair away and hangs up `;1`
  while the phone's own leg goes on (asterisk22-pjsip-click-to-call);
- a PJSIP phone answering busy gives Reason 0, like "no such extension"; only its own leg's
  `DialEnd BUSY` / cause 17 says busy (asterisk22-pjsip-originate-failures).
"""

import asyncio

import pytest

from supervision.models import Outcome
from tests.conftest import FAKEPBX_FAST, _fakepbx_phones
from tests.live_stack import (  # noqa: F401
    Inbox,
    Statuses,
    bridge,
    originates,
    press,
    ringing_call,
    roster,
    rows,
    started_bridge,
    until,
)
from tests.pbx_drivers import device, driver, driver_bridge, driver_pbx, driver_roster  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def pickup_messages(inbox):
    return [(m["state"], m["reason"]) for m in inbox.messages if m["state"] != "queued"]


# --- 1. Answer here ---------------------------------------------------------------------------


@pytest.fixture(params=["response-first-own-leg", "response-first-ringing-leg", "pickup-first-ringing-leg"])
async def racing_pbx(request):
    """A chan_sip PBX whose pickups race as one of the rows of the capture README's race table."""
    from fakepbx import FakePBX

    pbx = _fakepbx_phones(FakePBX(port=0, pickup_race=request.param, **FAKEPBX_FAST))
    await pbx.start()
    yield pbx
    await pbx.stop()


@pytest.fixture
async def racing_bridge(racing_pbx, roster):
    async with started_bridge(racing_pbx) as bridge:
        yield bridge


async def test_a_pickup_is_told_by_the_pickup_event_whatever_the_race(racing_pbx, racing_bridge, roster):
    people, phones = roster
    curator = people["petrova"]
    inbox = await Statuses(racing_bridge.layer, curator.pk).open()
    ringing = await ringing_call(racing_pbx, racing_bridge, "SIP/105")
    ringing_uniqueid = racing_bridge.board.channel(ringing)["uniqueid"]

    await press(racing_bridge, curator, {"type": "pickup", "target": phones["anna"].pk})
    picked = await inbox.next(reason="picked_up")

    assert picked["state"] == "answered" and picked["text"] == "You answered Anna's call on your phone."
    assert all(state != "failed" for state, _reason in pickup_messages(inbox))
    await until(lambda: ringing not in racing_pbx.channels)
    [row] = await rows(kind="pickup")
    assert (row["outcome"], row["target_channel"]) == (Outcome.ANSWERED, ringing)
    assert row["spy_channel"].startswith("SIP/104-")  # the picker's own leg, from the Pickup event
    # Channel names start again after a PBX restart: the uniqueids say which calls these were.
    assert row["target_uniqueid"] == ringing_uniqueid and row["spy_uniqueid"]


async def test_a_pickup_through_the_local_route_is_not_too_late(driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    curator = people["petrova"]
    inbox = await Statuses(driver_bridge.layer, curator.pk).open()
    ringing = await ringing_call(driver_pbx, driver_bridge, device(driver, "105"))

    await press(driver_bridge, curator, {"type": "pickup", "target": phones["anna"].pk})
    picked = await inbox.next(reason="picked_up")

    assert picked["text"] == "You answered Anna's call on your phone."
    [originate] = originates(driver_pbx)
    assert originate["Channel"] == ("Local/104@dashboard-phones" if driver == "pjsip" else "SIP/104")
    assert originate["Data"] == ringing
    # The call goes on in the curator's phone until it hangs up; then, and only then, it ended.
    [job] = driver_bridge.call_control.following
    [phone_leg] = job.legs.phone_legs()
    assert phone_leg.startswith(device(driver, "104") + "-")
    await driver_pbx.hangup(phone_leg)
    ended = await inbox.next(state="ended")
    assert ended["text"] == "Anna's call ended."


async def test_two_pickers_one_wins_the_other_is_told_too_late(driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    curator, anna = people["petrova"], people["anna"]
    curator_inbox = await Statuses(driver_bridge.layer, curator.pk).open()
    anna_inbox = await Statuses(driver_bridge.layer, anna.pk).open()
    await ringing_call(driver_pbx, driver_bridge, device(driver, "105"))
    # Both phones ring a moment before answering, so that both Originates reach the PBX while the
    # call still rings (asterisk20-pickup-race-two-pickers): the first phone up takes it.
    driver_pbx.set_phone(device(driver, "104"), "answer", ring_seconds=0.1)
    driver_pbx.set_phone(device(driver, "105"), "answer", ring_seconds=0.6)

    command = {"type": "pickup", "target": phones["anna"].pk}
    await asyncio.gather(press(driver_bridge, curator, command), press(driver_bridge, anna, command))

    async def verdict(inbox):
        while True:
            message = await inbox.next()
            if message["reason"] in ("picked_up", "not_ringing"):
                return message

    curator_verdict, anna_verdict = await verdict(curator_inbox), await verdict(anna_inbox)
    assert (curator_verdict["reason"], anna_verdict["reason"]) == ("picked_up", "not_ringing")
    assert anna_verdict["state"] == "failed" and anna_verdict["text"].startswith("Too late: ")
    assert len(originates(driver_pbx)) == 2
    outcomes = sorted((row["outcome"], row["reason"]) for row in await rows(kind="pickup"))
    assert outcomes == [(Outcome.ANSWERED, "ok"), (Outcome.FAILED, "not_ringing")], outcomes


async def test_the_caller_giving_up_is_said_as_such(fakepbx, bridge, roster):
    people, phones = roster
    curator = people["petrova"]
    fakepbx.set_phone("SIP/104", "noanswer")  # the curator's phone rings until the caller gives up
    inbox = await Statuses(bridge.layer, curator.pk).open()
    ringing = await ringing_call(fakepbx, bridge, "SIP/105")

    await press(bridge, curator, {"type": "pickup", "target": phones["anna"].pk})
    await inbox.next(state="queued")
    await fakepbx.cli_hangup(ringing)

    too_late = await inbox.next(state="failed")
    assert (too_late["reason"], too_late["text"]) == ("not_ringing", "Too late: Anna's caller hung up.")


# --- 2. Click-to-call through the Local route -----------------------------------------------------


async def test_click_to_call_ends_with_the_phones_own_leg(driver, driver_pbx, driver_bridge, driver_roster):
    people, _phones = driver_roster
    curator = people["petrova"]
    inbox = await Statuses(driver_bridge.layer, curator.pk).open()

    await press(driver_bridge, curator, {"type": "dial", "number": "5551234"})
    await inbox.next(state="answered")
    [job] = driver_bridge.call_control.following
    await until(lambda: len(job.legs.phone_legs()) == 1)
    [phone_leg] = job.legs.phone_legs()
    if driver == "pjsip":
        # Asterisk optimises the Local pair away: `;1` hangs up (cause 16) while the call goes on.
        await until(lambda: not any(name.startswith("Local/104@") for name in driver_pbx.channels))
        await until(lambda: not any(name.startswith("Local/104@") for name in job.legs.alive))
    assert phone_leg in driver_pbx.channels
    assert driver_bridge.board.conversation_of(device(driver, "104"))["name"] == phone_leg
    await asyncio.sleep(0.2)  # anything the Local legs' hang-ups would say has been said by now
    assert [m["state"] for m in inbox.messages] == ["queued", "answered"]
    [row] = await rows(kind="dial")
    assert row["outcome"] == Outcome.ANSWERED and row["ended_at"] is None

    await driver_pbx.hangup(phone_leg)
    ended = await inbox.next(state="ended")
    assert ended["text"] == "The call to 5551234 ended."
    [row] = await rows(kind="dial")
    assert row["outcome"] == Outcome.ENDED


# --- 5. Busy is busy --------------------------------------------------------------------------------


async def test_a_busy_phone_is_told_busy_on_both_drivers(driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    curator = people["petrova"]
    agent = await driver_pbx.inbound_call(device(driver, "105"))
    await until(lambda: (driver_bridge.board.channel(agent) or {}).get("state") == "up")
    driver_pbx.set_phone(device(driver, "104"), "busy")  # answers 486 Busy Here
    inbox = await Inbox(driver_bridge.layer, curator.pk).open()

    await press(driver_bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    failed = await inbox.next(state="failed")

    assert failed["text"] == "Your phone did not connect: busy."
    [row] = await rows(kind="spy")
    assert row["outcome"] == Outcome.FAILED and "busy" in row["outcome_detail"]


async def test_a_busy_phone_on_click_to_call_is_told_busy(driver, driver_pbx, driver_bridge, driver_roster):
    people, _phones = driver_roster
    driver_pbx.set_phone(device(driver, "104"), "busy")
    inbox = await Statuses(driver_bridge.layer, people["petrova"].pk).open()

    await press(driver_bridge, people["petrova"], {"type": "dial", "number": "5551234"})
    failed = await inbox.next(state="failed")

    assert failed["text"] == "Your phone did not connect: busy."


async def test_without_a_pickup_event_the_answered_elsewhere_hangup_tells(fakepbx, bridge, roster):
    """A site whose manager.conf filters the Pickup event out (`eventfilter=!Event: Pickup`) still
    gets the verdict: the ringing leg went "answered elsewhere" (cause 26) while our phone is up."""
    people, phones = roster
    emit = fakepbx.switch.emit
    fakepbx.switch.emit = lambda klass, pairs: None if ("Event", "Pickup") in pairs else emit(klass, pairs)
    curator = people["petrova"]
    inbox = await Statuses(bridge.layer, curator.pk).open()
    ringing = await ringing_call(fakepbx, bridge, "SIP/105")

    await press(bridge, curator, {"type": "pickup", "target": phones["anna"].pk})
    picked = await inbox.next(reason="picked_up")

    assert picked["text"] == "You answered Anna's call on your phone."
    assert ringing not in fakepbx.channels
    assert all(m["state"] != "failed" for m in inbox.messages)


async def test_a_page_that_connects_learns_where_its_users_call_stands(fakepbx, bridge, roster):
    """A reloaded page (or a second tab) is told the call its user has in flight: a playback still
    playing, a click-to-call on the phone; nothing once it ended."""
    from django.utils import translation

    people, _phones = roster
    curator = people["petrova"]
    inbox = await Statuses(bridge.layer, curator.pk).open()
    await press(bridge, curator, {"type": "dial", "number": "5551234"})
    await inbox.next(state="answered")

    with translation.override("ru"):  # the reloaded page's language
        [message] = bridge.call_control.sessions_of(curator.pk)
    assert (message["type"], message["kind"], message["state"], message["reason"]) == (
        "call.status", "dial", "answered", "live")
    assert message["number"] == "5551234" and message["text"].startswith("Ваш телефон ответил")
    assert bridge.call_control.sessions_of(people["anna"].pk) == []

    [job] = bridge.call_control.following
    for leg in job.legs.phone_legs():
        await fakepbx.hangup(leg)
    await inbox.next(state="ended")
    assert bridge.call_control.sessions_of(curator.pk) == []
