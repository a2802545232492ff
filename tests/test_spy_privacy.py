"""Privacy is about what is heard: a press reaches only a person's own conversation, never a phone
leg that is itself spying (ami-captures asterisk22-pjsip-live-product-trainee-via-curator-spy-leg,
where a trainee's listen on his curator, who was listening to another trainee, let him hear that
trainee's customer; on chan_sip the spy leg itself was taken). On both drivers, over TCP."""

import pytest

from supervision.models import Kind, Outcome
from tests.live_stack import Inbox, originates, press, rows, until
from tests.pbx_drivers import device, driver, driver_bridge, driver_pbx, driver_roster  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_a_trainee_cannot_listen_through_his_curators_spy_leg(driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    bridge, pbx = driver_bridge, driver_pbx
    curator, anna, boris = people["petrova"], people["anna"], people["boris"]
    agent = await pbx.inbound_call(device(driver, "105"))
    await until(lambda: (bridge.board.channel(agent) or {}).get("state") == "up")
    curator_inbox = await Inbox(bridge.layer, curator.pk).open()
    await press(bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await curator_inbox.next(state="spying")
    # The curator's phone now has an Up channel: the one that hears Anna's customer.
    curator_phone = device(driver, "104")
    assert [c["state"] for c in bridge.board.channels_of(curator_phone)] == ["up"]
    assert bridge.board.conversation_of(curator_phone) is None

    boris_inbox = await Inbox(bridge.layer, boris.pk).open()
    await press(bridge, boris, {"type": "spy", "target": phones["petrova"].pk, "mode": "listen"})
    refused = await boris_inbox.next(type="spy.status")

    assert (refused["state"], refused["reason"]) == ("denied", "not_a_conversation")
    assert "Olga" in refused["text"] and "cannot be joined" in refused["text"]
    assert len(originates(pbx)) == 1  # only the curator's own spy reached the PBX
    [denied] = await rows(user=boris)
    assert (denied["kind"], denied["outcome"], denied["reason"]) == (Kind.SPY, Outcome.DENIED, "not_a_conversation")
    assert denied["target_extension_id"] == phones["petrova"].pk and denied["target_channel"] == ""


async def test_the_spied_call_names_the_curators_phone_and_the_mode(driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    bridge, pbx = driver_bridge, driver_pbx
    agent = await pbx.inbound_call(device(driver, "105"))
    await until(lambda: (bridge.board.channel(agent) or {}).get("state") == "up")
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "whisper"})
    await inbox.next(state="spying")

    assert bridge.board.channel(agent)["watchers"] == [{"device": device(driver, "104"), "mode": "whisper"}]
    [phone_leg] = bridge.board.channels_of(device(driver, "104"))
    assert phone_leg["leg"]["role"] == "spy" and phone_leg["leg"]["target"] == agent
    assert phone_leg["leg"]["mode"] == "whisper"
