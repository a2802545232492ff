"""The browser's WebSockets: one authenticated dashboard (DashboardConsumer), or the training
library's play buttons (LibraryConsumer, commands and their answers only).

On connect it works out what its user may see and attaches to its process's board
(`supervision.process_board`): the snapshot is built there from the process's replica, filtered to
those phones, and the diffs of exactly those phones are handed to it as ready-made frames: a phone
outside the user's view never reaches the browser, not even as a diff. Diffs the snapshot already
holds (seq <= snapshot seq) are dropped. Browser commands are checked for shape only and forwarded
to the bridge, which checks rights and records them.

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

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header
from django.utils.translation import gettext as _

from accounts import sessions
from supervision import audience, jsontext
from supervision.bridge import BRIDGE_CHANNEL, user_group
from supervision.presence import PRESENCE_CHANNEL
from supervision.process_board import process_board

logger = logging.getLogger(__name__)

MAX_FRAME = 4096  # characters; a command is a few dozen
HEARTBEAT_SECONDS = 15
# The view is recomputed when the roster changes (audience sends `roster.changed`), and now and
# then in case a change came from elsewhere (a management command without the shared layer).
# Each refresh costs a hundred queries, so hundreds of sockets must not do it all at once.
ROSTER_REFRESH_SECONDS = 300
ROSTER_CHANGE_SPREAD_SECONDS = 2.0
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
        if (message["type"] in self.COMMANDS or message["type"] == "resync") \
                and not sessions.press_checks_session(message["type"], self.session_key) and not await self._session_live():
            return await self._end_session()  # a command (or the board) for a session that ended: nothing is sent
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
                    "command": sessions.forwarded(message, self.session_key),  # a press checks its session there
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
        self.snapshot_seq = None  # None until the page got a snapshot (and again while it is stale)
        self.acks = False  # the page acknowledges what it applied (its `hello`)
        self.unacked = collections.deque()  # (seq, characters) of frames sent after the last ack
        self.unacked_chars = 0
        self.stale = False  # fell behind the window: diffs are dropped until it speaks again
        self.stale_close = None
        self.link = None
        self.timers = []
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()
        await self._say_presence("here")
        self.timers = [
            asyncio.create_task(self._heartbeat()),
            asyncio.create_task(self._refresh_roster()),
        ]
        self.board = process_board(self.channel_layer)
        await self.board.attach(self)

    async def disconnect(self, code):
        for task in [*getattr(self, "timers", []), getattr(self, "stale_close", None)]:
            if task is not None:
                task.cancel()
        if hasattr(self, "board"):  # it got as far as attaching
            self.board.detach(self)
            await self._say_presence("gone")
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    # --- snapshot and diffs (called by the process's board) --------------------------------------

    async def request_snapshot(self):
        """A fresh snapshot from the process's replica; if it is being reloaded, when it is."""
        self.snapshot_seq = None
        if self.board.replica.loaded:
            await self.board_ready()

    async def board_ready(self):
        if self.stale:
            return  # not reading: it gets one when it speaks again
        seq, text = self.board.snapshot_frame(self.view)
        self.snapshot_seq = seq
        self.link = self.board.link
        self.unacked.clear()  # what the page had is replaced by this
        self.unacked_chars = 0
        await self._send_counted(seq, text)
        # Then this user's sessions in flight, from the bridge that runs them (a reloaded page, a
        # second tab, a restarted bridge: the page forgets them at each snapshot); they come as the
        # presses' own messages.
        try:
            await self.channel_layer.send(BRIDGE_CHANNEL, {"type": "bridge.sessions", "user_id": self.user.pk,
                                                           "reply_to": self.channel_name, "language": self.language})
        except ChannelFull:
            logger.warning("the bridge does not take requests; the page gets its sessions with its next snapshot")

    async def board_diff(self, seq, frame):
        if self.stale or self.snapshot_seq is None or seq <= self.snapshot_seq:
            return  # stale: dropped, never queued; else the snapshot holds it, or one is coming
        if self.acks and (len(self.unacked) >= ACK_WINDOW_FRAMES or self.unacked_chars >= ACK_WINDOW_BYTES):
            await self._fall_behind()
            return
        await self._send_counted(seq, frame)

    async def board_link(self, link):
        self.link = link
        await self.send_json({"type": "link", "link": link})

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
            self.board.follow(self, view.devices)
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
