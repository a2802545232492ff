"""Whatever a user types into a press (the dial box) is refused and audited, never a server error:
control characters, NUL included (PostgreSQL refuses it in text), are stored as U+FFFD."""

import pytest

from tests.live_stack import Statuses, bridge, originates, press, roster, rows  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.mark.parametrize("number", ["1\x002", "\x1b[31m5551234", "555\r1234", "\x7f"])
async def test_control_characters_in_a_dialled_number_are_refused_and_audited(fakepbx, bridge, roster, number):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": number})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "bad_number"
    assert originates(fakepbx) == []
    [row] = await rows(kind="dial")
    assert (row["outcome"], row["reason"]) == ("denied", "bad_number")
    assert not any(ord(character) < 32 or ord(character) == 127 for character in row["target_label"])
    assert "\ufffd" in row["target_label"]
