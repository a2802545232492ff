"""AMI framing against the real Asterisk 20 captures: whatever the TCP chunking, the same messages;
bad input is refused loudly (ProtocolError / InjectionError), never guessed around or buffered
without bound."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervision.ami.protocol import (
    MAX_FRAME,
    MAX_LINE,
    InjectionError,
    Message,
    Parser,
    ProtocolError,
    banner,
    encode_action,
    encode_message,
)
from tests.captures import capture_bytes, capture_messages, sent_messages, server_capture_names

SERVER_CAPTURES = server_capture_names()


def feed_in_chunks(data, sizes, **parser_options):
    """Parse `data` cut into consecutive chunks of the given sizes (the rest as a last chunk)."""
    parser = Parser(**parser_options)
    messages, offset = [], 0
    for size in sizes:
        messages += parser.feed(data[offset : offset + size])
        offset += size
    messages += parser.feed(data[offset:])
    return parser, messages


def feed_byte_by_byte(data, **parser_options):
    parser = Parser(**parser_options)
    messages = []
    for index in range(len(data)):
        messages += parser.feed(data[index : index + 1])
    return parser, messages


def test_captures_are_found():
    assert len(SERVER_CAPTURES) >= 30
    assert "asterisk20-sip-chanspy-listen" in SERVER_CAPTURES


@pytest.mark.parametrize("name", SERVER_CAPTURES)
def test_capture_frames_the_same_in_one_chunk_and_byte_by_byte(name):
    data = capture_bytes(name)
    whole = Parser()
    in_one_chunk = whole.feed(data)
    # Asterisk 20 greets with AMI 9.0.0, Asterisk 22 with 11.0.0.
    first_line = data.split(b"\r\n", 1)[0].decode()
    assert whole.banner == first_line and first_line.startswith("Asterisk Call Manager/")
    # Every frame of a capture is complete: what was parsed is exactly what the server sent (but
    # for the bare LF Asterisk 22 puts at the end of one Message line).
    sent = data[len(first_line) + 2 :].replace(b"\n\r\n\r\n", b"\r\n\r\n")
    assert b"".join(encode_message(m) for m in in_one_chunk) == sent
    one_by_one, messages = feed_byte_by_byte(data)
    assert one_by_one.banner == whole.banner
    assert messages == in_one_chunk


@pytest.mark.parametrize("name", ["asterisk20-banner-login-ping", "asterisk20-chanspy-listen"])
def test_client_side_captures_parse_as_actions(name):
    actions = sent_messages(name)
    assert actions[0]["Action"] == "Login"
    # The one message without Action is the capture's deliberate `ActionID: noaction-1` probe.
    assert [a.pairs for a in actions if "Action" not in a] in ([], [[("ActionID", "noaction-1")]])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(SERVER_CAPTURES), sizes=st.lists(st.integers(1, 700), max_size=40))
def test_random_chunking_gives_the_same_messages(name, sizes):
    data = capture_bytes(name)
    _banner, expected = capture_messages(name)
    parser, messages = feed_in_chunks(data, sizes)
    assert parser.banner == _banner
    assert messages == expected


def test_a_bare_lf_before_the_crlf_is_not_part_of_the_value():
    # Exactly as Asterisk 22 answers PJSIPShowContacts with no registered contact.
    data = banner() + b"Response: Error\r\nActionID: contacts-1\r\nMessage: No Contacts found\n\r\n\r\n"
    data += b"Event: FullyBooted\r\nPrivilege: system,all\r\n\r\n"
    messages = Parser().feed(data)
    assert [(m.response, m.event, m.get("Message")) for m in messages] == [
        ("Error", None, "No Contacts found"), (None, "FullyBooted", None)]


def test_many_frames_in_one_chunk_and_banner_first():
    data = banner() + b"".join(
        encode_message(Message.of(("Event", "Newexten"), ("Channel", f"SIP/10{i}-0000000{i}"))) for i in range(5)
    )
    parser = Parser()
    messages = parser.feed(data)
    assert parser.banner == "Asterisk Call Manager/9.0.0"
    assert [m["Channel"] for m in messages] == [f"SIP/10{i}-0000000{i}" for i in range(5)]
    assert all(m.event == "Newexten" for m in messages)


def test_banner_split_across_chunks_and_no_message_before_it():
    parser = Parser()
    assert parser.feed(b"Asterisk Call Man") == []
    assert parser.banner is None
    assert parser.feed(b"ager/9.0.0\r") == []
    assert parser.feed(b"\nResponse: Success\r\n\r\n")[0].response == "Success"
    assert parser.banner == "Asterisk Call Manager/9.0.0"


def test_repeated_keys_are_kept_in_order():
    # A real Originate as sent by the client, with two Variable lines.
    actions = sent_messages("asterisk20-chanspy-listen")
    spy = next(a for a in actions if a.get("ActionID", "").startswith("spy-"))
    assert spy.getall("Variable") == ['SIPADDHEADER="Call-Info:\\;answer-after=0"']
    data = b"Action: Originate\r\nVariable: A=1\r\nChannel: SIP/104\r\nVariable: B=2\r\nVariable: A=3\r\n\r\n"
    (message,) = Parser(expect_banner=False).feed(data)
    assert message.getall("Variable") == ["A=1", "B=2", "A=3"]
    assert message["Variable"] == "A=1"
    assert [key for key, _ in message.pairs] == ["Action", "Variable", "Channel", "Variable", "Variable"]
    assert encode_message(message) == data


def test_command_output_lines_are_all_kept():
    _banner, messages = capture_messages("asterisk20-command-core-show-version")
    command = next(m for m in messages if m.get("Message") == "Command output follows")
    assert any("Asterisk 20.20.1" in line for line in command.getall("Output"))


def test_bad_utf8_becomes_replacement_character():
    data = b"Event: NewCallerid\r\nCallerIDName: Jos\xe9 \xff\xfe\r\nChannel: SIP/104-00000001\r\n\r\n"
    (message,) = Parser(expect_banner=False).feed(data)
    assert message["CallerIDName"] == "Jos\ufffd \ufffd\ufffd"
    assert message["Channel"] == "SIP/104-00000001"


def test_multibyte_character_split_between_chunks_survives():
    data = "Event: NewCallerid\r\nCallerIDName: Пётр\r\n\r\n".encode()
    cut = data.index("ё".encode()) + 1  # inside the two bytes of ё
    _parser, messages = feed_in_chunks(data, [cut], expect_banner=False)
    assert messages[0]["CallerIDName"] == "Пётр"


def test_bad_utf8_in_banner_does_not_raise():
    parser = Parser()
    parser.feed(b"Asterisk Call Manager/\xff\r\n")
    assert parser.banner == "Asterisk Call Manager/\ufffd"


@pytest.mark.parametrize(
    "fields",
    [
        {"Channel": "SIP/104\r\nAction: Hangup"},
        {"Data": "Local/105,qx\nApplication: System"},
        {"Variable": "A=1\rB=2"},
        {"Channel\r\nAction: Command": "x"},
        {"Bad\nKey": "x"},
        {"Key: With colon": "x"},
        {"": "empty key"},
        {" Spaced": "x"},
    ],
)
def test_encode_action_refuses_header_injection(fields):
    with pytest.raises(InjectionError):
        encode_action("Originate", fields)


def test_encode_action_refuses_injection_in_action_and_action_id():
    with pytest.raises(InjectionError):
        encode_action("Ping\r\nAction: Command", {})
    with pytest.raises(InjectionError):
        encode_action("Ping", {}, action_id="a\r\nCommand: core restart now")


def test_encode_action_keeps_repeats_and_order():
    data = encode_action("Originate", [("Channel", "SIP/104"), ("Variable", "A=1"), ("Variable", "B=2")], "o-1")
    assert data == (
        b"Action: Originate\r\nActionID: o-1\r\nChannel: SIP/104\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    )
    (message,) = Parser(expect_banner=False).feed(data)
    assert message.action_id == "o-1"


def test_line_over_the_limit_raises():
    parser = Parser(expect_banner=False)
    with pytest.raises(ProtocolError):
        parser.feed(b"Output: " + b"x" * (MAX_LINE + 10) + b"\r\n\r\n")


def test_unterminated_line_raises_instead_of_buffering():
    parser = Parser(expect_banner=False)
    parser.feed(b"Event: Newexten\r\nAppData: ")
    with pytest.raises(ProtocolError):
        for _ in range(MAX_LINE // 1024 + 2):
            parser.feed(b"y" * 1024)


def test_unterminated_banner_raises():
    parser = Parser()
    with pytest.raises(ProtocolError):
        parser.feed(b"A" * (MAX_LINE + 1))


def test_frame_over_the_limit_raises_even_with_short_lines():
    parser = Parser(expect_banner=False)
    line = b"Output: " + b"z" * 100 + b"\r\n"
    with pytest.raises(ProtocolError):
        for _ in range(MAX_FRAME // len(line) + 2):
            parser.feed(line)


def test_frame_over_the_limit_in_one_chunk_raises():
    line = b"Output: " + b"z" * 100 + b"\r\n"
    with pytest.raises(ProtocolError):
        Parser(expect_banner=False).feed(line * (MAX_FRAME // len(line) + 2) + b"\r\n")


def test_custom_limits_apply():
    parser = Parser(expect_banner=False, max_line=32, max_frame=64)
    assert parser.feed(b"Event: Short\r\n\r\n")[0].event == "Short"
    with pytest.raises(ProtocolError):
        parser.feed(b"Event: " + b"q" * 40 + b"\r\n\r\n")


@pytest.mark.parametrize(
    "frame",
    [
        b"garbage\r\n\r\n",
        b"Event: Newstate\r\ngarbage without a colon\r\n\r\n",
        b": no key\r\n\r\n",
        b" Leading:space\r\n\r\n",
        b"Event: Newstate\r\n\r\n\r\nstray\r\n\r\n",
    ],
)
def test_malformed_lines_raise(frame):
    with pytest.raises(ProtocolError):
        Parser(expect_banner=False).feed(frame)


def test_values_without_space_or_empty_are_accepted():
    (message,) = Parser(expect_banner=False).feed(b"Event: Newexten\r\nAccountCode:\r\nExten:105\r\n\r\n")
    assert message["AccountCode"] == ""
    assert message["Exten"] == "105"


def test_empty_value_with_trailing_space_as_asterisk_sends_it():
    (message,) = Parser(expect_banner=False).feed(b"Event: Newchannel\r\nAccountCode: \r\n\r\n")
    assert message["AccountCode"] == ""


def test_strict_mode_does_not_end_a_frame_on_bare_lf():
    parser = Parser(expect_banner=False)
    assert parser.feed(b"Action: Ping\n\n") == []


def test_lenient_mode_accepts_bare_lf_and_blank_keepalives():
    parser = Parser(expect_banner=False, lenient_newlines=True)
    assert parser.feed(b"\n") == []
    messages = parser.feed(b"Action: Ping\nActionID: p-1\n\nAction: Logoff\r\n\r\n")
    assert [(m["Action"], m.action_id) for m in messages] == [("Ping", "p-1"), ("Logoff", None)]


def test_lenient_mode_lf_split_from_cr_between_chunks():
    parser = Parser(expect_banner=False, lenient_newlines=True)
    assert parser.feed(b"Action: Ping\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\n")[0]["Action"] == "Ping"


lenient_text = st.lists(
    st.tuples(
        st.sampled_from(["Action", "ActionID", "Channel", "Variable"]),
        st.text(alphabet="abc/-@;,=1234 ", max_size=12),
        st.sampled_from(["\n", "\r\n"]),
        st.sampled_from(["", "\n", "\r\n", "\n\n"]),  # blank keep-alive lines typed between frames
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=80, deadline=None)
@given(frames=lenient_text, sizes=st.lists(st.integers(1, 9), max_size=30))
def test_lenient_mode_same_messages_whatever_the_chunking(frames, sizes):
    data = "".join(f"{key}: {value}{eol}{eol}{blank}" for key, value, eol, blank in frames).encode()
    _parser, whole = feed_in_chunks(data, [], expect_banner=False, lenient_newlines=True)
    _parser, chunked = feed_in_chunks(data, sizes, expect_banner=False, lenient_newlines=True)
    _parser, single = feed_byte_by_byte(data, expect_banner=False, lenient_newlines=True)
    expected = [(key, value.strip()) for key, value, _eol, _blank in frames]
    assert [(m.pairs[0][0], m.pairs[0][1].strip()) for m in whole] == expected
    assert chunked == whole
    assert single == whole


def test_lenient_mode_blank_line_right_behind_a_frame_in_the_same_chunk():
    parser = Parser(expect_banner=False, lenient_newlines=True)
    messages = parser.feed(b"Action: Ping\n\n\n\nAction: Logoff\n\n\n")
    assert [m["Action"] for m in messages] == ["Ping", "Logoff"]
    assert parser.feed(b"Action: Ping\n\n")[0]["Action"] == "Ping"
