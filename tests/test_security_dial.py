"""Click-to-call dials what the site allows (DIAL_NUMBER_PATTERN, digits only by default): feature
codes of the dial context (directed pickup `**<ext>`, ChanSpy codes) never reach AMI."""

import pytest
from django.test import override_settings

from supervision.management.commands.ami_check import dial_context_warning
from tests.live_stack import Statuses, bridge, originates, press, roster, rows  # noqa: F401
from tests.test_ami_check import line, run_check

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.mark.parametrize("number", ["**105", "*97", "#1", "105#", "*5551234", "+74952293042"])
async def test_feature_codes_are_refused_by_default_and_never_reach_ami(fakepbx, bridge, roster, number):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": number})
    denied = await inbox.next(state="denied")

    assert denied["reason"] == "bad_number"
    assert originates(fakepbx) == []
    [row] = await rows(kind="dial")
    assert (row["outcome"], row["reason"]) == ("denied", "bad_number")


@override_settings(DIAL_NUMBER_PATTERN=r"\+?[0-9]{3,15}")
async def test_a_site_pattern_decides_what_may_be_dialled(fakepbx, bridge, roster):
    people, _phones = roster
    inbox = await Statuses(bridge.layer, people["anna"].pk).open()

    await press(bridge, people["anna"], {"type": "dial", "number": "12"})
    first = await inbox.next()
    assert (first["state"], first["reason"]) == ("denied", "bad_number"), inbox.messages
    await press(bridge, people["anna"], {"type": "dial", "number": "+74952293042"})
    second = await inbox.next()  # queued, or the PBX's own refusal: the simulated dialplan is digits only
    assert second["state"] in ("queued", "failed"), inbox.messages
    [originate] = originates(fakepbx)
    assert originate["Exten"] == "+74952293042"


def test_a_dial_context_that_is_the_phones_own_is_warned_about():
    assert "WARNING" in dial_context_warning("from-internal", set(), "[0-9]{1,32}")
    assert "WARNING" in dial_context_warning("office-phones", {"office-phones"}, "[0-9]{1,32}")
    assert dial_context_warning("outbound-only", {"office-phones"}, "[0-9]{1,32}") is None


async def test_ami_check_says_so(fakepbx):
    with override_settings(AMI_DIAL_CONTEXT="from-internal"):
        _code, lines = await run_check("--host", "127.0.0.1", "--port", str(fakepbx.port),
                                       "--username", "dashboard", "--secret", "dashboard-demo")
    assert "AMI_DIAL_CONTEXT=from-internal is where the phones themselves dial" in line(lines, "Dial context:")
    with override_settings(AMI_DIAL_CONTEXT="outbound-only"):
        _code, lines = await run_check("--host", "127.0.0.1", "--port", str(fakepbx.port),
                                       "--username", "dashboard", "--secret", "dashboard-demo")
    assert not [text for text in lines if text.startswith("Dial context:")]
