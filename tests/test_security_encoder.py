"""The AMI encoder itself refuses every control character in a key or value (NUL, tab, ESC, DEL,
a lone CR or LF ...): the only ones a frame holds are the CRLFs it writes; what it does write
parses back to the same fields."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervision.ami.protocol import InjectionError, Parser, encode_action

CONTROLS = [chr(code) for code in [*range(0x20), 0x7F, 0xD800, 0xDFFF]]


@pytest.mark.parametrize("control", CONTROLS, ids=[f"0x{ord(c):02x}" for c in CONTROLS])
@pytest.mark.parametrize("where", ["value", "key", "action", "action_id"])
def test_every_control_character_is_refused(control, where):
    text = f"SIP/104{control}x"
    with pytest.raises(InjectionError):
        if where == "value":
            encode_action("Originate", {"Channel": text})
        elif where == "key":
            encode_action("Originate", {f"Chan{control}nel": "SIP/104"})
        elif where == "action":
            encode_action(f"Ping{control}", {})
        else:
            encode_action("Ping", {}, action_id=text)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, blacklist_characters="\x7f", blacklist_categories=("Cs",)),
               max_size=40))
def test_printable_values_survive_the_round_trip(value):
    (message,) = Parser(expect_banner=False).feed(encode_action("UserEvent", {"UserEvent": "probe", "Data": value}))
    assert message.get("Data") == value
