"""Call recordings started by the bridge (history/recordings_bridge.py), on both drivers: the
simulated PBX over TCP writes a real WAV into its monitor folder, which the web servers see
through a "mount" (a symlink here); the history row names the file."""

import wave

import pytest
from asgiref.sync import sync_to_async

from accounts.models import Extension
from history.models import CallRecord
from supervision.models import MonitoringSession
from tests.live_stack import Inbox, Statuses, press, ringing_call, started_bridge, until
from tests.pbx_drivers import device, driver, driver_pbx, driver_roster  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


@pytest.fixture
def folders(settings, tmp_path):
    pbx_dir = tmp_path / "spool" / "monitor"
    pbx_dir.mkdir(parents=True)
    mount = tmp_path / "mnt-pbx-monitor"
    mount.symlink_to(pbx_dir)
    settings.CALL_RECORDINGS_PBX_DIR = str(pbx_dir)
    settings.CALL_RECORDINGS_ROOT = str(mount)
    settings.HISTORY_WRITE_DELAY_SECONDS = 0.05
    settings.HISTORY_FLUSH_SECONDS = 0.05
    return pbx_dir, mount


@pytest.fixture
async def recording_bridge(driver, driver_pbx, driver_roster, folders):
    """Anna (105, trainee) and Petrova (104, curator) are recorded; Vera (106) is not."""
    driver_pbx.switch.monitor_dir = str(folders[0])
    await sync_to_async(lambda: Extension.objects.filter(user__username__in=["anna", "petrova"]).update(
        record_calls=True))()
    async with started_bridge(driver_pbx) as bridge:
        await until(lambda: bridge.call_recordings.devices is not None)
        yield bridge


def mixmonitors(pbx):
    return [action for action in pbx.actions if action.get("Action") == "MixMonitor"]


@sync_to_async
def rows():
    return list(CallRecord.objects.order_by("pk"))


async def written(bridge, count):
    await until(lambda: bridge.call_recorder.written >= count)
    return await rows()


def wav_seconds(path):
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        return wav.getnframes() / 8000


async def test_an_answered_call_of_a_recorded_phone_is_recorded_into_a_file_named_by_its_uniqueid(
        driver, driver_pbx, recording_bridge, folders):
    pbx_dir, mount = folders
    name = await driver_pbx.inbound_call(device(driver, "105"), caller_num="5557001", caller_name="Ivan Petrov")
    await until(lambda: len(mixmonitors(driver_pbx)) == 1)
    [action] = mixmonitors(driver_pbx)
    uniqueid = recording_bridge.board.channel(name)["uniqueid"]
    relative = recording_bridge.call_recordings.file_of(recording_bridge.board.channel(name))
    assert relative.endswith(f"/{uniqueid}.wav") and relative.count("/") == 3  # yyyy/mm/dd/<uniqueid>.wav
    assert (action["Channel"], action["File"]) == (name, f"{pbx_dir}/{relative}")

    await driver_pbx.hangup(name, 16)
    [row] = await written(recording_bridge, 1)
    assert (row.channel, row.recording_file) == (name, relative)
    assert wav_seconds(mount / row.recording_file) >= 1.0  # the web servers' view of the PBX's file


async def test_a_call_of_a_phone_not_recorded_is_not(driver, driver_pbx, recording_bridge):
    name = await driver_pbx.inbound_call(device(driver, "106"), caller_num="5557002")
    await until(lambda: (recording_bridge.board.channel(name) or {}).get("state") == "up")
    await driver_pbx.hangup(name, 16)
    [row] = await written(recording_bridge, 1)
    assert row.recording_file == "" and not mixmonitors(driver_pbx)


async def test_a_curators_spy_leg_is_not_recorded_only_the_trainees_conversation(
        driver, driver_pbx, recording_bridge, driver_roster):
    """Both phones are recorded; the curator's phone runs ChanSpy on the trainee's call (on PJSIP
    through Local ;1/;2 and his own PJSIP leg): none of those legs is a conversation."""
    people, phones = driver_roster
    name = await driver_pbx.inbound_call(device(driver, "105"), caller_num="5557003")
    await until(lambda: len(mixmonitors(driver_pbx)) == 1)
    inbox = await Inbox(recording_bridge.layer, people["petrova"].pk).open()
    await press(recording_bridge, people["petrova"], {"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    await inbox.next(state="spying")
    await driver_pbx.hangup(name, 16)
    await until(lambda: not recording_bridge.board.channels_of(device(driver, "104")))
    assert [action["Channel"] for action in mixmonitors(driver_pbx)] == [name]


async def test_a_click_to_call_records_the_phones_own_leg(driver, driver_pbx, recording_bridge, driver_roster):
    people, _phones = driver_roster
    inbox = await Statuses(recording_bridge.layer, people["anna"].pk).open()
    await press(recording_bridge, people["anna"], {"type": "dial", "number": "5551234"})
    await inbox.next(state="answered")
    await until(lambda: len(mixmonitors(driver_pbx)) == 1)
    [action] = mixmonitors(driver_pbx)
    assert action["Channel"].startswith(device(driver, "105") + "-")  # never the Local ;1 / ;2
    await driver_pbx.hangup(action["Channel"], 16)
    rows_now = await written(recording_bridge, 1)
    assert [row.recording_file for row in rows_now if row.channel == action["Channel"]] != [""]


async def test_a_file_the_sites_dialplan_records_is_attached_without_any_action(
        driver, driver_pbx, recording_bridge, folders):
    """Vera's phone is not marked: the site's inbound dialplan records the caller's channel itself
    (MixMonitor before its Dial); its VarSet names the file, which becomes Vera's call's."""
    pbx_dir, mount = folders
    driver_pbx.switch.dialplan_recorded.add(device(driver, "106"))
    name = await driver_pbx.inbound_call(device(driver, "106"), caller_num="5557004", talk_seconds=0.2)
    [row] = await written(recording_bridge, 1)
    assert row.channel == name and not mixmonitors(driver_pbx)
    assert row.recording_file.endswith(".wav") and row.recording_file.count("/") == 0  # the dialplan's own name
    assert wav_seconds(mount / row.recording_file) >= 1.0


async def test_a_pbx_that_refuses_mixmonitor_leaves_the_call_without_a_file(
        driver, driver_pbx, recording_bridge, caplog):
    driver_pbx.users["dashboard"].write.discard("system")
    name = await driver_pbx.inbound_call(device(driver, "105"), caller_num="5557005")
    await until(lambda: len(mixmonitors(driver_pbx)) == 1)
    await until(lambda: recording_bridge.call_recordings.refused)
    await driver_pbx.hangup(name, 16)
    [row] = await written(recording_bridge, 1)
    assert row.recording_file == ""
    assert "write=system" in caplog.text


async def test_play_to_my_phone_plays_the_calls_file_to_a_user_who_may_see_the_call(
        driver, driver_pbx, recording_bridge, driver_roster, folders):
    """The library's press with a call's file: the curator's phone plays it (the PBX's path, no
    extension); another curator, who may not see the call, is refused without its name, audited."""
    people, _phones = driver_roster
    pbx_dir, _mount = folders
    name = await driver_pbx.inbound_call(device(driver, "105"), caller_num="5557006", talk_seconds=0.1)
    [row] = await written(recording_bridge, 1)
    assert row.recording_file and row.channel == name

    inbox = await Statuses(recording_bridge.layer, people["petrova"].pk).open()
    await press(recording_bridge, people["petrova"], {"type": "recording.play", "call": row.pk})
    queued = await inbox.next(state="queued")
    assert (queued["kind"], queued["call"]) == ("playback", row.pk)
    [originate] = [a for a in driver_pbx.actions if a.get("Application") == "Playback"]
    assert originate["Data"] == f"{pbx_dir}/{row.recording_file[:-len('.wav')]}"
    assert (await inbox.next(state="ended"))["text"].startswith("Finished playing")

    stranger = await Statuses(recording_bridge.layer, people["smirnov"].pk).open()
    await press(recording_bridge, people["smirnov"], {"type": "recording.play", "call": row.pk})
    denied = await stranger.next(state="denied")
    assert denied["text"] == "That call has no recording you may hear." and denied["call"] == row.pk
    assert len([a for a in driver_pbx.actions if a.get("Application") == "Playback"]) == 1
    audit = await sync_to_async(lambda: list(MonitoringSession.objects.filter(kind="playback").order_by("pk")))()
    assert [(r.user_id, r.outcome) for r in audit] == [(people["petrova"].pk, "ended"), (people["smirnov"].pk, "denied")]
    assert audit[1].target_label == "" and audit[0].target_label.startswith("Anna")


async def test_a_call_answered_here_is_recorded_on_the_pickers_phone_from_its_pickup(
        driver, driver_pbx, recording_bridge, driver_roster):
    """Petrova (recorded) answers her trainee's ringing call on her own phone: before the PBX's
    `Pickup` her leg is the product's pickup leg (not recorded); once it carries the call it is her
    conversation. The trainee's rung leg never answered: nothing to record there."""
    people, phones = driver_roster
    ringing = await ringing_call(driver_pbx, recording_bridge, device(driver, "105"))
    inbox = await Statuses(recording_bridge.layer, people["petrova"].pk).open()
    await press(recording_bridge, people["petrova"], {"type": "pickup", "target": phones["anna"].pk})
    await inbox.next(state="answered", reason="picked_up")
    await until(lambda: len(mixmonitors(driver_pbx)) == 1)
    [action] = mixmonitors(driver_pbx)
    assert action["Channel"].startswith(device(driver, "104") + "-") and action["Channel"] != ringing


async def test_a_bridge_started_during_a_recorded_call_does_not_record_it_again_and_attaches_its_file(
        driver, driver_pbx, recording_bridge, folders):
    """A second MixMonitor into the same file would overwrite what was recorded: a call already up
    at login is left alone, and the file the PBX is writing is attached."""
    name = await driver_pbx.inbound_call(device(driver, "105"), caller_num="5557008")
    await until(lambda: len(mixmonitors(driver_pbx)) == 1)
    relative = recording_bridge.call_recordings.file_of(recording_bridge.board.channel(name))
    await recording_bridge.stop()  # e.g. `ami_bridge` restarted
    async with started_bridge(driver_pbx) as bridge:
        await until(lambda: bridge.call_recordings.devices is not None)
        assert bridge.call_recordings.file_of(bridge.board.channel(name)) == relative
        driver_pbx.switch.set_state(driver_pbx.switch.find(name), 6)  # an event on the call: Newstate Up again
        await bridge.client.send("Ping", {})  # answered after that event: the bridge has seen it
        assert len(mixmonitors(driver_pbx)) == 1
        await driver_pbx.hangup(name, 16)
        [row] = await written(bridge, 1)
    assert row.recording_file == relative and len(mixmonitors(driver_pbx)) == 1
