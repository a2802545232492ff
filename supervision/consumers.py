"""The browser's WebSockets: one authenticated dashboard (DashboardConsumer), or the training
library's play buttons (LibraryConsumer, commands and their answers only).

On connect it works out what its user may see, joins the diff groups of exactly those phones, asks
the bridge for a snapshot and then forwards diffs (filtered once more here): a phone outside the
user's view never reaches the browser, not even as a diff. Diffs that arrive before the snapshot
are buffered; those the snapshot already holds (seq <= snapshot seq) are dropped. Browser commands are checked for shape only and
forwarded to the bridge, which checks rights and records them.

A page that announces acknowledgements (`hello` with `acks: true`) gets a bounded window: the
consumer counts the frames it sent after the page's last `ack`, and past ACK_WINDOW_FRAMES (or
ACK_WINDOW_BYTES) it drops that page's diffs instead of handing them to daphne, whose write buffer
has no bound. The page is then stale: its next `ack` or `ping` gets one fresh snapshot, and if it
stays silent for STALE_CLOSE_SECONDS the socket is closed with STALE_CLOSE_CODE (the page reconnects
and gets a snapshot). Pages that never said `hello` are not bounded here (daphne's ping timeout
still lets a stuck one go).
"""

import asyncio
import collections
import json
import logging
import random
import time

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header
from django.utils.translation import gettext as _

from accounts import sessions
from supervision import audience, jsontext
from supervision.bridge import BOARD_GROUP, BRIDGE_CHANNEL, device_group, user_group
from supervision.presence import PRESENCE_CHANNEL

logger = logging.getLogger(__name__)

MAX_FRAME = 4096  # characters; a command is a few dozen
HEARTBEAT_SECONDS = 15
# The view is recomputed when the roster changes (audience sends `roster.changed`), and now and
# then in case a change came from elsewhere (a management command without the shared layer).
# Each refresh costs a hundred queries, so hundreds of sockets must not do it all at once.
ROSTER_REFRESH_SECONDS = 300
ROSTER_CHANGE_SPREAD_SECONDS = 2.0
SNAPSHOT_WAIT_SECONDS = 3
# The bridge repeats its link state every BRIDGE_HEARTBEAT_SECONDS; this many beats of silence
# mean the bridge process is gone (killed `ami_bridge`), and the page is told.
BRIDGE_SILENT_BEATS = 3
NO_BRIDGE = {"state": "no_bridge", "since": None, "detail": ""}
MODES = ("listen", "whisper", "barge")
# A page that acknowledges may be this far behind (frames sent after its last ack, or their bytes)
# before its diffs are dropped: at a curator's few frames a second, minutes of slack; an admin's
# page at 200 frames/s acks every 500 ms, so it stays well inside.
ACK_WINDOW_FRAMES = 200
ACK_WINDOW_BYTES = 1_000_000
STALE_CLOSE_SECONDS = 60  # a stale page pings every 20 s; this much silence means it is gone
STALE_CLOSE_CODE = 4408  # the page reconnects at once and gets a snapshot
# A socket lives only as long as the login session it opened with: logout (here or in any other
# web server), expiry, a password change, the user deactivated or deleted. The signals say so at
# once (audience: `session.logged_out`, `session.check`); this re-check is the backstop (expiry,
# a session deleted in the database), one primary-key read per socket and period.
SESSION_ENDED_CLOSE_CODE = 4401  # the page reloads: the server shows it the login page
SESSION_RECHECK_SECONDS = 60

# Browser command shapes: field -> (type, required). Anything else in the frame is refused.
ID, MODE, TEXT = "id", "mode", "text"
COMMAND_SHAPES = {
    "spy": {"target": (ID, True), "mode": (MODE, True)},
    "spy.stop": {"session": (ID, True)},
    "spy.switch": {"session": (ID, True), "mode": (MODE, True)},
    "pickup": {"target": (ID, True)},
    "dial": {"number": (TEXT, True), "from": (ID, False)},
    "playback": {"recording": (ID, True), "from": (ID, False)},
    "recording.play": {"call": (ID, True), "from": (ID, False)},  # a call's recording (history/recordings_play.py)
    "help.raise": {},  # the bridge finds the trainee's call on the board: the page names none
    "help.cancel": {"request": (ID, True)},
}
MAX_TEXT = 80


class ShapeError(ValueError):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def check_command(command):
    """Raise ShapeError unless `command` is one of COMMAND_SHAPES with the right field types."""
    shape = COMMAND_SHAPES[command["type"]]
    extra = set(command) - set(shape) - {"type"}
    if extra:
        raise ShapeError("bad_field", _("Unexpected field(s): %(fields)s.") % {"fields": ", ".join(sorted(extra))[:200]})
    for name, (kind, required) in shape.items():
        if name not in command:
            if required:
                raise ShapeError("missing_field", _("Field %(field)s is missing.") % {"field": name})
            continue
        value = command[name]
        if kind == ID:
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63
        elif kind == MODE:
            ok = value in MODES
        else:  # printable: no control character, lone surrogate (no UTF-8 form) or direction mark
            ok = isinstance(value, str) and 0 < len(value) <= MAX_TEXT and value.isprintable()
        if not ok:
            raise ShapeError("bad_field", _("Field %(field)s has a wrong value.") % {"field": name})


class CommandSocket(AsyncWebsocketConsumer):
    """A logged-in page's socket: takes the page's commands (those in COMMANDS, checked for shape
    only) to the bridge, and shows the bridge's answers to this user (`user.message`)."""

    groups = []  # joined by hand once the user is known
    COMMANDS = frozenset(COMMAND_SHAPES)

    async def _admit(self):
        """True for an active, logged-in user's socket; else the handshake is refused (4401)."""
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated or not self.user.is_active:
            await self.close(code=4401)  # before accept: the handshake is refused
            return False
        self.language = self._language()
        self.user_group = user_group(self.user.pk)
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        self.session_watch = asyncio.create_task(self._watch_session())
        return True

    async def _session_live(self):
        return await database_sync_to_async(sessions.live_user_id)(self.session_key) == self.user.pk

    async def _end_session(self):
        logger.info("socket of user %s closed: its login session ended", self.user.pk)
        await self.close(code=SESSION_ENDED_CLOSE_CODE)

    async def _watch_session(self):
        while True:
            await asyncio.sleep(SESSION_RECHECK_SECONDS * random.uniform(0.75, 1.25))
            try:
                live = await self._session_live()
            except Exception:  # noqa: BLE001 - the database is away; presses are checked anyway
                logger.warning("could not check the session of user %s", self.user.pk, exc_info=True)
                continue
            if not live:
                return await self._end_session()

    async def session_logged_out(self, event):
        if self.session_key and event.get("session") == sessions.session_key_digest(self.session_key):
            await self._end_session()

    async def session_check(self, _event):
        if not await self._session_live():
            await self._end_session()

    async def websocket_disconnect(self, message):
        if getattr(self, "session_watch", None) is not None:
            self.session_watch.cancel()
        await super().websocket_disconnect(message)


    def _language(self):
        """The language the page was served in: the switcher's cookie, else the browser's choice."""
        candidates = []
        cookie = self.scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME)
        if cookie:
            candidates.append(cookie)
        header = dict(self.scope.get("headers", [])).get(b"accept-language", b"").decode("latin-1")
        candidates += [code for code, _quality in parse_accept_lang_header(header[:500])]
        for code in candidates:
            try:
                return translation.get_supported_language_variant(code)
            except LookupError:
                continue
        return settings.LANGUAGE_CODE

    # --- browser -> server -----------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        with translation.override(self.language):
            await self._receive(text_data, bytes_data)

    async def _receive(self, text_data, bytes_data):
        if text_data is None:
            return await self.send_error("bad_frame", _("Only JSON text frames are accepted."))
        if len(text_data) > MAX_FRAME:
            return await self.send_error("too_big", _("The message is too long."))
        try:
            message = json.loads(text_data)
        except ValueError:
            return await self.send_error("bad_json", _("The message is not valid JSON."))
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return await self.send_error("bad_message", _("A message is a JSON object with a \"type\"."))
        if (message["type"] in self.COMMANDS or message["type"] == "resync") and not await self._session_live():
            return await self._end_session()  # a press (or the board) for a session that ended: nothing is sent
        if await self.page_message(message):
            return None
        if message["type"] not in self.COMMANDS:
            return await self.send_error("unknown_type", _("Unknown message type."))
        try:
            check_command(message)
        except ShapeError as exc:
            return await self.send_error(exc.code, exc.message)
        client = self.scope.get("client") or [None]
        try:
            await self.channel_layer.send(
                BRIDGE_CHANNEL,
                {
                    "type": "bridge.command",
                    "command": message,
                    "user_id": self.user.pk,
                    "reply_to": self.channel_name,
                    "client": client[0],
                    "language": self.language,
                },
            )
        except ChannelFull:
            await self.send_error("busy", _("The server is busy; try again in a moment."))
        return None

    async def page_message(self, message):
        """A message of the page's own kind (not a command): True when it was handled here."""
        return False

    async def user_message(self, event):
        await self.send_json(event["message"])

    async def send_error(self, code, message):
        await self.send_json({"type": "error", "code": code, "message": message})

    async def send_json(self, content):
        await self.send(text_data=jsontext.dumps(content))


class LibraryConsumer(CommandSocket):
    """The training library's socket: it plays recordings and hears how that went, and nothing of
    the board (no snapshot, no diffs: an open library tab costs the fan-out nothing)."""

    COMMANDS = frozenset({"playback", "recording.play"})

    async def connect(self):
        if not await self._admit():
            return
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "user_group"):
            await self.channel_layer.group_discard(self.user_group, self.channel_name)


class DashboardConsumer(CommandSocket):
    async def connect(self):
        if not await self._admit():
            return
        self.view = await database_sync_to_async(audience.build_view)(self.user)
        self.snapshot_seq = None  # None while waiting for the bridge's snapshot
        self.device_seq = {}  # device -> seq of the last diff forwarded for it
        self.pending_diffs = []
        self.acks = False  # the page acknowledges what it applied (its `hello`)
        self.unacked = collections.deque()  # (seq, characters) of frames sent after the last ack
        self.unacked_chars = 0
        self.stale = False  # fell behind the window: diffs are dropped until it speaks again
        self.stale_close = None
        self.link = None
        self.bridge_heard = time.monotonic()  # the last message from the bridge
        self.joined_devices = set()
        await self.channel_layer.group_add(BOARD_GROUP, self.channel_name)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self._follow_devices(self.view.devices)
        await self.accept()
        await self._say_presence("here")
        self.snapshot_wait = None
        self.timers = [
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._refresh_roster()),
            asyncio.create_task(self._watch_bridge()),
        ]
        await self.request_snapshot()

    async def disconnect(self, code):
        for task in [*getattr(self, "timers", []), getattr(self, "snapshot_wait", None), getattr(self, "stale_close", None)]:
            if task is not None:
                task.cancel()
        if hasattr(self, "joined_devices"):  # it got as far as joining groups
            await self._say_presence("gone")
            await self.channel_layer.group_discard(BOARD_GROUP, self.channel_name)
            await self.channel_layer.group_discard(self.user_group, self.channel_name)
            await self._follow_devices(frozenset())

    async def _follow_devices(self, devices):
        """Be in the diff group of each visible phone, and of no other."""
        for device in self.joined_devices - devices:
            await self.channel_layer.group_discard(device_group(device), self.channel_name)
        for device in devices - self.joined_devices:
            await self.channel_layer.group_add(device_group(device), self.channel_name)
        self.joined_devices = set(devices)

    # --- snapshot and diffs ----------------------------------------------------------------------

    async def request_snapshot(self):
        self.snapshot_seq = None
        self.pending_diffs = []
        try:
            await self.channel_layer.send(BRIDGE_CHANNEL, {"type": "bridge.snapshot", "reply_to": self.channel_name})
        except ChannelFull:
            logger.warning("the bridge does not take requests (is it running?)")
        if self.snapshot_wait is not None:
            self.snapshot_wait.cancel()
        self.snapshot_wait = asyncio.create_task(self._snapshot_watchdog())

    async def _snapshot_watchdog(self):
        """No bridge answers (AMI_BRIDGE=off, the external bridge is down): say so, keep asking."""
        while self.snapshot_seq is None:
            await asyncio.sleep(SNAPSHOT_WAIT_SECONDS)
            if self.snapshot_seq is not None:
                return
            await self.send_json({"type": "link", "link": NO_BRIDGE})
            try:
                await self.channel_layer.send(BRIDGE_CHANNEL, {"type": "bridge.snapshot", "reply_to": self.channel_name})
            except ChannelFull:
                pass

    async def board_snapshot(self, event):
        if self.snapshot_seq is not None:
            return  # a late answer to an earlier request: the first one already counted
        self.bridge_heard = time.monotonic()
        seq = event["seq"]
        self.snapshot_seq = seq
        self.device_seq = {}
        self.link = event.get("link")
        self.unacked.clear()  # what the page had is replaced by this
        self.unacked_chars = 0
        await self._send_counted(seq, self._snapshot_frame(event, seq))
        pending, self.pending_diffs = self.pending_diffs, []
        for diff_event in pending:
            await self.board_diff(diff_event)
        # Then this user's sessions in flight, from the bridge that runs them (a reloaded page or
        # a second tab gets its Stop and Switch back); they come as the presses' own messages.
        try:
            await self.channel_layer.send(BRIDGE_CHANNEL, {"type": "bridge.sessions", "user_id": self.user.pk,
                                                           "reply_to": self.channel_name, "language": self.language})
        except ChannelFull:
            logger.warning("the bridge does not take requests; the page gets its sessions with its next snapshot")

    def _snapshot_frame(self, event, seq):
        """The snapshot's JSON text. The bridge sends each channel's JSON text along with it
        (`channel_json`, same order): the visible ones are joined as they are, so an admin's
        5,000-call frame is not encoded again for every socket."""
        channels = event.get("channels", [])
        texts = event.get("channel_json")
        head = {"type": "snapshot", **self.view.as_dict()}
        phones = [phone for phone in event.get("phones", ()) if phone["device"] in self.view.devices]
        tail = {"phones": phones, "link": self.link, "seq": seq, "now": event.get("now")}
        if not isinstance(texts, list) or len(texts) != len(channels):
            return jsontext.dumps({**head, "channels": audience.filter_channels(channels, self.view.devices), **tail})
        devices = self.view.devices
        shown = ",".join(text for channel, text in zip(channels, texts) if channel.get("device") in devices)
        return "".join((jsontext.dumps(head)[:-1], ',"channels":[', shown, "],",
                        jsontext.dumps(tail)[1:]))

    async def board_diff(self, event):
        self.bridge_heard = time.monotonic()
        if self.stale:
            return  # dropped, never queued: the page gets a snapshot when it speaks again
        if self.snapshot_seq is None:
            self.pending_diffs.append(event)
            return
        seq, device = event["seq"], event.get("device")
        if seq <= self.snapshot_seq:
            return  # the snapshot already holds it
        prev = event.get("prev", 0)
        if prev > self.snapshot_seq and self.device_seq.get(device) != prev:
            # This phone's previous diff never came (a full channel dropped it): start again.
            logger.info("dashboard of user %s missed diff %s of %s; resyncing", self.user.pk, prev, device)
            await self.request_snapshot()
            return
        self.device_seq[device] = seq
        # The bridge sends one message per phone: the socket's view decides for all its diffs
        # (a phone just taken off this view may still be in a group the socket leaves shortly).
        if device in self.view.devices:
            diffs = event["diffs"]
            if self.acks and (len(self.unacked) >= ACK_WINDOW_FRAMES or self.unacked_chars >= ACK_WINDOW_BYTES):
                await self._fall_behind()
                return
            await self._send_counted(seq, jsontext.dumps({"type": "diff", "seq": seq, "diffs": diffs}))

    # --- the acknowledgement window --------------------------------------------------------------

    async def _send_counted(self, seq, text):
        if self.acks:
            self.unacked.append((seq, len(text)))
            self.unacked_chars += len(text)
        await self.send(text_data=text)

    async def _fall_behind(self):
        logger.info("dashboard of user %s is %s frames behind; dropping its diffs until it acks",
                    self.user.pk, len(self.unacked))
        self.stale = True
        self.stale_close = asyncio.create_task(self._close_if_silent())

    async def _close_if_silent(self):
        await asyncio.sleep(STALE_CLOSE_SECONDS)
        if self.stale:
            logger.info("dashboard of user %s stayed silent while stale; closing it", self.user.pk)
            await self.close(code=STALE_CLOSE_CODE)

    def _acknowledged(self, seq):
        while self.unacked and self.unacked[0][0] <= seq:
            self.unacked_chars -= self.unacked.popleft()[1]

    async def _heard_from_page(self):
        """The page reads again: a stale one gets one fresh snapshot instead of what it missed."""
        if not self.stale:
            return
        self.stale = False
        if self.stale_close is not None:
            self.stale_close.cancel()
            self.stale_close = None
        self.unacked.clear()
        self.unacked_chars = 0
        await self.request_snapshot()

    async def board_link(self, event):
        self.bridge_heard = time.monotonic()
        if event["link"] == self.link:
            return  # the bridge's heartbeat: nothing changed for the page
        self.link = event["link"]
        if self.snapshot_seq is not None:
            await self.send_json({"type": "link", "link": self.link})

    async def roster_changed(self, _event=None):
        """Someone edited the roster: look again, after a random moment so sockets take turns."""
        if getattr(self, "roster_refresh", None) is None or self.roster_refresh.done():
            self.roster_refresh = asyncio.create_task(self._refresh_after(random.uniform(0, ROSTER_CHANGE_SPREAD_SECONDS)))
            self.timers.append(self.roster_refresh)

    async def _refresh_after(self, delay):
        await asyncio.sleep(delay)
        await self.refresh_view()

    async def refresh_view(self, *, snapshot=False):
        """Read the roster again; a changed view (or `snapshot`) gets the page a fresh snapshot."""
        view = await database_sync_to_async(audience.build_view)(self.user)
        if snapshot or view != self.view:
            self.view = view
            await self._follow_devices(view.devices)
            await self.request_snapshot()

    # --- timers ----------------------------------------------------------------------------------

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self.send_json({"type": "heartbeat"})
            await self._say_presence("here")

    async def _say_presence(self, state):
        """Tell the bridge this dashboard is open (`here`, again with every heartbeat) or closed
        (`gone`): it knows who is online across web server processes (supervision.presence)."""
        try:
            await self.channel_layer.send(PRESENCE_CHANNEL, {"type": "presence", "state": state, "user_id": self.user.pk,
                                                             "socket": self.channel_name, "role": self.user.role})
        except Exception:  # noqa: BLE001 - ChannelFull, or the layer is away: the next heartbeat says it again
            logger.debug("dashboard of user %s could not tell the bridge it is %s", self.user.pk, state)

    async def _watch_bridge(self):
        """A bridge that went silent is gone: say so and ask for a snapshot until one answers."""
        beat = settings.BRIDGE_HEARTBEAT_SECONDS
        while True:
            await asyncio.sleep(beat)
            silent = time.monotonic() - self.bridge_heard > BRIDGE_SILENT_BEATS * beat
            if silent and self.snapshot_seq is not None:
                logger.info("dashboard of user %s: no word from the bridge for %.0f s", self.user.pk, BRIDGE_SILENT_BEATS * beat)
                self.link = NO_BRIDGE
                await self.send_json({"type": "link", "link": NO_BRIDGE})
                try:
                    await self._rejoin_groups()  # a restarted Redis forgot every group
                    await self.request_snapshot()  # its watchdog keeps asking until a bridge answers
                except Exception:  # noqa: BLE001 - the layer is away too; try again next beat
                    logger.warning("dashboard of user %s: channel layer unavailable", self.user.pk, exc_info=True)

    async def _rejoin_groups(self):
        """Join every group again (adding a member twice is harmless)."""
        for group in [BOARD_GROUP, self.user_group, *(device_group(device) for device in self.joined_devices)]:
            await self.channel_layer.group_add(group, self.channel_name)

    async def _refresh_roster(self):
        while True:
            await asyncio.sleep(ROSTER_REFRESH_SECONDS * random.uniform(0.75, 1.25))
            try:
                await self.refresh_view()
            except Exception:  # noqa: BLE001 - keep the dashboard up; try again next time
                logger.exception("could not refresh the roster view of user %s", self.user.pk)

    # --- browser -> server -----------------------------------------------------------------------

    async def page_message(self, message):
        kind = message["type"]
        if kind == "ack":
            seq = message.get("seq")
            if set(message) != {"type", "seq"} or not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**63:
                await self.send_error("bad_field", _("Field %(field)s has a wrong value.") % {"field": "seq"})
            else:
                self._acknowledged(seq)
                await self._heard_from_page()
            return True
        if kind == "hello":
            acks = message.get("acks")
            if set(message) != {"type", "acks"} or not isinstance(acks, bool):
                await self.send_error("bad_field", _("Field %(field)s has a wrong value.") % {"field": "acks"})
            else:
                self.acks = acks
                self.unacked.clear()
                self.unacked_chars = 0
            return True
        if kind == "ping":
            await self._heard_from_page()
            await self.send_json({"type": "pong"})
            return True
        if kind == "resync":
            await self.refresh_view(snapshot=True)
            return True
        return False
