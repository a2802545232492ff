"""Click-to-call on the simulated PBX over TCP: the article's Originate into the dial context, the
outcome in words, the audit rows; a number that is not one is refused and never reaches AMI."""

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from accounts.models import Role, User
from tests.live_stack import (  # noqa: F401
    AUTOANSWER,
    Statuses,
    bridge,
    originates,
    press,
    press_on_page,
    raw_originate,
    roster,
    rows,
    take_permission,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_a_trainee_calls_a_number_from_his_phone(fakepbx, bridge, roster):
    people, phones = roster
    anna = people["anna"]
    inbox = await Statuses(bridge.layer, anna.pk).open()

    await press(bridge, anna, {"type": "dial", "number": "5551234"})
    answered = await inbox.next(state="answered")

    [originate] = originates(fakepbx)
    assert raw_originate(fakepbx) == [(
        f"Action: Originate\r\nActionID: {originate['ActionID']}\r\nChannel: SIP/105\r\nContext: from-internal\r\n"
        f"Exten: 5551234\r\nPriority: 1\r\nCallerID: 105 <105>\r\nAsync: true\r\n{AUTOANSWER}\r\n"
    ).encode()]
    assert answered["text"] == "Your phone answered; calling 5551234." and answered["number"] == "5551234"
    [row] = await rows(kind="dial")
    assert (row["outcome"], row["target_label"], row["from_device"], row["user_id"]) == (
        "answered", "5551234", "SIP/105", anna.pk)
    leg = row["spy_channel"]
    assert leg.startswith("SIP/105-") and leg in fakepbx.channels

    await fakepbx.hangup(leg)
    ended = await inbox.next(state="ended")
    assert ended["text"] == "The call to 5551234 ended."
    assert inbox.states() == ["queued", "answered", "ended"]
    [row] = await rows(kind="dial")
    assert row["outcome"] == "ended"


@pytest.mark.parametrize("number", [
    "", "abc", "555 1234", "555-1234", "1" * 33, "5551234\r\nAction: Hangup", "_X.", "5551234@default",
    "1,2", "１２３", "s", "+7(495)2293042",
])
async def test_anything_but_a_number_is_refused_and_never_reaches_ami(fakepbx, bridge, roster, number):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": number})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "bad_number"
    assert denied["text"] == "That is not a number to call: use digits, +, * and # (1 to 32)."
    assert originates(fakepbx) == []
    [row] = await rows(kind="dial")
    assert (row["outcome"], row["reason"]) == ("denied", "bad_number")


@override_settings(DIAL_NUMBER_PATTERN=r"[0-9+*#]{1,32}")  # a site that lets them through (default: digits only)
@pytest.mark.parametrize("number", ["+74952293042", "*97", "#1", "1" * 32])
async def test_plus_star_hash_and_32_digits_are_numbers(fakepbx, bridge, roster, number):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": number})
    first = await inbox.next()  # queued, or the PBX's own refusal: the simulated dialplan is digits only

    assert first["state"] in ("queued", "failed")
    [originate] = originates(fakepbx)
    assert originate["Exten"] == number


async def test_the_dial_context_comes_from_the_settings_and_a_pbx_refusal_is_said(fakepbx, bridge, roster):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    with override_settings(AMI_DIAL_CONTEXT="sales"):
        await press(bridge, people["anna"], {"type": "dial", "number": "5551234"})
    failed = await inbox.next(state="failed")

    [originate] = originates(fakepbx)
    assert originate["Context"] == "sales"
    assert failed["text"] == "The PBX refused: Extension does not exist."
    [row] = await rows(kind="dial")
    assert row["outcome"] == "failed"


async def test_a_phone_that_does_not_answer_is_said_in_words(fakepbx, bridge, roster):
    people, _phones = roster
    fakepbx.set_phone("SIP/105", "busy")
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": "5551234"})
    failed = await inbox.next(state="failed")

    assert failed["text"] == "Your phone did not connect: busy."


async def test_without_the_dial_permission_nothing_is_sent(fakepbx, bridge, roster):
    people, _phones = roster
    await take_permission("trainee", "dial")
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": "5551234"})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "no_permission"
    assert originates(fakepbx) == []


async def test_calling_from_someone_elses_phone_is_refused(fakepbx, bridge, roster):
    people, phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": "5551234", "from": phones["petrova"].pk})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "no_phone"
    assert originates(fakepbx) == []


async def test_a_user_without_a_phone_is_told_so(fakepbx, bridge, roster):
    nophone = await sync_to_async(User.objects.create_user)(username="nophone", role=Role.CURATOR)
    inbox = await Statuses(bridge.layer, nophone.pk).open()

    await press(bridge, nophone, {"type": "dial", "number": "5551234"})
    denied = await inbox.next(state="denied")

    assert denied["text"] == "You have no phone in the roster to call from."
    assert originates(fakepbx) == []


async def test_a_second_press_while_the_phone_rings_is_refused(fakepbx, bridge, roster):
    people, _phones = roster
    fakepbx.set_phone("SIP/105", "noanswer")
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": "5551234"})
    await inbox.next(state="queued")
    await press(bridge, people["anna"], {"type": "dial", "number": "5559999"})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "busy"
    assert len(originates(fakepbx)) == 1


async def test_a_russian_press_hears_the_call_answered_and_ended_in_russian(fakepbx, bridge, roster):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press_on_page(bridge, people["anna"], {"type": "dial", "number": "5551234"}, "ru")
    answered = await inbox.next(state="answered")
    [row] = await rows(kind="dial")
    await fakepbx.hangup(row["spy_channel"])
    ended = await inbox.next(state="ended")

    assert answered["text"] == "Ваш телефон ответил; звоним на 5551234."
    assert ended["text"] == "Звонок на 5551234 завершён."
