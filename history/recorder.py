"""The bridge's call recorder: every ended conversation of a roster phone becomes a CallRecord.

In the event loop it does only what cannot wait, and cheaply (bench/ami_ingest.py measures it):
- before the board applies a `Newchannel` of a roster phone: the board's clock and the state the
  channel starts in (Ring: the phone dialled; Down: the PBX rings it);
- before the board applies a `Hangup` of a roster phone: a copy of the channel as the board had
  it (times, caller and connected line, `dialled`, `leg`, uniqueid, linkedid), the `Cause` and the
  `Exten`, queued. A spy, pickup or playback leg (`leg`), a channel spying, and the `;2` half of a
  Local pair are not conversations and are left out; on the PJSIP route the roster device is the
  phone's own `PJSIP/...` leg, so a click-to-call through `Local/...;1`/`;2` gives one row.
The queue is written in batches (`bulk_create`) on the database thread once each call has been
over HISTORY_WRITE_DELAY_SECONDS, on Django's database thread (the one the audit rows are written
on, after them): a spy's row says it started (`spying_started_at`) and which modes it used while
the call was still up, so the call gets `monitored`/`monitor_modes` from the rows of its uniqueid
even when the spy's row itself is closed later. The call page reads those rows again when shown.
What is still queued when the bridge stops is written then.

The devices of the roster are kept in memory and read again whenever the roster changes (the
`roster.changed` message every process sends on the board group when a user or extension is saved).
"""

import asyncio
import logging
import secrets
import time
from collections import deque

from django.conf import settings

from history.calls import Ended, Roster, RosterPhone, is_local_second_half, join_modes, record_fields
from supervision.board import device_of
from supervision.bridge import BOARD_GROUP
from supervision.presses import on_db_thread

logger = logging.getLogger(__name__)

GROUP_REJOIN_SECONDS = 3600.0  # group memberships expire (channel layers' group_expiry: a day)


def load_roster():
    from accounts.models import Extension

    phones, numbers = {}, set()
    for extension in Extension.objects.select_related("user"):
        numbers.add(extension.resource)
        phones[extension.device] = RosterPhone(
            extension.pk, extension.user_id, str(extension.user), extension.resource)
    return Roster(phones, frozenset(numbers))


def write_calls(batch, roster):
    """Write the ended calls of `batch` (Ended) that belong to roster phones; returns the rows."""
    from history.models import CallRecord
    from supervision.models import Kind, MonitoringSession

    fields = []
    for ended in batch:
        phone = roster.phones.get(ended.channel["device"])
        if phone is not None and ended.channel.get("uniqueid"):
            fields.append(record_fields(ended, phone, roster))
    if not fields:
        return []
    monitors = {}
    for uniqueid, modes, mode in (
        MonitoringSession.objects.filter(
            kind=Kind.SPY, target_uniqueid__in=[row["uniqueid"] for row in fields], spying_started_at__isnull=False)
        .order_by("requested_at", "pk").values_list("target_uniqueid", "modes", "mode")
    ):
        monitors.setdefault(uniqueid, []).append((modes, mode))
    records = []
    for row in fields:
        used = monitors.get(row["uniqueid"])
        records.append(CallRecord(**row, monitored=bool(used), monitor_modes=join_modes(used or [])[:200]))
    return CallRecord.objects.bulk_create(records)


class CallRecorder:
    def __init__(self, bridge, *, delay=None, interval=None):
        self.bridge = bridge
        self.board = bridge.board
        self.now = getattr(bridge.board, "_now", time.time)  # the board's clock
        self.delay = settings.HISTORY_WRITE_DELAY_SECONDS if delay is None else delay
        self.interval = settings.HISTORY_FLUSH_SECONDS if interval is None else interval
        self.roster = None  # None until read: meanwhile every conversation's end is kept
        self.devices = None
        self.seen = {}  # channel name -> (board time at Newchannel, ChannelState)
        self.legs = set()  # phone legs of an application whose Local `;1` already hung up
        self.pending = deque()  # (monotonic time it may be written, Ended)
        self.written = 0
        self._tasks = []
        self._writing = None

    # --- in the event loop: cheap --------------------------------------------------------------

    def on_newchannel(self, msg):
        get = msg.fields.get
        name = get("Channel")
        if name and (self.devices is None or device_of(name) in self.devices):
            self.seen[name] = (self.now(), get("ChannelState"))

    def on_hangup(self, msg):
        get = msg.fields.get
        name = get("Channel")
        if not name:
            return
        seen = self.seen.pop(name, None)
        if name.endswith(";1") and name.startswith("Local/"):
            self._mark_legs(name)
        elif self.legs and name in self.legs:
            self.legs.discard(name)
            return
        if self.devices is not None and device_of(name) not in self.devices:
            return
        channel = self.board.channel(name)
        if channel is None or channel["leg"] is not None or channel["spying_on"] is not None:
            return
        if is_local_second_half(name):
            return
        try:
            cause = int(get("Cause") or "")
        except ValueError:
            cause = None
        recordings = getattr(self.bridge, "call_recordings", None)  # history/recordings_bridge.py
        ended = Ended(channel, self.now(), seen[0] if seen else None, seen[1] if seen else None, cause,
                      get("Exten") or "", recordings.file_of(channel) if recordings is not None else "")
        self.pending.append((time.monotonic() + self.delay, ended))
        self._ensure_running()

    def _mark_legs(self, name):
        """A Local `;1` running ChanSpy, PickupChan or Playback is going: the phone leg bridged with
        its `;2` stops being a leg on the board once it is gone, yet it is no conversation either."""
        channel = self.board.channel(name)
        if channel is None or channel["leg"] is None:
            return
        for other in self.board.channels_of(self.board.owner_device(name)):
            if other["leg"] is not None and other["leg"]["of"] == name and other["name"] != name:
                self.legs.add(other["name"])

    # --- off the loop --------------------------------------------------------------------------

    def _ensure_running(self):
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._flush_loop(), name=f"{self.bridge.name}: history writer"),
                       loop.create_task(self._roster_loop(), name=f"{self.bridge.name}: history roster")]

    async def on_resync(self, _items):
        """After each login: make sure the writer runs and forget first sightings of channels
        that ended while the link was down."""
        self._ensure_running()
        if self.seen:
            self.seen = {name: seen for name, seen in self.seen.items() if self.board.channel(name) is not None}
        self.legs = {name for name in self.legs if self.board.channel(name) is not None}

    async def reload_roster(self):
        try:
            roster = await on_db_thread(load_roster)()
        except Exception:  # noqa: BLE001 - keep the last roster; every end is kept meanwhile if none
            logger.warning("%s: could not read the roster for the call history", self.bridge.name, exc_info=True)
            return
        self.roster, self.devices = roster, roster.devices

    async def _roster_loop(self):
        """Read the roster now and again on every `roster.changed` on the board group."""
        layer = self.bridge.layer
        channel = None
        joined = None  # monotonic time of the last group_add
        while True:
            try:
                if channel is None:
                    # A plain channel name, not `new_channel()`'s `...!...`: channels_redis does not let a
                    # receive on one of those be cancelled (the bridge stopping would hang).
                    channel = f"supervision.history.{secrets.token_hex(8)}"
                if joined is None or time.monotonic() - joined > GROUP_REJOIN_SECONDS:
                    first = joined is None
                    await layer.group_add(BOARD_GROUP, channel)
                    joined = time.monotonic()
                    if first:  # read after joining: a change in between is not missed
                        await self.reload_roster()
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - e.g. Redis away for a moment: read the roster again after
                logger.warning("%s: history could not follow roster changes; retrying", self.bridge.name, exc_info=True)
                await asyncio.sleep(5)
                joined = None
                continue
            if message.get("type") == "roster.changed":
                await self.reload_roster()

    async def _flush_loop(self):
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush(due_only=True)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - logged and queued again by _written
                pass

    async def flush(self, due_only=False):
        """Write the queued calls (only those over `delay` ago with `due_only`); returns how many
        rows were written. A batch that fails goes back to the queue; a batch being written goes on
        even if the caller is cancelled (the bridge stopping waits for it)."""
        while self._writing is not None:
            await asyncio.wait([self._writing])
        now = time.monotonic()
        batch = []
        while self.pending and (not due_only or self.pending[0][0] <= now):
            batch.append(self.pending.popleft()[1])
        if not batch:
            return 0
        if self.roster is None:
            await self.reload_roster()
        if self.roster is None:
            self._requeue(batch)
            return 0
        task = self._writing = asyncio.ensure_future(on_db_thread(write_calls)(batch, self.roster))
        task.add_done_callback(lambda done: self._written(done, batch))
        rows = await asyncio.shield(task)
        return len(rows)

    def _written(self, task, batch):
        self._writing = None
        if task.cancelled() or task.exception() is not None:
            logger.warning("%s: could not write %d calls to the history; will retry", self.bridge.name, len(batch),
                           exc_info=None if task.cancelled() else task.exception())
            self._requeue(batch)
        else:
            self.written += len(task.result())

    def _requeue(self, batch):
        self.pending.extendleft((0.0, ended) for ended in reversed(batch))

    async def stop(self):
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._tasks = []
        while self._writing is not None:
            await asyncio.wait([self._writing])
        if self.pending:
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - logged by _written; nothing more to do when stopping
                pass


def install(bridge):
    recorder = CallRecorder(bridge)
    bridge.add_board_reader("Newchannel", recorder.on_newchannel)
    bridge.add_board_reader("Hangup", recorder.on_hangup)
    bridge.add_resync_listener(recorder.on_resync)
    bridge.add_stop_listener(recorder.stop)
    bridge.call_recorder = recorder
    return recorder
