"""Answer a ringing call from the web (PickupChan) on the simulated PBX over TCP: the real AMI
client, bridge and board, the exact Originate bytes, the outcome in words and the audit rows.
Every refused press is audited and sends nothing to the PBX."""

import pytest
from asgiref.sync import sync_to_async

from tests import live_stack
from tests.live_stack import (  # noqa: F401
    AUTOANSWER,
    Statuses,
    bridge,
    originates,
    raw_originate,
    ringing_call,
    roster,
    rows,
    take_permission,
    until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def press(bridge, user, command, client="192.0.2.9"):
    await live_stack.press(bridge, user, command, client)


async def test_a_trainee_answers_his_own_ringing_call_on_his_phone(fakepbx, bridge, roster):
    people, phones = roster
    anna = people["anna"]
    inbox = await Statuses(bridge.layer, anna.pk).open()
    ringing = await ringing_call(fakepbx, bridge, "SIP/105")

    await press(bridge, anna, {"type": "pickup", "target": phones["anna"].pk})
    answered = await inbox.next(state="answered", reason="picked_up")

    [originate] = originates(fakepbx)
    assert raw_originate(fakepbx) == [(
        f"Action: Originate\r\nActionID: {originate['ActionID']}\r\nChannel: SIP/105\r\nApplication: PickupChan\r\n"
        f"Data: {ringing}\r\nCallerID: Pickup <105>\r\nAsync: true\r\n{AUTOANSWER}\r\n"
    ).encode()]
    assert answered["text"] == "You answered your ringing call on this phone."  # her own call, in her words
    assert answered["reason"] == "picked_up" and answered["target"] == phones["anna"].pk
    # The simulator: the ringing leg is gone, the call lives on in the phone's new channel.
    await until(lambda: ringing not in fakepbx.channels)
    [job] = bridge.call_control.following
    [picker] = job.legs.phone_legs()
    assert picker in fakepbx.channels and picker.startswith("SIP/105-")
    [row] = await rows(kind="pickup")
    assert (row["outcome"], row["target_channel"], row["from_device"], row["target_device"]) == (
        "answered", ringing, "SIP/105", "SIP/105")
    assert row["user_id"] == anna.pk and row["target_user_id"] == anna.pk and row["client_address"] == "192.0.2.9"

    await fakepbx.hangup(picker)
    ended = await inbox.next(state="ended")
    assert ended["text"] == "Anna's call ended."
    assert [(m["state"], m["reason"]) for m in inbox.messages if m["state"] != "queued"] in (
        [("answered", "ok"), ("answered", "picked_up"), ("ended", "ok")],  # the response, then the Pickup
        [("answered", "picked_up"), ("ended", "ok")],  # the Pickup first: nothing to wait for
    )
    [row] = await rows(kind="pickup")
    assert row["outcome"] == "ended" and row["ended_at"] is not None


async def test_a_curator_answers_his_trainees_ringing_call(fakepbx, bridge, roster):
    people, phones = roster
    curator = people["petrova"]
    inbox = await Statuses(bridge.layer, curator.pk).open()
    ringing = await ringing_call(fakepbx, bridge, "SIP/105")

    await press(bridge, curator, {"type": "pickup", "target": phones["anna"].pk})
    await inbox.next(state="answered")

    [originate] = originates(fakepbx)
    assert (originate["Channel"], originate["Data"], originate["CallerID"]) == ("SIP/104", ringing, "Pickup <104>")
    await until(lambda: ringing not in fakepbx.channels)
    [row] = await rows(kind="pickup")
    assert (row["outcome"], row["from_device"], row["target_device"], row["target_user_id"]) == (
        "answered", "SIP/104", "SIP/105", people["anna"].pk)


@pytest.mark.parametrize("who, whose, reason, text", [
    ("smirnov", "anna", "not_your_team", "Anna is not in your team."),  # another curator's trainee
    ("boris", "anna", "not_your_team", "Anna is not in your team."),  # a fellow trainee's call
    ("anna", "petrova", "not_your_team", "Olga is not in your team."),  # a trainee and his curator's phone
])
async def test_a_ringing_call_that_is_not_yours_is_refused(fakepbx, bridge, roster, who, whose, reason, text):
    people, phones = roster
    inbox = await Statuses(bridge.layer, people[who].pk).open()
    await ringing_call(fakepbx, bridge, phones[whose].device)

    await press(bridge, people[who], {"type": "pickup", "target": phones[whose].pk})
    denied = await inbox.next(state="denied")

    assert (denied["reason"], denied["text"]) == (reason, text)
    assert originates(fakepbx) == []
    [row] = await rows(kind="pickup")
    assert (row["outcome"], row["reason"], row["user_id"]) == ("denied", reason, people[who].pk)


async def test_a_call_that_no_longer_rings_is_refused_before_anything_is_sent(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Statuses(bridge.layer, people["petrova"].pk).open()
    agent = await fakepbx.inbound_call("SIP/105")  # answered by Anna herself
    await until(lambda: (bridge.board.channel(agent) or {}).get("state") == "up")

    await press(bridge, people["petrova"], {"type": "pickup", "target": phones["anna"].pk})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "not_ringing"
    assert denied["text"] == "Nothing rings on Anna's phone any more: answered elsewhere or hung up."
    assert originates(fakepbx) == []
    [row] = await rows(kind="pickup")
    assert row["outcome"] == "denied" and row["reason"] == "not_ringing"


async def test_too_late_when_the_call_stops_ringing_before_the_phone_picks_up(fakepbx, bridge, roster):
    """PickupChan with nothing to take still answers (Reason 4): the response names the picker's
    own leg and no Pickup event comes."""
    people, phones = roster
    curator = people["petrova"]
    fakepbx.set_phone("SIP/104", "noanswer")  # the curator's phone rings until the test answers it
    inbox = await Statuses(bridge.layer, curator.pk).open()
    ringing = await ringing_call(fakepbx, bridge, "SIP/105")

    await press(bridge, curator, {"type": "pickup", "target": phones["anna"].pk})
    await inbox.next(state="queued")
    await until(lambda: any(c["state"] == "ringing" for c in bridge.board.channels_of("SIP/104")))
    await fakepbx.hangup(ringing)  # the customer gives up
    [picker] = [name for name in fakepbx.channels if name.startswith("SIP/104-")]
    fakepbx.switch._ring_waits[fakepbx.switch.find(picker)].set_result(("answer", None))  # the curator answers

    too_late = await inbox.next(state="failed")
    assert too_late["reason"] == "not_ringing"
    assert too_late["text"] == "Too late: Anna's caller hung up."
    [row] = await rows(kind="pickup")
    assert (row["outcome"], row["reason"], row["target_channel"]) == ("failed", "not_ringing", ringing)


async def test_the_pickers_phone_busy_is_said_in_words(fakepbx, bridge, roster):
    people, phones = roster
    fakepbx.set_phone("SIP/104", "busy")
    inbox = await Statuses(bridge.layer, people["petrova"].pk).open()
    await ringing_call(fakepbx, bridge, "SIP/105")

    await press(bridge, people["petrova"], {"type": "pickup", "target": phones["anna"].pk})
    failed = await inbox.next(state="failed")

    assert failed["text"] == "Your phone did not connect: busy."
    [row] = await rows(kind="pickup")
    assert row["outcome"] == "failed"


async def test_without_the_pickup_permission_nothing_is_sent(fakepbx, bridge, roster):
    people, phones = roster
    await take_permission("trainee", "pickup")
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()
    await ringing_call(fakepbx, bridge, "SIP/105")

    await press(bridge, people["anna"], {"type": "pickup", "target": phones["anna"].pk})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "no_permission"
    assert originates(fakepbx) == []


@pytest.mark.parametrize("target", ["1", None, -3, True, 10**6])
async def test_a_forged_or_unknown_target_is_refused(fakepbx, bridge, roster, target):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["petrova"].pk).open()

    await press(bridge, people["petrova"], {"type": "pickup", "target": target})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "not_found"
    assert originates(fakepbx) == []
    [row] = await rows(kind="pickup")
    assert row["outcome"] == "denied"


async def test_the_per_card_pickup_flag_follows_the_policy(roster):
    """The consumer's cards carry `pickup` where the policy allows it (the page shows the button
    only while that phone rings)."""
    from supervision import audience

    people, phones = roster

    @sync_to_async
    def flags(user):
        view = audience.build_view(user)
        return {e["device"]: e["pickup"] for person in [view.me, *view.people] for e in person["extensions"]}

    assert await flags(people["petrova"]) == {"SIP/104": True, "SIP/105": True, "SIP/1050": True}
    assert await flags(people["anna"]) == {"SIP/105": True, "SIP/104": False}
