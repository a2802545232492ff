"""The bridge's side of call recordings (installed like the other command modules,
supervision.bridge.COMMAND_MODULES): start MixMonitor on the conversations of extensions marked
"record calls", learn the files a site's own dialplan records, and tell the call history which file
belongs to which call (`bridge.call_recordings.file_of(channel)`, read by history/recorder.py when
it captures a call's end).

When: a conversation of a recorded phone is up. The board channel is `up`, its `leg` is null (not a
spy, pickup or playback leg of the product), it spies on nobody, and no spy or playback press of the
product is ringing it right now (`presses.legs_in_flight`: the PBX names a leg's application only
after it answered); a picked-up call counts from its `Pickup` event. On PJSIP that is the phone's
own `PJSIP/104-...` channel, never the Local `;1`/`;2` of a click-to-call (docs/architecture.md, "A
person's phone on the board"; the captures record on the trainee's channel, the one bridged with
the customer). Each uniqueid is recorded once: the file is named after it
(history/recordings.file_for_uniqueid), and a second MixMonitor into the same file would overwrite
the first part. Calls already up when the bridge logs in are not started again (a previous run may
be recording them): the file is attached if it is there.

What the PBX says (asterisk2*-mixmonitor*): the action answers `Success` with no file name; the
file is the `File` sent. `VarSet` `MIXMONITOR_FILENAME` (read class `dialplan`) names the file of
any MixMonitor, the site dialplan's too, on the channel it records; that may be the caller's channel
rather than the phone's, so a file named on another channel of the same call (linkedid) is attached
to the phone's answered conversation. `Permission denied`: the AMI user lacks `write=system`; it is
logged once per login and `ami_check` says so.
"""

import asyncio
import logging
import os
import time
from collections import deque

from supervision.ami.client import ActionError
from supervision.board import device_of
from supervision.bridge import BOARD_GROUP
from supervision.models import Kind
from supervision.presses import legs_in_flight, on_db_thread

from history import recordings

logger = logging.getLogger(__name__)

TRIGGERS = frozenset({"Newstate", "BridgeEnter", "Pickup"})
GROUP_REJOIN_SECONDS = 3600.0
LINKEDID_GRACE_SECONDS = 60.0  # a file named on a call's other channel is kept this long after it hung up


def recorded_devices():
    from accounts.models import Extension

    return frozenset(extension.device for extension in Extension.objects.filter(record_calls=True))


class CallRecordings:
    def __init__(self, bridge):
        self.bridge = bridge
        self.board = bridge.board
        self.devices = None  # devices of extensions with record_calls; None until read
        self.files = {}  # uniqueid -> relative file, for a channel being recorded
        self.by_linkedid = {}  # linkedid -> relative file a dialplan named on some channel of the call
        self.decided = set()  # uniqueids not to start again (started, or up before this login)
        self.named_by = {}  # uniqueid of a channel that named a file -> its linkedid
        self.expiring = deque()  # (monotonic time, linkedid) of files whose naming channel has gone
        self.refused = False  # the PBX refused MixMonitor since the last login (logged once)
        self.sent = 0
        self._tasks = set()
        self._roster_task = None

    # --- what the history reads ------------------------------------------------------------------

    def file_of(self, channel):
        """The relative recording file of a board channel (a roster phone's conversation), or ""."""
        found = self.files.get(channel.get("uniqueid") or "")
        if found:
            return found
        if channel.get("answered_at") is not None:
            return self.by_linkedid.get(channel.get("linkedid") or "", "")
        return ""

    # --- events (in the loop, after the board applied them) ---------------------------------------

    def on_event(self, msg):
        event = msg.event
        if event == "VarSet":
            if msg.get("Variable") == "MIXMONITOR_FILENAME":
                self._named(msg)
            return
        if event == "Hangup":
            self._gone(msg)
            return
        if event not in TRIGGERS or not self.devices:
            return
        name = msg.get("Channel") or ""
        if event == "Pickup":
            # the picker's phone now carries the picked-up call (on PJSIP its own leg, not the `;1`)
            for channel in self.board.channels_of(self.board.owner_device(name) or device_of(name)):
                self._consider(channel, picked=True)
            return
        channel = self.board.channel(name)
        if channel is not None:
            self._consider(channel)

    def _consider(self, channel, picked=False):
        uniqueid = channel.get("uniqueid") or ""
        if (not uniqueid or uniqueid in self.decided or channel.get("state") != "up" or channel.get("leg") is not None
                or channel.get("spying_on") or channel.get("device") not in self.devices):
            return
        name = channel["name"]
        if name.startswith("Local/") and name.endswith(";2"):
            return
        kinds = (Kind.SPY, Kind.PLAYBACK) if picked else (Kind.SPY, Kind.PLAYBACK, Kind.PICKUP)
        if name in legs_in_flight(self.bridge, kinds):
            return
        relative = recordings.file_for_uniqueid(uniqueid)
        self.decided.add(uniqueid)
        if relative is None:
            logger.warning("%s: not recording %s: its uniqueid %r cannot name a file", self.bridge.name, name, uniqueid)
            return
        self.files[uniqueid] = relative
        self._spawn(self._start(name, uniqueid, relative))

    async def _start(self, name, uniqueid, relative):
        try:
            await self.bridge.client.send("MixMonitor", [("Channel", name), ("File", recordings.pbx_path(relative))])
            self.sent += 1
        except ActionError as exc:
            self.files.pop(uniqueid, None)
            text = getattr(exc, "message", "") or str(exc)
            if "permission" in text.lower():
                if not self.refused:
                    self.refused = True
                    logger.warning("%s: the PBX refuses MixMonitor (%s): calls of extensions marked 'record calls' "
                                   "are not recorded; the AMI user needs write=system (manage.py ami_check)",
                                   self.bridge.name, text)
            else:
                logger.info("%s: MixMonitor on %s refused: %s", self.bridge.name, name, text)
        except Exception as exc:  # noqa: BLE001 - timeout, link lost: whether it runs is unknown
            logger.warning("%s: MixMonitor on %s not confirmed: %r", self.bridge.name, name, exc)

    def _named(self, msg):
        """A MixMonitor started on this channel (ours or the site dialplan's) writes this file."""
        value = msg.get("Value") or ""
        relative = recordings.relative_from_pbx(value)
        if relative is None:
            logger.warning("%s: %s records into %s, outside CALL_RECORDINGS_PBX_DIR=%s: the web servers cannot "
                           "play it", self.bridge.name, msg.get("Channel"), value, recordings.pbx_path("")[:-1])
            return
        uniqueid = msg.get("Uniqueid") or ""
        if uniqueid:
            self.files[uniqueid] = relative
        linkedid = msg.get("Linkedid") or ""
        if linkedid:
            self.by_linkedid.setdefault(linkedid, relative)
            self.named_by.setdefault(uniqueid, linkedid)

    def _gone(self, msg):
        uniqueid = msg.get("Uniqueid") or ""
        self.files.pop(uniqueid, None)
        self.decided.discard(uniqueid)
        now = time.monotonic()
        linkedid = self.named_by.pop(uniqueid, None)
        if linkedid is not None:
            # The channel that named the file is gone; the call's other channels (the phone's,
            # when the caller's channel was recorded) hang up right after it: keep it a while.
            self.expiring.append((now + LINKEDID_GRACE_SECONDS, linkedid))
        while self.expiring and self.expiring[0][0] <= now:
            self.by_linkedid.pop(self.expiring.popleft()[1], None)

    # --- login, roster --------------------------------------------------------------------------

    async def on_resync(self, _items):
        """After each login: calls up now were answered before it. Never start them again (the
        previous run may be recording them into the same file); attach the file if it is there."""
        self.refused = False
        if self.devices is None:
            await self.reload_roster()  # the calls up now are judged by it
        self._ensure_roster()
        live = {}
        for channel in self.board.snapshot():
            if channel.get("uniqueid"):
                live[channel["uniqueid"]] = channel
        self.decided = {uniqueid for uniqueid in self.decided if uniqueid in live}
        self.files = {uniqueid: relative for uniqueid, relative in self.files.items() if uniqueid in live}
        for uniqueid in [uniqueid for uniqueid in self.named_by if uniqueid not in live]:
            self.expiring.append((time.monotonic() + LINKEDID_GRACE_SECONDS, self.named_by.pop(uniqueid)))
        candidates = []
        for uniqueid, channel in live.items():
            self.decided.add(uniqueid)
            if uniqueid not in self.files and channel.get("state") == "up" and self.devices \
                    and channel.get("device") in self.devices:
                relative = recordings.file_for_uniqueid(uniqueid)
                if relative:
                    candidates.append((uniqueid, relative))
        if candidates:
            present = await asyncio.to_thread(_present, candidates)
            self.files.update(present)

    async def reload_roster(self):
        try:
            self.devices = await on_db_thread(recorded_devices)()
        except Exception:  # noqa: BLE001 - keep the last list
            logger.warning("%s: could not read which extensions are recorded", self.bridge.name, exc_info=True)

    def _ensure_roster(self):
        if self._roster_task is None:
            self._roster_task = asyncio.get_running_loop().create_task(
                self._roster_loop(), name=f"{self.bridge.name}: recorded extensions")

    async def _roster_loop(self):
        """Read the recorded extensions now, and again on every `roster.changed` on the board group."""
        layer = self.bridge.layer
        channel = None
        joined = 0.0
        await self.reload_roster()
        while True:
            try:
                if channel is None:
                    channel = await layer.new_channel()
                if time.monotonic() - joined > GROUP_REJOIN_SECONDS:
                    await layer.group_add(BOARD_GROUP, channel)
                    joined = time.monotonic()
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - e.g. Redis away for a moment
                logger.warning("%s: could not follow roster changes; retrying", self.bridge.name, exc_info=True)
                await asyncio.sleep(5)
                joined = 0.0
                await self.reload_roster()
                continue
            if message.get("type") == "roster.changed":
                await self.reload_roster()

    def _spawn(self, coroutine):
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self):
        for task in [self._roster_task, *self._tasks]:
            if task is not None:
                task.cancel()
        self._roster_task = None


def _present(candidates):
    """The (uniqueid, relative) pairs whose file the web servers can already see."""
    found = {}
    for uniqueid, relative in candidates:
        path = recordings.local_path(relative)
        if path is not None and os.path.isfile(path):
            found[uniqueid] = relative
    return found


def install(bridge):
    tracker = CallRecordings(bridge)
    bridge.add_event_listener(tracker.on_event)
    bridge.add_resync_listener(tracker.on_resync)
    if hasattr(bridge, "add_stop_listener"):
        bridge.add_stop_listener(tracker.stop)
    bridge.call_recordings = tracker
    from history import recordings_play  # "Play to my phone" on the call page: the library's press

    recordings_play.install(bridge)
    return tracker
