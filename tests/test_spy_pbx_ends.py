"""How a spy session ends when the PBX, not the user, decides: a Stop the AMI user may not send
(the article's `read=call`, `write=originate` user: `asterisk20-restricted-stop-*`), the spied call
ending (ChanSpy's `E`: `-exit-option-*`), and a spy leg the PBX ends before `ChanSpyStart`
(`asterisk20-whisper-no-beep`). Over TCP with the simulated PBX: Asterisk 20 with chan_sip, and
Asterisk 22 with the PJSIP route (the spy leg is then `Local/104@dashboard-phones-X;1`, whose `;2`
dials the phone's own `PJSIP/104-Y` leg)."""

import pytest
from asgiref.sync import sync_to_async

from accounts.models import Technology
from fakepbx import FakePBX
from supervision.models import Outcome
from tests.conftest import FAKEPBX_FAST, _fakepbx_phones
from tests.live_stack import Inbox, bridge, originates, press, press_on_page, roster, rows, until  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

RESTRICTED = {"dashboard": {"secret": "dashboard-demo", "read": "call", "write": "originate"}}
ROUTES = ["SIP", "PJSIP"]


@pytest.fixture
async def pbx_options():
    return {}


@pytest.fixture
def route():
    return "SIP"


@pytest.fixture
async def fakepbx(pbx_options, route):
    """The simulated PBX of the route (Asterisk 20 for SIP, 22 for PJSIP) with this module's
    options (users, missing sounds)."""
    flavour = "asterisk22" if route == "PJSIP" else "asterisk20"
    pbx = _fakepbx_phones(FakePBX(port=0, flavour=flavour, **{**FAKEPBX_FAST, **pbx_options}))
    for device in ("PJSIP/104", "PJSIP/105"):
        pbx.set_phone(device, "answer", ring_seconds=0)
    await pbx.start()
    yield pbx
    await pbx.stop()


@sync_to_async
def take_route(phones, route):
    """Curator petrova (104) and trainee anna (105) on `route`: SIP, or PJSIP reached through
    `Local/104@dashboard-phones` (deploy/extensions-autoanswer.conf; the spy leg is its `;1`)."""
    if route == "SIP":
        return "SIP/104-", "SIP/105"
    for name in ("petrova", "anna"):
        phone = phones[name]
        phone.technology, phone.originate_context = Technology.PJSIP, "dashboard-phones"
        phone.full_clean()
        phone.save()
    return "Local/104@dashboard-phones-", "PJSIP/105"


async def spying(fakepbx, bridge, roster, route, mode="listen"):
    people, phones = roster
    leg_prefix, trainee_device = await take_route(phones, route)
    inbox = await Inbox(bridge.layer, people["petrova"].pk).open()
    watched = await Inbox(bridge.layer, people["anna"].pk).open()
    agent = await fakepbx.inbound_call(trainee_device)
    await until(lambda: (bridge.board.channel(agent) or {}).get("state") == "up")
    await press(bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": mode})
    return inbox, watched, agent, leg_prefix


@pytest.mark.parametrize("pbx_options", [{"users": RESTRICTED}])
@pytest.mark.parametrize("route", ROUTES)
async def test_a_stop_the_pbx_refuses_is_a_failure_and_the_spy_still_ends_with_the_call(
        fakepbx, bridge, roster, route):
    people, _phones = roster
    inbox, watched, agent, leg_prefix = await spying(fakepbx, bridge, roster, route)
    await inbox.next(state="spying")
    assert await watched.next(type="monitored", active=True)
    [row] = await rows()
    leg = row["spy_channel"]
    assert leg.startswith(leg_prefix)
    assert originates(fakepbx)[0]["Data"] == f"{agent},qxEd"  # `E` on every spy

    await press(bridge, people["petrova"], {"type": "spy.stop"})
    refused = await inbox.next(reason="stop_refused")

    assert refused["state"] == "spying"
    assert refused["text"] == (
        "The PBX did not end the call (Permission denied), so you are still connected to Anna's call. "
        "Hang up your phone to stop. An administrator can let the dashboard end calls: "
        "manager.conf write=call for its AMI user.")
    assert fakepbx.channels.get(leg) is not None  # the spy goes on, as on the real PBX
    [row] = await rows()
    assert row["outcome"] == Outcome.SPYING and row["ended_at"] is None
    assert row["outcome_detail"] == refused["text"]
    assert bridge.spy_monitor.by_user[people["petrova"].pk].spy_channel == leg
    assert [m for m in watched.messages if m.get("active") is False] == []

    # The spied call ends: with `E` the PBX ends the spy leg itself, no Hangup needed.
    await fakepbx.hangup(agent)
    ended = await inbox.next(state="ended")

    assert ended["text"] == "Anna's call ended."
    await until(lambda: fakepbx.channels.get(leg) is None)
    [row] = await rows()
    assert (row["outcome"], row["outcome_detail"]) == (Outcome.ENDED, "Anna's call ended.")
    assert await watched.next(type="monitored", active=False)
    assert [a["Action"] for a in fakepbx.actions if a.get("Action") == "Hangup"] == ["Hangup"]  # the Stop only


@pytest.mark.parametrize("pbx_options", [{"missing_sounds": {"beep"}}])
@pytest.mark.parametrize("route", ROUTES)
async def test_a_whisper_the_pbx_ends_before_it_starts_fails_with_the_missing_beep_as_likely_cause(
        fakepbx, bridge, roster, route):
    inbox, watched, agent, leg_prefix = await spying(fakepbx, bridge, roster, route, mode="whisper")

    failed = await inbox.next(state="failed")

    assert inbox.states() == ["queued", "answered", "failed"]
    assert failed["text"] == (
        "The PBX ended the spy before it began. Without option q ChanSpy first plays the “beep” sound: "
        "the PBX may lack it (ask the administrator to install the core sounds), or Anna's call ended meanwhile.")
    [row] = await rows()
    assert (row["outcome"], row["reason"]) == (Outcome.FAILED, "spy_not_started")
    assert row["spy_channel"].startswith(leg_prefix) and row["spy_uniqueid"]
    assert row["spying_started_at"] is None and row["ended_at"]
    assert watched.messages == []  # the monitored person was never told anything
    assert bridge.spy_monitor.by_user == {}


@pytest.mark.parametrize("pbx_options", [{"missing_sounds": {"beep"}}])
async def test_a_listen_with_q_does_not_beep_and_is_unharmed_by_the_missing_sound(fakepbx, bridge, roster):
    inbox, _watched, _agent, _prefix = await spying(fakepbx, bridge, roster, "SIP", mode="listen")
    await inbox.next(state="spying")


@pytest.mark.parametrize("pbx_options", [{"users": RESTRICTED, "missing_sounds": {"beep"}}])
async def test_a_russian_page_hears_the_refused_stop_and_the_missing_beep_in_russian(fakepbx, bridge, roster):
    people, phones = roster
    curator = people["petrova"]
    inbox = await Inbox(bridge.layer, curator.pk).open()
    agent = await fakepbx.inbound_call("SIP/105")
    await until(lambda: (bridge.board.channel(agent) or {}).get("state") == "up")

    await press_on_page(bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": "whisper"}, "ru")
    failed = await inbox.next(state="failed")
    await press_on_page(bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": "listen"}, "ru")
    await inbox.next(state="spying")
    await press_on_page(bridge, curator, {"type": "spy.stop"}, "ru")
    refused = await inbox.next(reason="stop_refused")

    assert failed["text"] == (
        "АТС завершила подключение, не начав его. Без опции q ChanSpy сначала проигрывает звук «beep»: его может "
        "не быть на АТС (попросите администратора установить основные звуки), или разговор (Anna) тем временем "
        "закончился.")
    assert refused["text"] == (
        "АТС не завершила звонок (Permission denied): вы всё ещё подключены к разговору (Anna). Чтобы остановить, "
        "положите трубку. Администратор может разрешить панели завершать звонки: manager.conf write=call для её "
        "пользователя AMI.")
