"""Call history written by the bridge: the simulated PBX over TCP (chan_sip on Asterisk 20 and PJSIP
on Asterisk 22), the real AMI client, the bridge with every module, rows in the database."""

import pytest
from asgiref.sync import sync_to_async

from history.models import CallRecord
from supervision.bridge import BOARD_GROUP
from tests.live_stack import Inbox, Statuses, press, until
from tests.pbx_drivers import device, driver, driver_bridge, driver_pbx, driver_roster  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


@pytest.fixture(autouse=True)
def quick_history(settings):
    """Write each ended call a moment after it ended (the site's default is 2 s)."""
    settings.HISTORY_WRITE_DELAY_SECONDS = 0.05
    settings.HISTORY_FLUSH_SECONDS = 0.05


@sync_to_async
def records(**filters):
    return list(CallRecord.objects.filter(**filters).order_by("pk"))


async def written(bridge, count):
    await until(lambda: bridge.call_recorder.written >= count)
    return await records()


def phone_channels(bridge, dev):
    return [channel["name"] for channel in bridge.board.channels_of(dev)]


async def test_an_answered_customer_call_is_one_row_in(driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    anna = device(driver, "105")
    name = await driver_pbx.inbound_call(anna, caller_num="5557001", caller_name="Ivan Petrov")
    await until(lambda: (driver_bridge.board.channel(name) or {}).get("state") == "up")

    await driver_pbx.hangup(name, 16)
    [row] = await written(driver_bridge, 1)

    assert (row.person_id, row.extension_id, row.device, row.channel) == (
        people["anna"].pk, phones["anna"].pk, anna, name)
    assert (row.direction, row.other_number, row.other_name) == ("in", "5557001", "Ivan Petrov")
    assert row.person_label == "Anna"
    assert row.answered_at is not None and row.ring_started_at <= row.answered_at <= row.ended_at
    assert row.talk_seconds >= 0 and row.ring_seconds >= 0
    assert row.talk_seconds == pytest.approx((row.ended_at - row.answered_at).total_seconds(), abs=0.01)
    assert (row.hangup_cause, row.hangup_cause_text()) == (16, "normal clearing")
    assert not row.monitored and row.monitor_modes == ""
    assert row.uniqueid and row.linkedid and row.linkedid != row.uniqueid  # the trunk's call


async def test_a_call_nobody_answered_has_ring_time_and_no_talk(driver, driver_pbx, driver_bridge, driver_roster):
    people, _phones = driver_roster
    driver_pbx.set_phone(device(driver, "106"), "noanswer")
    name = await driver_pbx.inbound_call(device(driver, "106"), caller_num="5557002", caller_name="Caller", answer=False)
    await until(lambda: (driver_bridge.board.channel(name) or {}).get("state") == "ringing")

    await driver_pbx.hangup(name, 19)
    [row] = await written(driver_bridge, 1)

    assert (row.person_id, row.direction, row.other_number) == (people["vera"].pk, "in", "5557002")
    assert row.answered_at is None and row.talk_seconds == 0
    assert row.ring_seconds == pytest.approx((row.ended_at - row.ring_started_at).total_seconds(), abs=0.01)
    assert (row.hangup_cause, row.hangup_cause_text()) == (19, "no answer")


async def test_a_click_to_call_is_one_row_out_with_the_dialled_number(driver, driver_pbx, driver_bridge, driver_roster):
    people, _phones = driver_roster
    anna = people["anna"]
    inbox = await Statuses(driver_bridge.layer, anna.pk).open()
    await press(driver_bridge, anna, {"type": "dial", "number": "5551234"})
    await inbox.next(state="answered")
    phone = device(driver, "105")
    await until(lambda: any((c.get("dialled") == "5551234") for c in driver_bridge.board.channels_of(phone)))
    [leg] = phone_channels(driver_bridge, phone)

    await driver_pbx.hangup(leg, 16)
    await written(driver_bridge, 1)
    await until(lambda: not driver_pbx.channels)
    rows = await written(driver_bridge, 1)

    # On PJSIP the Local/105@dashboard-phones ;1 and ;2 legs are not rows: one row, the phone's own leg.
    [row] = rows
    assert (row.person_id, row.device, row.channel) == (anna.pk, phone, leg)
    assert (row.direction, row.other_number) == ("out", "5551234")
    assert row.answered_at is not None


async def test_a_call_the_phone_dials_itself_is_out_with_the_number(driver_pbx, driver_bridge, driver_roster, driver):
    people, _phones = driver_roster
    phone = device(driver, "105")
    name = await driver_pbx.phone_calls(phone, "5553322")
    await until(lambda: (driver_bridge.board.channel(name) or {}).get("state") == "up")

    await driver_pbx.hangup(name, 16)
    [row] = await written(driver_bridge, 1)

    assert (row.person_id, row.direction, row.other_number, row.channel) == (people["anna"].pk, "out", "5553322", name)


async def test_a_call_between_two_roster_phones_is_internal_on_both(driver, driver_pbx, driver_bridge, driver_roster):
    people, _phones = driver_roster
    caller, rung = await driver_pbx.internal_call(device(driver, "104"), device(driver, "105"), caller_name="Olga")
    await until(lambda: (driver_bridge.board.channel(caller) or {}).get("state") == "up")

    await driver_pbx.hangup(caller, 16)
    rows = await written(driver_bridge, 2)

    by_person = {row.person_id: row for row in rows}
    assert len(rows) == 2
    petrova, anna = by_person[people["petrova"].pk], by_person[people["anna"].pk]
    assert (petrova.direction, petrova.other_number, petrova.channel) == ("internal", "105", caller)
    assert (anna.direction, anna.other_number, anna.other_name, anna.channel) == ("internal", "104", "Olga", rung)
    assert petrova.linkedid == anna.linkedid == petrova.uniqueid


async def test_a_monitored_call_has_its_modes_and_the_spy_leg_is_no_row(driver, driver_pbx, driver_bridge, driver_roster):
    people, phones = driver_roster
    curator = people["petrova"]
    inbox = await Inbox(driver_bridge.layer, curator.pk).open()
    name = await driver_pbx.inbound_call(device(driver, "105"), caller_num="5557003")
    await until(lambda: (driver_bridge.board.channel(name) or {}).get("state") == "up")
    await press(driver_bridge, curator, {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")
    await press(driver_bridge, curator, {"type": "spy.switch", "mode": "barge"})
    await inbox.next(reason="switched")

    await driver_pbx.hangup(name, 16)
    await inbox.next(state="ended")
    await until(lambda: not driver_pbx.channels)
    [row] = await written(driver_bridge, 1)

    assert (row.person_id, row.channel, row.monitored, row.monitor_modes) == (
        people["anna"].pk, name, True, "listen,barge")
    assert row.monitor_mode_list() == ["listen", "barge"]
    assert await records(person=curator) == []  # the curator's spy leg (and its Local legs) are not calls


async def test_calls_still_queued_are_written_when_the_bridge_stops(driver, driver_pbx, driver_bridge, driver_roster, settings):
    people, _phones = driver_roster
    recorder = driver_bridge.call_recorder
    recorder.delay = 3600.0  # nothing becomes due by itself during the test
    await until(lambda: recorder.devices is not None)  # before it, every channel's end is kept (trunks too)
    names = []
    for resource in ("105", "106"):
        name = await driver_pbx.inbound_call(device(driver, resource), caller_num="5557004")
        await until(lambda name=name: (driver_bridge.board.channel(name) or {}).get("state") == "up")
        names.append(name)
    for name in names:
        await driver_pbx.hangup(name, 16)
    await until(lambda: len(recorder.pending) == 2)
    assert await records() == []

    await driver_bridge.stop()

    rows = await records()
    assert sorted(row.channel for row in rows) == sorted(names)
    assert {row.person_id for row in rows} == {people["anna"].pk, people["vera"].pk}


async def test_a_phone_added_to_the_roster_gets_its_calls_recorded(driver, driver_pbx, driver_bridge, driver_roster):
    """The roster change reaches the bridge (`roster.changed`): a new extension's calls are written."""
    from accounts.models import Extension, Role, User

    recorder = driver_bridge.call_recorder
    await until(lambda: recorder.devices is not None)
    phone = device(driver, "108")
    assert phone not in recorder.devices

    @sync_to_async
    def add_phone():
        curator = User.objects.get(username="petrova")
        user = User.objects.create_user(username="gleb", password=None, role=Role.TRAINEE, curator=curator,
                                        first_name="Gleb")
        technology, resource = phone.split("/")
        Extension.objects.create(user=user, technology=technology, resource=resource)
        return user

    gleb = await add_phone()
    # What every process sends on the board group when the roster is saved (supervision.audience),
    # here on the test bridge's own layer.
    await driver_bridge.layer.group_send(BOARD_GROUP, {"type": "roster.changed"})
    await until(lambda: phone in (recorder.devices or ()))
    name = await driver_pbx.inbound_call(phone, caller_num="5557005")
    await until(lambda: (driver_bridge.board.channel(name) or {}).get("state") == "up")
    await driver_pbx.hangup(name, 16)

    [row] = await written(driver_bridge, 1)
    assert (row.person_id, row.device) == (gleb.pk, phone)
