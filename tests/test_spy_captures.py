"""The spy monitor fed the real Asterisk bytes (../shared/ami-captures), event by event: what the
simulator reproduces in the other spy tests, checked against the captures themselves."""

import pytest
from asgiref.sync import sync_to_async

from accounts.models import Extension, Role, Technology, User
from supervision.models import MonitoringSession, Outcome
from supervision.monitoring import LiveSession, SpyMonitor
from tests.captures import capture_messages, sent_messages

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class RecordingBridge:
    """What the monitor uses of the bridge and its AMI client, recorded: the actions it sends
    (each answered `Success`) and the messages it addresses to users."""

    name = "pbx"
    stopping = False
    resync_detail = ""

    def __init__(self):
        self.client = self
        self.sent = []
        self.notices = []

    async def send(self, action, fields=(), timeout=None):
        self.sent.append((action, list(fields)))

    async def notify_user(self, user_id, message):
        self.notices.append((user_id, message))

    def statuses(self):
        return [message for _user, message in self.notices if message["type"] == "spy.status"]


@sync_to_async
def people():
    curator = User.objects.create_user(username="petrova", password=None, role=Role.CURATOR, first_name="Olga")
    trainee = User.objects.create_user(username="anna", password=None, role=Role.TRAINEE, curator=curator,
                                       first_name="Anna")
    return curator, trainee


@sync_to_async
def open_row(user, **fields):
    return MonitoringSession.objects.create(user=user, user_label=str(user), target_label="Anna", mode="listen",
                                            modes="listen", **fields)


@sync_to_async
def row(pk):
    return MonitoringSession.objects.get(pk=pk)


async def replay(monitor, name):
    """Every message the server sent on that connection, through the monitor, in order."""
    _banner, messages = capture_messages(name)
    for msg in messages:
        if msg.event is None:
            continue
        handling = monitor.on_event(msg)
        if handling is not None:
            await handling


async def session_for(monitor, capture, mode):
    """The session the captured Originate belongs to, as the monitor holds it once the PBX
    queued it (options from the captured `Data`)."""
    curator, trainee = await people()
    originate = next(m for m in sent_messages(capture) if m.get("Application") == "ChanSpy")
    saved = await open_row(curator, outcome=Outcome.QUEUED, action_id=originate.action_id)
    live = LiveSession(user_id=curator.pk, user_name="Olga", session_id=saved.pk, target_user_id=trainee.pk,
                       target_name="Anna", mode=mode, modes=[mode], action_id=originate.action_id,
                       options=originate["Data"].rpartition(",")[2], state=Outcome.QUEUED)
    monitor.by_user[curator.pk] = live
    monitor.by_action[live.action_id] = live
    return live


async def test_whisper_without_the_beep_sound_fails_with_its_likely_cause():
    """`asterisk20-whisper-no-beep`: OriginateResponse Success, then the spy leg's Hangup in the same
    millisecond; no ChanSpyStart."""
    bridge = RecordingBridge()
    monitor = SpyMonitor(bridge)
    live = await session_for(monitor, "asterisk20-whisper-no-beep", "whisper")

    await replay(monitor, "asterisk20-whisper-no-beep")

    assert [s["state"] for s in bridge.statuses()] == ["answered", "failed"]
    assert "the PBX may lack it" in bridge.statuses()[-1]["text"]
    saved = await row(live.session_id)
    assert (saved.outcome, saved.reason) == (Outcome.FAILED, "spy_not_started")
    assert (saved.spy_channel, saved.spy_uniqueid) == ("SIP/104-00000018", "1796096276.30")
    assert bridge.sent == [] and monitor.by_user == {}
    assert [m for _u, m in bridge.notices if m["type"] == "monitored"] == []


async def test_with_option_e_the_spied_call_ending_ends_the_session_without_a_hangup():
    """`asterisk20-restricted-stop-exit-option-1cami`: the article's user, `qEx`; the trainee hangs
    up, ChanSpyStop, and the PBX ends the spy leg itself."""
    bridge = RecordingBridge()
    monitor = SpyMonitor(bridge)
    live = await session_for(monitor, "asterisk20-restricted-stop-exit-option-1cami", "listen")

    await replay(monitor, "asterisk20-restricted-stop-exit-option-1cami")

    assert [s["state"] for s in bridge.statuses()] == ["answered", "spying", "ended"]
    assert bridge.statuses()[-1]["text"] == "Anna's call ended."
    assert [m["active"] for _u, m in bridge.notices if m["type"] == "monitored"] == [True, False]
    saved = await row(live.session_id)
    assert saved.outcome == Outcome.ENDED and saved.spy_channel == "SIP/104-00000016"
    assert bridge.sent == []  # nothing to hang up: a user without Hangup loses nothing here


def listed(name):
    return [msg for msg in capture_messages(name)[1] if msg.event == "CoreShowChannel"]


@sync_to_async
def phone(user, technology, context=""):
    return Extension.objects.create(user=user, technology=technology, resource="104", originate_context=context)


@pytest.mark.parametrize("capture, technology, context, leg, uniqueid", [
    ("asterisk20-spy-leg-coreshowchannels", Technology.SIP, "", "SIP/104-0000001a", "1796096285.34"),
    ("asterisk22-pjsip-coreshowchannels", Technology.PJSIP, "dashboard-phones",
     "Local/104@dashboard-phones-00000015;1", "1796095532.61"),
])
async def test_a_restarted_bridge_takes_the_listed_spy_leg_back_by_name_and_uniqueid(
        capture, technology, context, leg, uniqueid):
    curator, _trainee = await people()
    await phone(curator, technology, context)
    taken = await open_row(curator, outcome=Outcome.SPYING, spy_channel=leg, spy_uniqueid=uniqueid)
    other_run = await open_row(curator, outcome=Outcome.SPYING, spy_channel=leg, spy_uniqueid="1796090000.34")
    bridge = RecordingBridge()
    monitor = SpyMonitor(bridge)
    monitor.left_open = [taken, other_run]

    await monitor.on_resync(listed(capture))

    live = monitor.by_user[curator.pk]
    assert (live.session_id, live.spy_channel, live.state) == (taken.pk, leg, Outcome.SPYING)
    assert bridge.statuses() == [
        {"type": "spy.status", "state": "spying", "reason": "taken_back", "text": "Listening to Anna",
         "session": taken.pk, "target": None, "mode": "listen"},
        {"type": "spy.status", "state": "interrupted", "reason": "bridge_restarted",
         "text": "The bridge restarted while this session was in flight.", "session": other_run.pk,
         "target": None, "mode": "listen"},
    ]
    assert (await row(other_run.pk)).outcome == Outcome.INTERRUPTED  # same name, another call
    assert bridge.sent == []


@pytest.mark.parametrize("capture, technology, context, leg", [
    ("asterisk20-spy-leg-coreshowchannels", Technology.SIP, "", "SIP/104-0000001a"),
    ("asterisk22-pjsip-coreshowchannels", Technology.PJSIP, "dashboard-phones", "Local/104@dashboard-phones-00000015;1"),
])
async def test_a_listed_spy_leg_of_ours_that_no_session_owns_is_hung_up(capture, technology, context, leg):
    """As the capture's own client did (`hangup-own-spy`): only the ChanSpy leg, never the `;2`
    or the phone's own leg."""
    curator, _trainee = await people()
    await phone(curator, technology, context)
    bridge = RecordingBridge()
    monitor = SpyMonitor(bridge)

    await monitor.on_resync(listed(capture))

    assert bridge.sent == [("Hangup", [("Channel", leg)])]
    assert monitor.by_user == {}


async def test_a_spy_leg_on_a_phone_outside_the_roster_is_left_alone():
    bridge = RecordingBridge()
    monitor = SpyMonitor(bridge)

    await monitor.on_resync(listed("asterisk20-spy-leg-coreshowchannels"))

    assert bridge.sent == []
