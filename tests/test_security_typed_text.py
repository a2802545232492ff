"""Whatever a user types into a press (the dial box) is refused and audited, never a server error:
control characters, NUL included (PostgreSQL refuses it in text), are stored as U+FFFD."""

import pytest

from tests.live_stack import Statuses, bridge, originates, press, roster, rows  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.mark.parametrize("number", ["1\x002", "\x1b[31m5551234", "555\r1234", "\x7f", "555\ud800"])
async def test_control_characters_in_a_dialled_number_are_refused_and_audited(fakepbx, bridge, roster, number):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": number})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "bad_number"
    assert originates(fakepbx) == []
    [row] = await rows(kind="dial")
    assert (row["outcome"], row["reason"]) == ("denied", "bad_number")
    assert not any(ord(character) < 32 or ord(character) == 127 or 0xD800 <= ord(character) <= 0xDFFF
                   for character in row["target_label"])
    assert "\ufffd" in row["target_label"]


# --- the socket refuses such text before the bridge hears of it ------------------------------------

from tests.live_stack import channel_layer, open_dashboard  # noqa: E402,F401
from tests.test_security_sockets import drain_bridge, nothing_reached_the_bridge  # noqa: E402


@pytest.mark.parametrize("frame", [
    '{"type": "dial", "number": "555\\ud800"}',
    '{"type": "dial", "number": "555\\u0000"}',
    '{"type": "dial", "number": "555\\u202e1"}',
    '{"type": "dial", "number": "555\\r\\n1"}',
])
async def test_unprintable_text_is_refused_at_the_socket(channel_layer, roster, frame):
    users, _phones = roster
    socket = await open_dashboard(users["anna"])
    await drain_bridge(channel_layer)
    await socket.send_to(text_data=frame)
    while True:
        reply = await socket.receive_json_from(timeout=5)
        if reply["type"] == "error":
            break
    assert reply["code"] == "bad_field"
    assert await nothing_reached_the_bridge(channel_layer)
    await socket.disconnect()
