"""Help requests over real TCP: a trainee in a call raises a hand, his curator's dashboards (or the
admins', when the curator has none open) are told, and it ends when the curator's spy reaches the
call, the trainee cancels, or the call ends; each request is a row with its response time. On both
drivers (chan_sip on Asterisk 20, PJSIP on Asterisk 22) for the join and call-end paths."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import Role, User
from helprequests.models import Audience, EndReason, HelpRequest
from supervision import consumers, presence
from supervision.bridge import BRIDGE_CHANNEL
from supervision.presence import PRESENCE_CHANNEL
from tests.live_stack import Inbox, press, roster, until  # noqa: F401
from tests.pbx_drivers import device, driver, driver_bridge, driver_pbx, driver_roster  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

RAISE = {"type": "help.raise"}


@sync_to_async
def help_rows(**filters):
    return list(HelpRequest.objects.filter(**filters).order_by("pk").values())


@sync_to_async
def make_admin():
    return User.objects.create_user(username="root", password=None, role=Role.ADMIN, first_name="Root")


async def online(bridge, user, socket="daphne.1!abc"):
    """A dashboard of `user` says it is open, as its socket does (supervision.presence)."""
    await bridge.layer.send(PRESENCE_CHANNEL, {"type": "presence", "state": "here", "user_id": user.pk,
                                               "socket": socket, "role": user.role})
    await until(lambda: socket in bridge.presence.sockets.get(user.pk, {}))


async def offline(bridge, user, socket="daphne.1!abc"):
    await bridge.layer.send(PRESENCE_CHANNEL, {"type": "presence", "state": "gone", "user_id": user.pk,
                                               "socket": socket, "role": user.role})
    await until(lambda: socket not in bridge.presence.sockets.get(user.pk, {}))


async def call_of(bridge, pbx, phone_device):
    agent = await pbx.inbound_call(phone_device)
    await until(lambda: (bridge.board.channel(agent) or {}).get("state") == "up")
    return agent


async def test_the_curators_whisper_answers_the_request_with_its_response_time(
        driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    bridge, pbx = driver_bridge, driver_pbx
    anna, curator = people["anna"], people["petrova"]
    await online(bridge, curator)
    agent = await call_of(bridge, pbx, device(driver, "105"))
    anna_inbox = await Inbox(bridge.layer, anna.pk).open()
    curator_inbox = await Inbox(bridge.layer, curator.pk).open()
    other_inbox = await Inbox(bridge.layer, people["smirnov"].pk).open()

    await press(bridge, anna, RAISE)

    shown = await curator_inbox.next(type="help", state="open")
    mine = await anna_inbox.next(type="help", state="open")
    assert shown["request"] == mine["request"]
    assert (shown["trainee"], shown["trainee_name"], shown["target"]) == (anna.pk, "Anna", phones["anna"].pk)
    assert mine["notified"] == "curator"
    [row] = await help_rows()
    assert row["call_uniqueid"] == bridge.board.channel(agent)["uniqueid"] and row["call_channel"] == agent
    assert (row["trainee_id"], row["curator_id"], row["audience"], row["ended_at"]) == (anna.pk, curator.pk, "curator", None)

    await press(bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": "whisper"})

    ended = await curator_inbox.next(type="help", state="joined")
    assert (ended["request"], ended["responder"], ended["mode"]) == (shown["request"], curator.pk, "whisper")
    assert ended["response_seconds"] >= 0
    assert (await anna_inbox.next(type="help", state="joined"))["responder_name"] == "Olga"
    [row] = await help_rows()
    assert (row["end_reason"], row["responder_id"], row["mode"]) == (EndReason.JOINED, curator.pk, "whisper")
    assert row["response_seconds"] == ended["response_seconds"] and row["ended_at"] is not None
    assert not [m for m in other_inbox.messages if m.get("type") == "help"]  # another team's curator: nothing


async def test_the_call_ending_ends_the_request(driver, driver_pbx, driver_bridge, driver_roster):
    people, _phones = driver_roster
    bridge, pbx = driver_bridge, driver_pbx
    anna, curator = people["anna"], people["petrova"]
    await online(bridge, curator)
    agent = await call_of(bridge, pbx, device(driver, "105"))
    curator_inbox = await Inbox(bridge.layer, curator.pk).open()
    await press(bridge, anna, RAISE)
    opened = await curator_inbox.next(type="help", state="open")

    await pbx.hangup(agent)

    ended = await curator_inbox.next(type="help", state="call_ended")
    assert ended["request"] == opened["request"] and "responder" not in ended
    [row] = await help_rows()
    assert (row["end_reason"], row["responder_id"], row["response_seconds"]) == (EndReason.CALL_ENDED, None, None)


async def test_someone_already_listening_has_not_answered_until_he_changes_mode(
        driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    bridge, pbx = driver_bridge, driver_pbx
    anna, curator = people["anna"], people["petrova"]
    await online(bridge, curator)
    await call_of(bridge, pbx, device(driver, "105"))
    curator_inbox = await Inbox(bridge.layer, curator.pk).open()
    await press(bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    live = await curator_inbox.next(type="spy.status", state="spying")

    await press(bridge, anna, RAISE)
    await curator_inbox.next(type="help", state="open")
    assert [r["end_reason"] for r in await help_rows()] == [""]

    await press(bridge, curator, {"type": "spy.switch", "session": live["session"], "mode": "barge"})

    ended = await curator_inbox.next(type="help", state="joined")
    assert ended["mode"] == "barge"


async def test_the_trainee_cancels(driver_bridge, driver_pbx, driver, driver_roster):
    people, _phones = driver_roster
    bridge = driver_bridge
    anna, curator = people["anna"], people["petrova"]
    await online(bridge, curator)
    await call_of(bridge, driver_pbx, device(driver, "105"))
    anna_inbox = await Inbox(bridge.layer, anna.pk).open()
    curator_inbox = await Inbox(bridge.layer, curator.pk).open()
    await press(bridge, anna, RAISE)
    opened = await anna_inbox.next(type="help", state="open")

    # Someone else's cancel (here his curator's) is refused and changes nothing.
    await press(bridge, curator, {"type": "help.cancel", "request": opened["request"]})
    refused = await curator_inbox.next(type="help", state="denied")
    assert refused["reason"] == "no_request"
    assert [r["end_reason"] for r in await help_rows()] == [""]

    await press(bridge, anna, {"type": "help.cancel", "request": opened["request"]})

    assert (await curator_inbox.next(type="help", state="cancelled"))["request"] == opened["request"]
    await anna_inbox.next(type="help", state="cancelled")
    [row] = await help_rows()
    assert row["end_reason"] == EndReason.CANCELLED and row["ended_at"] is not None


async def test_refusals(driver_bridge, driver_pbx, driver, driver_roster):
    people, _phones = driver_roster
    bridge = driver_bridge
    anna, curator = people["anna"], people["petrova"]
    anna_inbox = await Inbox(bridge.layer, anna.pk).open()
    curator_inbox = await Inbox(bridge.layer, curator.pk).open()

    await press(bridge, anna, RAISE)  # no call
    assert (await anna_inbox.next(type="help"))["reason"] == "no_call"
    await call_of(bridge, driver_pbx, device(driver, "104"))
    await press(bridge, curator, RAISE)  # a curator in a call
    refused = await curator_inbox.next(type="help")
    assert (refused["state"], refused["reason"]) == ("denied", "not_trainee")
    assert refused["text"] == "Only a trainee can ask for help."
    assert await help_rows() == []

    await call_of(bridge, driver_pbx, device(driver, "105"))
    await press(bridge, anna, RAISE)
    first = await anna_inbox.next(type="help", state="open")
    await press(bridge, anna, RAISE)  # the same call: the same request, no second row
    again = await anna_inbox.next(type="help")
    assert (again["state"], again["request"]) == ("open", first["request"])
    assert len(await help_rows()) == 1
    for _ in range(3):
        await press(bridge, anna, RAISE)
    flood = await anna_inbox.next(type="help", state="denied")
    assert flood["reason"] == "rate_limited"
    assert len(await help_rows()) == 1


async def test_with_the_curator_offline_the_admins_see_it(driver_bridge, driver_pbx, driver, driver_roster):
    people, _phones = driver_roster
    bridge = driver_bridge
    anna, curator = people["anna"], people["petrova"]
    admin = await make_admin()
    await online(bridge, admin, socket="daphne.2!admin")
    admin_inbox = await Inbox(bridge.layer, admin.pk).open()
    anna_inbox = await Inbox(bridge.layer, anna.pk).open()
    agent = await call_of(bridge, driver_pbx, device(driver, "105"))

    await press(bridge, anna, RAISE)

    shown = await admin_inbox.next(type="help", state="open")
    assert (await anna_inbox.next(type="help", state="open"))["notified"] == "admins"
    [row] = await help_rows()
    assert row["audience"] == Audience.ADMINS and row["escalated_at"] is not None

    # The curator opens his dashboard later: it is shown the open request after its snapshot, and
    # the trainee's page learns that his curator has it now.
    await online(bridge, curator)
    assert (await anna_inbox.next(type="help", state="open"))["notified"] == "curator"
    reply = await bridge.layer.new_channel()
    await bridge.layer.send(BRIDGE_CHANNEL, {"type": "bridge.sessions", "user_id": curator.pk, "reply_to": reply})
    late = (await bridge.layer.receive(reply))["message"]
    assert (late["type"], late["state"], late["request"]) == ("help", "open", shown["request"])

    await driver_pbx.hangup(agent)
    assert (await admin_inbox.next(type="help", state="call_ended"))["request"] == shown["request"]


async def test_a_curator_who_closes_his_last_dashboard_hands_it_to_the_admins(driver_bridge, driver_pbx, driver,
                                                                             driver_roster):
    people, _phones = driver_roster
    bridge = driver_bridge
    anna, curator = people["anna"], people["petrova"]
    admin = await make_admin()
    await online(bridge, admin, socket="daphne.2!admin")
    await online(bridge, curator, socket="daphne.1!one")
    await online(bridge, curator, socket="daphne.2!two")
    admin_inbox = await Inbox(bridge.layer, admin.pk).open()
    await call_of(bridge, driver_pbx, device(driver, "105"))
    await press(bridge, anna, RAISE)
    [row] = await help_rows()
    assert row["audience"] == Audience.CURATOR and row["escalated_at"] is None

    await offline(bridge, curator, socket="daphne.1!one")  # one of two tabs: still online
    assert bridge.presence.online(curator.pk)
    await offline(bridge, curator, socket="daphne.2!two")

    shown = await admin_inbox.next(type="help", state="open")
    assert shown["request"] == row["id"]
    [row] = await help_rows()
    assert row["escalated_at"] is not None


async def test_a_dashboard_that_stops_saying_it_is_open_counts_as_offline(driver_bridge, driver_roster):
    assert presence.HEARTBEAT_SECONDS == consumers.HEARTBEAT_SECONDS  # what the sockets say, how often
    people, _phones = driver_roster
    board_presence = driver_bridge.presence
    clock = [1000.0]
    board_presence.clock = lambda: clock[0]
    await online(driver_bridge, people["petrova"])
    assert board_presence.online(people["petrova"].pk) and board_presence.role(people["petrova"].pk) == "curator"
    clock[0] += 30  # a heartbeat or two late: still there
    assert board_presence.online(people["petrova"].pk)
    clock[0] += 30  # its web server went away without a word
    assert not board_presence.online(people["petrova"].pk)
    assert board_presence.sweep() == [people["petrova"].pk]
    assert board_presence.sockets == {}


async def test_a_bridge_restart_ends_requests_left_open(driver_pbx, driver_roster):
    from tests.live_stack import started_bridge

    people, _phones = driver_roster
    row = await sync_to_async(HelpRequest.objects.create)(
        trainee=people["anna"], trainee_label="Anna", call_uniqueid="1.1", raised_at=timezone.now())
    async with started_bridge(driver_pbx) as bridge:
        await until(lambda: bridge.help_desk.startup is None)
    [row] = await help_rows(pk=row.pk)
    assert row["end_reason"] == EndReason.INTERRUPTED and row["ended_at"] is not None



def test_a_bridge_built_outside_the_loop_hears_the_dashboards_once_started(fakepbx_thread):
    """`manage.py ami_bridge` builds its bridge before the event loop runs: presence starts with it."""
    from supervision.bridge_host import build_bridge
    from supervision.channel_layer import InMemoryChannelLayer
    from tests.live_stack import wait_for

    bridge = build_bridge(InMemoryChannelLayer(), host="127.0.0.1", port=fakepbx_thread.port, username="dashboard",
                          secret="dashboard-demo")

    async def run():
        await bridge.start()
        try:
            await bridge.layer.send(PRESENCE_CHANNEL, {"type": "presence", "state": "here", "user_id": 7,
                                                       "socket": "daphne.1!x", "role": "admin"})
            await wait_for(lambda: bridge.presence.online(7))
            assert bridge.presence.users_with_role("admin") == [7]
        finally:
            await bridge.stop()

    asyncio.run(run())


NO_DTMF_CONF = """
[general]
enabled = yes

[dashboard]
secret = dashboard-demo
permit = 127.0.0.1/255.255.255.255
read = system,call,reporting
write = system,call,originate,reporting
"""


async def test_a_keypad_switch_answers_even_when_the_board_cannot_see_it(tmp_path, roster):
    """Without the AMI `dtmf` read class the board never learns of a keypad switch (no DTMFEnd):
    the spy module's word that the switch went through is the answer."""
    from fakepbx import FakePBX
    from tests.conftest import FAKEPBX_FAST, FAKEPBX_PHONES
    from tests.live_stack import started_bridge

    people, phones = roster
    conf = tmp_path / "manager.conf"
    conf.write_text(NO_DTMF_CONF)
    pbx = FakePBX(port=0, manager_conf=str(conf), **FAKEPBX_FAST)
    for phone in FAKEPBX_PHONES:
        pbx.set_phone(phone, "answer", ring_seconds=0)
    await pbx.start()
    try:
        async with started_bridge(pbx) as bridge:
            anna, curator = people["anna"], people["petrova"]
            await online(bridge, curator)
            agent = await call_of(bridge, pbx, "SIP/105")
            inbox = await Inbox(bridge.layer, curator.pk).open()
            await press(bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
            live = await inbox.next(type="spy.status", state="spying")
            await press(bridge, anna, RAISE)
            await inbox.next(type="help", state="open")

            await press(bridge, curator, {"type": "spy.switch", "session": live["session"], "mode": "whisper"})

            ended = await inbox.next(type="help", state="joined")
            assert (ended["mode"], ended["responder"]) == ("whisper", curator.pk)
            assert bridge.board.channel(agent)["watchers"] == [{"device": "SIP/104", "mode": "listen"}]  # unseen
    finally:
        await pbx.stop()
