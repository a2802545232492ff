"""The bridge: the one AMI connection per PBX, the call board, and the channel layer.

It turns AMI events into board diffs, answers snapshot requests and runs browser commands
(channel `supervision.bridge`) through handlers that other modules register. However many browsers
are open, there is one AMI session.

The board leaves the bridge once per web server process, not once per page: each process keeps a
replica (`supervision.replica`, `supervision.process_board`) that joins `STREAM_GROUP`, asks for one
snapshot and then follows `board.stream` messages; its pages are served from it. A stream message
carries every change queued while the previous one was being sent (at most STREAM_PARTS_PER_MESSAGE
phones' diffs, never half a change), so a burst costs fewer, larger messages, not more of them.

Everything the bridge publishes leaves through one outbound queue, so a process sees diffs, link
changes and its snapshot in the order the board produced them. The queue's diffs are bounded
(STREAM_BACKLOG_PARTS): past it the oldest are dropped and the processes, seeing the hole in the
stream, each ask for one fresh snapshot, so a burst the layer cannot take costs a resync, not memory.
"""

import asyncio
import collections
import importlib
import inspect
import logging
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.utils import translation

from supervision.replica import change_parts, snapshot_board

logger = logging.getLogger(__name__)

BOARD_GROUP = "supervision.board"  # roster changes: every process's replica and the bridge's modules
STREAM_GROUP = "supervision.stream"  # the board: one member per web server process (its replica)
BRIDGE_CHANNEL = "supervision.bridge"
STREAM_PARTS_PER_MESSAGE = 500
STREAM_BACKLOG_PARTS = 10_000
# The bridge repeats its link state on BOARD_GROUP this often (settings.BRIDGE_HEARTBEAT_SECONDS):
# a web server that hears nothing for a few beats knows the bridge process is gone.
# Modules that plug command handlers in: each has `install(bridge)`.
COMMAND_MODULES = ["supervision.monitoring", "supervision.cti", "history.recorder", "supervision.presence",
                   "helprequests.live", "history.recordings_bridge"]

# What the board was rebuilt from after the last login.
RESYNC_PENDING = "pending"
RESYNC_DONE = "done"
RESYNC_NOT_PERMITTED = "not_permitted"
RESYNC_FAILED = "failed"


def speaking(language):
    """Texts composed inside speak `language` (a page's language code), else the site's default.

    Command handlers run under the pressing page's language; a session's later texts, composed
    when the PBX's events arrive, must be composed under it again: wrap them in this."""
    return translation.override(language or settings.LANGUAGE_CODE)


def user_group(user_id):
    """The group that reaches every open dashboard of one user."""
    return f"supervision.user.{int(user_id)}"


def error_message(code, message):
    return {"type": "error", "code": code, "message": message}


@dataclass
class CommandRequest:
    """One browser command as the consumer forwarded it (shape already checked, rights not)."""

    bridge: "Bridge"
    command: dict
    user_id: int
    reply_to: str | None
    client: str | None
    language: str | None = None  # of the page that sent it: handlers' gettext texts use it

    @property
    def type(self):
        return self.command.get("type")

    async def reply(self, message):
        """Send `message` (a dict with its own "type") to the dashboard that sent the command."""
        if self.reply_to:
            await self.bridge.send_to(self.reply_to, {"type": "user.message", "message": message})

    async def error(self, code, text):
        await self.reply(error_message(code, text))


class Bridge:
    def __init__(self, client, board, layer, *, name="pbx"):
        self.client = client
        self.board = board
        self.layer = layer
        self.name = name
        self.handlers = {}
        self.event_listeners = []
        self.board_readers = {}  # event name -> [reader(msg)], run before the board applies it
        self.stop_listeners = []
        self.resync_listeners = []
        self.session_reporters = []
        self.stopping = False  # stop() was called: what is in flight is left to the next run
        self.resync = RESYNC_PENDING
        self.resync_detail = ""
        self.phone_list = RESYNC_PENDING  # how the phones' states were read after the last login
        self.epoch = secrets.token_hex(6)  # this run: a restarted bridge's seq starts again at 0
        self._outbox = collections.deque()  # (kind, target, message) in board order
        self._outbox_ready = asyncio.Event()
        self._outbox_idle = asyncio.Event()
        self._outbox_idle.set()
        self._stream_backlog = 0  # diff parts waiting in the outbox
        self._stream_seq = 0  # the seq of the last change sent on the stream
        self.stream_drops = 0  # times the queued diffs were dropped (the layer did not keep up)
        self._snapshot_asked = set()  # reply_to channels with a snapshot in the outbox
        self._snapshot_cache = (None, None)  # (board seq, snapshot_board(...)) of the last snapshot
        self._tasks = set()
        self._publisher = None
        self._receiver = None
        self._heartbeat = None
        self.heartbeat_seconds = settings.BRIDGE_HEARTBEAT_SECONDS
        self.client.on_event(self._on_event)
        self.client.on_link(self._on_link)
        self.client.on_login(self._on_login)

    # --- plugging in ------------------------------------------------------------------------

    def register(self, command_type, handler):
        """`async def handler(bridge, request)` runs for every command of this type."""
        self.handlers[command_type] = handler

    def add_event_listener(self, listener):
        """`listener(msg)` sees every AMI event after the board applied it (may return a coroutine)."""
        self.event_listeners.append(listener)

    def add_board_reader(self, event, reader):
        """`reader(msg)` runs for every AMI event named `event` BEFORE the board applies it, so it
        reads the board as it was (e.g. a channel's last state before its Hangup removes it).
        Synchronous and in the loop: no I/O, hand anything slow to a task or a thread. Keyed by
        event name, so the events nobody reads cost one dict lookup."""
        self.board_readers.setdefault(event, []).append(reader)

    def add_stop_listener(self, listener):
        """`await listener()` when the bridge stops, after the PBX link is closed (no more events)
        and before its tasks are cancelled: e.g. write what is still queued."""
        self.stop_listeners.append(listener)

    def add_resync_listener(self, listener):
        """`await listener(items)` after every login's CoreShowChannels, once the board is rebuilt
        from them: the `CoreShowChannel` items, or None when the PBX refused the list
        (`bridge.resync_detail` says why; a list cut short by a timeout or the link dropping again
        tells nothing: the next login asks again). Awaited before the link is reported up, so no
        press runs meanwhile."""
        self.resync_listeners.append(listener)

    def add_session_reporter(self, reporter):
        """`reporter(user_id) -> [message, ...]`: what a socket of that user that just connected
        must know about his sessions in flight (called in the loop, no I/O)."""
        self.session_reporters.append(reporter)

    def install_command_modules(self, modules=None):
        for module_name in COMMAND_MODULES if modules is None else modules:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    logger.info("%s: no %s module, its commands are not available", self.name, module_name)
                    continue
                raise
            module.install(self)

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self):
        self._publisher = asyncio.create_task(self._publish_loop(), name=f"{self.name}-publish")
        self._receiver = asyncio.create_task(self._receive_loop(), name=f"{self.name}-receive")
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"{self.name}-heartbeat")
        await self.client.start()

    async def stop(self):
        self.stopping = True
        await self.client.stop()
        for listener in self.stop_listeners:
            try:
                await listener()
            except Exception:  # noqa: BLE001 - one module's bug must not keep the others running
                logger.exception("%s: stop listener %r failed", self.name, listener)
        for task in [self._heartbeat, self._receiver, self._publisher, *self._tasks]:
            if task is not None:
                task.cancel()
        for task in [self._heartbeat, self._receiver, self._publisher, *list(self._tasks)]:
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                    pass
        self._tasks.clear()

    async def drain(self):
        """Wait until everything queued so far has been handed to the channel layer (tests)."""
        while not self._outbox_idle.is_set():
            await self._outbox_idle.wait()

    # --- state ---------------------------------------------------------------------------------

    def link_state(self):
        link = self.client.link
        return {
            "pbx": self.name,
            "state": link.state,
            "since": link.since,
            "detail": link.detail or "",
            "retry_in": link.retry_in,
            "resync": self.resync,
            "resync_detail": self.resync_detail,
            "phone_list": self.phone_list,
        }

    def snapshot(self):
        """The whole board for a process's replica: `board` is `[name, device, JSON text]` per
        channel (strings only: cheap to pack for Redis and to unpack), built once per board seq
        however many processes ask."""
        seq = self.board.seq
        cached_seq, board = self._snapshot_cache
        if cached_seq != seq:
            board = snapshot_board(*self.board.published())
            self._snapshot_cache = (seq, board)
        return {
            "type": "board.snapshot",
            "epoch": self.epoch,
            "seq": seq,
            "board": board,
            "phones": self.board.phones(),
            "link": self.link_state(),
            "now": time.time(),
        }

    # --- AMI side ------------------------------------------------------------------------------

    def _on_event(self, msg):
        readers = self.board_readers.get(msg.event)
        if readers is not None:
            for reader in readers:
                try:
                    reader(msg)
                except Exception:  # noqa: BLE001 - a reader's bug must not stop the board
                    logger.exception("%s: board reader %r failed on %s", self.name, reader, msg.event)
        try:
            diffs = self.board.apply(msg)
        except Exception:  # noqa: BLE001 - one odd event must not stop the board
            logger.exception("%s: the board could not apply %s", self.name, msg.event)
            diffs = []
        if diffs:
            self._queue_diffs(diffs)
        for listener in self.event_listeners:
            try:
                result = listener(msg)
                if inspect.isawaitable(result):
                    self._spawn(result, f"listener for {msg.event}")
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the board
                logger.exception("%s: event listener %r failed on %s", self.name, listener, msg.event)

    def _on_link(self, _link=None):
        if self.client.link.state != "up":
            self.resync = RESYNC_PENDING
            self.resync_detail = ""
            self.phone_list = RESYNC_PENDING
        self._publish_link()

    def _publish_link(self):
        self._queue_group(STREAM_GROUP, {"type": "board.link", "epoch": self.epoch, "link": self.link_state()})

    async def _on_login(self, *_args):
        """After every (re)login: rebuild the board from CoreShowChannels, or say why not."""
        from supervision.ami.client import ActionError  # the client module imports nothing of ours

        self.resync = RESYNC_PENDING
        try:
            items = await self.client.send_list("CoreShowChannels", {})
        except ActionError as exc:
            text = getattr(exc, "message", "") or str(exc)
            if "permission" in text.lower():
                self.resync = RESYNC_NOT_PERMITTED
                self.resync_detail = text
                logger.warning(
                    "%s: CoreShowChannels refused (%s): the AMI user needs write=system or reporting; "
                    "the board follows events only and misses calls that started before this login",
                    self.name,
                    text,
                )
            else:
                self.resync = RESYNC_FAILED
                self.resync_detail = text
                logger.warning("%s: CoreShowChannels failed: %s", self.name, text)
            await self._list_phones()
            await self._tell_resync(None)
            self._publish_link()
            return
        except Exception as exc:  # noqa: BLE001 - timeout or the link dropped again
            self.resync = RESYNC_FAILED
            self.resync_detail = str(exc) or type(exc).__name__
            logger.warning("%s: CoreShowChannels did not complete: %r", self.name, exc)
            self._publish_link()  # the listeners wait for a list or a refusal: the next login
            return
        diffs = self.board.rebuild(items)
        self.resync = RESYNC_DONE
        self.resync_detail = ""
        if diffs:
            self._queue_diffs(diffs)
        await self._list_phones()
        await self._tell_resync(items)
        self._publish_link()

    async def _list_phones(self):
        """Every phone's device state as the PBX has it now (`DeviceStateList`, AMI class `call`
        or `reporting`). Refused or failed, the phones stay "unknown" until the PBX's own events
        say more; what qualify said before this login is forgotten either way."""
        from supervision.ami.client import ActionError

        try:
            items = await self.client.send_list("DeviceStateList", {})
            self.phone_list = RESYNC_DONE
        except ActionError as exc:
            text = getattr(exc, "message", "") or str(exc)
            self.phone_list = RESYNC_NOT_PERMITTED if "permission" in text.lower() else RESYNC_FAILED
            logger.info("%s: DeviceStateList refused (%s): phones show as unknown until the PBX reports them",
                        self.name, text)
            items = None
        except Exception as exc:  # noqa: BLE001 - timeout or the link dropped again
            self.phone_list = RESYNC_FAILED
            logger.info("%s: DeviceStateList did not complete: %r", self.name, exc)
            items = None
        diffs = self.board.rebuild_phones(items)
        if diffs:
            self._queue_diffs(diffs)

    async def _tell_resync(self, items):
        for listener in self.resync_listeners:
            try:
                await listener(items)
            except Exception:  # noqa: BLE001 - a listener's bug must not keep the link down
                logger.exception("%s: resync listener %r failed", self.name, listener)

    # --- channel layer side --------------------------------------------------------------------

    def _queue_diffs(self, diffs):
        """One board change: one stream part per phone it touched (all with the board's seq)."""
        parts = change_parts(self.board.seq, diffs)
        self._stream_backlog += len(parts)
        self._put(("stream", None, parts))
        if self._stream_backlog > STREAM_BACKLOG_PARTS:
            self._drop_stream_backlog()

    def _drop_stream_backlog(self):
        """The layer does not keep up: forget the queued diffs. The next stream message starts
        after a hole, and each process asks for one snapshot instead."""
        kept = [item for item in self._outbox if item[0] != "stream"]
        dropped = [item[2][-1][1] for item in self._outbox if item[0] == "stream"]
        # The next message says it follows the last change dropped: a replica holds less, sees the hole.
        self._stream_seq = max([self._stream_seq, *dropped])
        logger.warning("%s: %d diffs waiting for the channel layer: dropped, the web servers resync",
                       self.name, self._stream_backlog)
        self._outbox.clear()
        self._outbox.extend(kept)
        self._stream_backlog = 0
        self.stream_drops += 1

    def _put(self, item):
        self._outbox.append(item)
        self._outbox_idle.clear()
        self._outbox_ready.set()

    def _queue_group(self, group, message):
        self._put(("group", group, message))

    def _queue_send(self, channel, message, *, owned=False):
        """`owned`: nothing in `message` will ever change, the layer need not copy it."""
        self._put(("owned" if owned else "send", channel, message))

    async def send_to(self, channel, message):
        self._queue_send(channel, message)

    async def notify_user(self, user_id, message):
        """Send `message` (a dict with its own "type") to every open dashboard of one user."""
        self._queue_group(user_group(user_id), {"type": "user.message", "message": message})

    def _next_stream_message(self, parts):
        """The stream message of `parts` and of the changes right behind it in the outbox."""
        outbox = self._outbox
        while outbox and outbox[0][0] == "stream" and len(parts) < STREAM_PARTS_PER_MESSAGE:
            parts = parts + outbox.popleft()[2]
        self._stream_backlog -= len(parts)
        message = {"type": "board.stream", "epoch": self.epoch, "prev": self._stream_seq,
                   "seq": parts[-1][1], "parts": parts}
        self._stream_seq = parts[-1][1]
        return message

    async def _publish_loop(self):
        outbox = self._outbox
        while True:
            if not outbox:
                self._outbox_idle.set()
                if self.stopping:
                    # stop() cancels this task, but a cancel that lands inside the Redis layer's
                    # group_send can be swallowed there: without this the loop would wait for ever.
                    return
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            kind, target, message = outbox.popleft()
            if kind == "stream":
                kind, target, message = "group_owned", STREAM_GROUP, self._next_stream_message(message)
            elif kind == "owned" and message.get("type") == "board.snapshot":
                self._snapshot_asked.discard(target)
            elif message.get("type") == "board.link" and target == STREAM_GROUP:
                # Where the stream is, as of this message: a process that lost the last messages
                # of a burst learns it from the next heartbeat, not only from the next change.
                message["seq"] = self._stream_seq
            try:
                if kind == "group_owned" and hasattr(self.layer, "group_send_owned"):
                    await self.layer.group_send_owned(target, message)
                elif kind in ("group", "group_owned"):
                    await self.layer.group_send(target, message)
                elif kind == "owned" and hasattr(self.layer, "send_owned"):
                    await self.layer.send_owned(target, message)
                else:
                    await self.layer.send(target, message)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a full or gone channel must not stop publishing
                logger.warning("%s: could not deliver %s to %s", self.name, message.get("type"), target, exc_info=True)

    async def _heartbeat_loop(self):
        """The link state again and again: sockets notice a dead bridge by its silence."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            self._publish_link()

    async def _receive_loop(self):
        while True:
            try:
                message = await self.layer.receive(BRIDGE_CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - e.g. Redis away for a moment
                logger.warning("%s: channel layer receive failed; retrying", self.name, exc_info=True)
                await asyncio.sleep(1)
                continue
            try:
                self._dispatch(message)
            except Exception:  # noqa: BLE001 - never let one request stop the loop
                logger.exception("%s: could not handle %r", self.name, message.get("type"))

    def _dispatch(self, message):
        kind = message.get("type")
        reply_to = message.get("reply_to")
        if kind == "bridge.snapshot":
            # A process asks once and again after a backoff; one already waiting in the outbox
            # answers both (it is built now, in board order, so nothing queued after it is lost).
            if reply_to and reply_to not in self._snapshot_asked:
                self._snapshot_asked.add(reply_to)
                self._queue_send(reply_to, self.snapshot(), owned=True)
            return
        if kind == "bridge.sessions":  # a socket just connected: its user's sessions in flight
            self._report_sessions(message.get("user_id"), reply_to, message.get("language"))
            return
        if kind == "bridge.ping":  # health checks: the link state, without the whole board
            if reply_to:
                self._queue_send(reply_to, {"type": "bridge.pong", "link": self.link_state(), "seq": self.board.seq})
            return
        if kind == "bridge.command":
            command = message.get("command")
            if not isinstance(command, dict):
                command = {}
            request = CommandRequest(
                self, command, message.get("user_id"), reply_to, message.get("client"), message.get("language")
            )
            handler = self.handlers.get(request.type)
            if handler is None:
                self._queue_reply_error(reply_to, "unknown_command", f"Unknown command {request.type!r}.")
                return
            self._spawn(self._run_handler(handler, request), f"command {request.type}")
            return
        logger.warning("%s: unknown request type %r on %s", self.name, kind, BRIDGE_CHANNEL)

    def _report_sessions(self, user_id, reply_to, language):
        if not reply_to or isinstance(user_id, bool) or not isinstance(user_id, int):
            return
        with speaking(language):
            for reporter in self.session_reporters:
                try:
                    messages = reporter(user_id)
                except Exception:  # noqa: BLE001 - one module's bug must not hide the others' sessions
                    logger.exception("%s: session reporter %r failed", self.name, reporter)
                    continue
                for message in messages:
                    self._queue_send(reply_to, {"type": "user.message", "message": message})

    def _queue_reply_error(self, reply_to, code, text):
        if reply_to:
            self._queue_send(reply_to, {"type": "user.message", "message": error_message(code, text)})

    async def _run_handler(self, handler, request):
        try:
            # Each handler runs in its own task, so the override holds for its texts only.
            with speaking(request.language):
                await handler(self, request)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the handler's bug is reported, the bridge goes on
            logger.exception("%s: %s handler failed for user %s", self.name, request.type, request.user_id)
            self._queue_reply_error(request.reply_to, "internal", "The command failed on the server.")

    def _spawn(self, coroutine, label):
        task = asyncio.create_task(coroutine, name=f"{self.name}: {label}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task):
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: background task %s failed", self.name, task.get_name(), exc_info=task.exception())
