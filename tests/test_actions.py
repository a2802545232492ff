"""The AMI actions built from roster objects: byte for byte what the article and the captures send,
and nothing that could split a header, a frame or ChanSpy's argument list."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Extension
from supervision import actions
from supervision.ami.protocol import encode_action
from tests.captures import sent_messages


def phone(technology="SIP", resource="104", preset="call-info", context=""):
    # Unsaved: the builders are pure and read only these attributes.
    return Extension(technology=technology, resource=resource, phone_preset=preset, originate_context=context)


def test_listen_on_the_exact_channel_is_the_captured_originate():
    """The exact-name capture from a real Asterisk 20, pair for pair."""
    captured = next(m for m in sent_messages("asterisk20-chanspy-exact-name") if m.get("Application") == "ChanSpy")
    fields = actions.spy_originate(
        phone(technology="PJSIP", context="phones"),
        "Local/105@phones-00000008;1",
        "listen",
        allow_switch=False,
        action_id="spy-exact-name-105",
    )
    # The rig's Local phone took the chan_sip header; a PJSIP site's context reads AUTOANSWER instead.
    # The product adds ChanSpy's `E` to the captured options (the spy ends with the spied call).
    expected = [(key, value + "E" if key == "Data" else value) for key, value in list(captured.pairs)[:-1]]
    assert [("Action", "Originate"), *fields[:-1]] == expected
    assert fields[-1] == ("Variable", "AUTOANSWER=call-info")


def test_a_sip_spyer_sends_the_captured_auto_answer_header():
    captured = next(m for m in sent_messages("asterisk20-sip-chanspy-listen") if m.get("Application") == "ChanSpy")
    fields = actions.spy_originate(phone(), "SIP/105-00000001", "listen", allow_switch=False, action_id="spy-listen-105")
    assert dict(fields)["Channel"] == captured["Channel"] == "SIP/104"
    assert [pair for pair in fields if pair[0] == "Variable"] == [("Variable", captured["Variable"])]


@pytest.mark.parametrize("mode, options", [("listen", "qxE"), ("whisper", "wxE"), ("barge", "qBxE")])
def test_sip_spyer_per_mode(mode, options):
    fields = actions.spy_originate(
        phone(), "SIP/105-0000003c", mode, allow_switch=False, action_id="spy-7-abc"
    )
    assert fields == [
        ("Channel", "SIP/104"),
        ("Application", "ChanSpy"),
        ("Data", f"SIP/105-0000003c,{options}"),
        ("CallerID", "Spy-105 <105>"),
        ("Async", "true"),
        ("ActionID", "spy-7-abc"),
        ("Variable", 'SIPADDHEADER="Call-Info:\\;answer-after=0"'),
    ]
    frame = encode_action("Originate", fields)
    assert f"Data: SIP/105-0000003c,{options}\r\n".encode() in frame
    assert b'Variable: SIPADDHEADER="Call-Info:\\;answer-after=0"\r\n' in frame


@pytest.mark.parametrize("mode, options", [("listen", "qxEd"), ("whisper", "wxEd"), ("barge", "qBxEd")])
def test_the_keypad_switch_only_when_allowed(mode, options):
    fields = dict(actions.spy_originate(phone(), "SIP/105-0000003c", mode, allow_switch=True, action_id="a"))
    assert fields["Data"] == f"SIP/105-0000003c,{options}"


def test_a_configured_d_is_removed_when_the_switch_is_not_allowed(settings):
    settings.SPY_OPTIONS = {**settings.SPY_OPTIONS, "listen": "qxd"}
    fields = dict(actions.spy_originate(phone(), "SIP/105-0000003c", "listen", allow_switch=False, action_id="a"))
    assert fields["Data"] == "SIP/105-0000003c,qxE"


def test_every_spy_leaves_when_the_spied_call_ends(settings):
    """`E` on every spy, configured or not: without it the spy leg stays up once the spied call is
    gone, and a user without the AMI Hangup right could never end it (`asterisk20-restricted-stop-*`)."""
    settings.SPY_OPTIONS = {**settings.SPY_OPTIONS, "whisper": "wEx"}
    listen = dict(actions.spy_originate(phone(), "SIP/105-0000003c", "listen", allow_switch=False))["Data"]
    whisper = dict(actions.spy_originate(phone(), "SIP/105-0000003c", "whisper", allow_switch=True))["Data"]
    assert (listen, whisper) == ("SIP/105-0000003c,qxE", "SIP/105-0000003c,wExd")


def test_the_exact_name_never_is_a_bare_prefix():
    """`SIP/105` would also catch `SIP/1050-...`; the builder always sends the suffixed name."""
    data = dict(actions.spy_originate(phone(), "SIP/105-0000003c", "listen", allow_switch=False, action_id="a"))["Data"]
    target = data.split(",")[0]
    assert target == "SIP/105-0000003c"
    assert not "SIP/1050-00000001".startswith(target)


@pytest.mark.parametrize(
    "spyer, variables",
    [
        (phone(preset="alert-info"), [("Variable", 'SIPADDHEADER="Alert-Info: Ring Answer"')]),
        (phone(preset="none"), []),
        (phone(technology="PJSIP", context="phones"), [("Variable", "AUTOANSWER=call-info")]),
        (phone(technology="PJSIP", preset="alert-info", context="phones"), [("Variable", "AUTOANSWER=alert-info")]),
    ],
)
def test_auto_answer_follows_the_phone_preset(spyer, variables):
    fields = actions.spy_originate(spyer, "SIP/105-0000003c", "listen", allow_switch=False, action_id="a")
    assert [pair for pair in fields if pair[0] == "Variable"] == variables


def test_a_pjsip_spyer_rings_through_local():
    fields = dict(actions.spy_originate(phone("PJSIP", context="phones"), "PJSIP/105-00000012", "barge",
                                        allow_switch=False, action_id="a"))
    assert fields["Channel"] == "Local/104@phones"
    assert fields["Data"] == "PJSIP/105-00000012,qBxE"
    assert fields["CallerID"] == "Spy-105 <105>"


@pytest.mark.parametrize(
    "name, resource",
    [("SIP/105-0000003c", "105"), ("Local/105@phones-00000002;1", "105"), ("PJSIP/agent.7-00000001", "agent.7")],
)
def test_channel_resource(name, resource):
    assert actions.channel_resource(name) == resource


BAD_CHANNELS = [
    "SIP/105-1,qBx",  # would add options
    "SIP/105-1|qB",  # old argument separator
    "SIP/105-1\r\nAction: Command",  # header injection
    "SIP/105-1\nCommand: core restart now",
    "SIP/105-1(x)",
    "SIP/105 -1",
    "SIP/105-1\x00",
    "",
    "105",  # no technology: not a channel the board could have named
    None,
    "SIP/" + "1" * 300,
]


@pytest.mark.parametrize("name", BAD_CHANNELS)
def test_an_unsafe_target_channel_is_refused(name):
    with pytest.raises(actions.UnsafeValue):
        actions.spy_originate(phone(), name, "listen", allow_switch=False, action_id="a")


@pytest.mark.parametrize("name", BAD_CHANNELS)
def test_hangup_and_dtmf_refuse_unsafe_channels(name):
    with pytest.raises(actions.UnsafeValue):
        actions.hangup_action(name)
    with pytest.raises(actions.UnsafeValue):
        actions.switch_dtmf(name, "listen")


@given(st.text(min_size=1, max_size=40).filter(lambda s: any(c in s for c in ",|()\r\n\x00 ")))
def test_no_channel_with_a_separator_or_line_break_passes(suffix):
    with pytest.raises(actions.UnsafeValue):
        actions.check_channel("SIP/105-" + suffix)


@pytest.mark.parametrize("mode", ["", "spy", "Listen", "listen,B", None])
def test_an_unknown_mode_is_refused(mode):
    with pytest.raises(actions.UnsafeValue):
        actions.spy_originate(phone(), "SIP/105-0000003c", mode, allow_switch=False, action_id="a")
    with pytest.raises(actions.UnsafeValue):
        actions.switch_dtmf("SIP/104-00000002", mode)


@pytest.mark.parametrize("action_id", ["", "a\r\nAction: Command", "a,b"])
def test_an_unsafe_action_id_is_refused(action_id):
    with pytest.raises(actions.UnsafeValue):
        actions.spy_originate(phone(), "SIP/105-0000003c", "listen", allow_switch=False, action_id=action_id)


def test_unsafe_configured_options_are_refused(settings):
    settings.SPY_OPTIONS = {**settings.SPY_OPTIONS, "barge": "qB,x"}
    with pytest.raises(actions.UnsafeValue):
        actions.spy_originate(phone(), "SIP/105-0000003c", "barge", allow_switch=False, action_id="a")


def test_hangup_of_exactly_the_spy_channel():
    assert actions.hangup_action("Local/104@phones-00000003;1") == [("Channel", "Local/104@phones-00000003;1")]


@pytest.mark.parametrize("mode, digit", [("listen", "4"), ("whisper", "5"), ("barge", "6")])
def test_switch_presses_chanspy_digits_as_received(mode, digit):
    assert actions.switch_dtmf("SIP/104-00000002", mode) == [
        ("Channel", "SIP/104-00000002"),
        ("Digit", digit),
        ("Receive", "true"),
    ]


def test_without_an_action_id_the_client_numbers_the_action():
    fields = actions.spy_originate(phone(), "SIP/105-0000003c", "listen", allow_switch=False)
    assert "ActionID" not in dict(fields)
