"""One web server process's board: its replica of the bridge's board and the fan-out to its pages.

However many pages a process serves, it is one member of the bridge's stream (`STREAM_GROUP`): each
board change crosses the channel layer (Redis) once per process, and the process hands the page's
ready-made diff frame to each of its sockets that follows that phone (`follow`). A page's snapshot
is built here from the replica, filtered to its user's phones, without asking the bridge.

Bounded by construction:
- one snapshot request per process at a time, repeated after SNAPSHOT_WAIT_SECONDS while a bridge
  is heard, else backing off up to SNAPSHOT_BACKOFF_MAX_SECONDS (a request waits in the bridge's
  channel longer than that: a bridge that comes back answers it at once);
- a process that misses stream messages (a full channel, a restarted Redis or bridge) sees the hole
  (`replica.Gap`) and asks for one snapshot; its pages get a fresh one built here when it comes;
- the bridge's heartbeat reaches this process only: a page hears of the link when it changes.
"""

import asyncio
import logging
import secrets
import time
import weakref

from django.conf import settings

from supervision import jsontext
from supervision.bridge import BOARD_GROUP, BRIDGE_CHANNEL, STREAM_GROUP
from supervision.replica import BoardReplica, Gap

logger = logging.getLogger(__name__)

SNAPSHOT_WAIT_SECONDS = 3.0
SNAPSHOT_BACKOFF_MAX_SECONDS = 15.0  # under the layer's expiry (30 s): a request is always waiting
# The bridge repeats its link state every BRIDGE_HEARTBEAT_SECONDS; this many beats of silence
# mean the bridge process is gone (a killed `ami_bridge`), and the pages are told.
BRIDGE_SILENT_BEATS = 3
GROUP_REJOIN_SECONDS = 3600  # channels_redis forgets group members after a day
NO_BRIDGE = {"state": "no_bridge", "since": None, "detail": ""}

_boards = weakref.WeakKeyDictionary()  # channel layer -> ProcessBoard of the running loop


def process_board(layer):
    """This process's board on `layer` (one per event loop: tests run one loop each)."""
    loop = asyncio.get_running_loop()
    board = _boards.get(layer)
    if board is None or board.loop is not loop or board.loop.is_closed():
        board = _boards[layer] = ProcessBoard(layer, loop)
    return board


class ProcessBoard:
    """Sockets attach with `attach(socket)` and leave with `detach(socket)`. A socket has `view`
    (`.devices`: the phones it may see) and these coroutines, called from here:
    `board_ready()` (the replica is (re)loaded: send a snapshot), `board_diff(seq, frame)`,
    `board_link(link)` (the link changed) and `roster_changed()`."""

    def __init__(self, layer, loop):
        self.layer = layer
        self.loop = loop
        self.replica = BoardReplica()
        self.link = None  # the link the pages are shown: the bridge's, or NO_BRIDGE
        self.sockets = set()
        self.followers = {}  # device -> {socket}
        self.following = {}  # socket -> frozenset of devices
        self.channel = f"supervision.process.{secrets.token_hex(8)}"
        self.bridge_heard = time.monotonic()
        self.asks = 0  # snapshot requests sent (tests, benches)
        self.loads = 0  # snapshots loaded
        self._poke = asyncio.Event()
        self._tasks = []

    # --- the sockets ----------------------------------------------------------------------------

    async def attach(self, socket):
        if not self._tasks:
            await self._ask()  # before the socket's connect returns: the first page starts the process's board
            self._tasks = [self.loop.create_task(coroutine, name=name) for name, coroutine in (
                ("process board: receive", self._receive_loop()),
                ("process board: keep loaded", self._keep_loaded()),
                ("process board: watch the bridge", self._watch_bridge()),
            )]
        self.sockets.add(socket)
        self.follow(socket, socket.view.devices)
        if self.replica.loaded:
            await socket.board_ready()
        elif self.link is not None:
            await socket.board_link(self.link)  # e.g. no bridge: the page says so while it waits

    def follow(self, socket, devices):
        """Send `socket` the diffs of `devices` (its view's phones), and of no other."""
        old = self.following.get(socket, frozenset())
        for device in old - devices:
            followers = self.followers.get(device)
            if followers is not None:
                followers.discard(socket)
                if not followers:
                    del self.followers[device]
        for device in devices - old:
            self.followers.setdefault(device, set()).add(socket)
        self.following[socket] = frozenset(devices)

    def detach(self, socket):
        self.follow(socket, frozenset())
        self.following.pop(socket, None)
        self.sockets.discard(socket)

    def snapshot_frame(self, view):
        """(seq, JSON text) of a page's snapshot: the replica's channels and phones on the view's
        phones, joined from their JSON texts (nothing is encoded again but the page's own head)."""
        replica = self.replica
        devices = view.devices
        head = jsontext.dumps({"type": "snapshot", **view.as_dict()})
        tail = jsontext.dumps({"phones": replica.phones_on(devices), "link": self.link, "seq": replica.seq,
                               "now": time.time()})
        return replica.seq, "".join((head[:-1], ',"channels":[', ",".join(replica.channel_texts(devices)), "],", tail[1:]))

    # --- the bridge's messages -------------------------------------------------------------------

    async def _receive_loop(self):
        joined = None
        while True:
            try:
                if joined is None or time.monotonic() - joined > GROUP_REJOIN_SECONDS:
                    await self._join()
                    joined = time.monotonic()
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - e.g. Redis away for a moment: join again after
                logger.warning("the board of this process could not read the channel layer; retrying", exc_info=True)
                joined = None
                await asyncio.sleep(1)
                continue
            try:
                await self._handle(message)
            except Exception:  # noqa: BLE001 - one bad message must not stop the pages' board
                logger.exception("the board of this process could not handle %r", message.get("type"))

    async def _join(self):
        await self.layer.group_add(STREAM_GROUP, self.channel)
        await self.layer.group_add(BOARD_GROUP, self.channel)

    async def _handle(self, message):
        kind = message.get("type")
        if kind == "board.stream":
            self._heard()
            if not self.replica.loaded:
                return  # the snapshot asked for holds it
            try:
                parts = self.replica.apply(message)
            except Gap as gap:
                logger.info("the board of this process missed part of the stream (%s); asking for a snapshot", gap)
                self._forget()
                return
            await self._fan_out(parts)
        elif kind == "board.link":
            self._heard()
            if self.replica.loaded and message.get("epoch") != self.replica.epoch:
                logger.info("a new bridge run: the board of this process asks for its snapshot")
                self._forget()
                return
            if self.replica.loaded and message.get("seq", 0) > self.replica.seq:
                logger.info("the board of this process missed the end of the stream (at %s, the stream at %s); "
                            "asking for a snapshot", self.replica.seq, message.get("seq"))
                self._forget()
            await self._set_link(message["link"])
        elif kind == "board.snapshot":
            self._heard()
            self.replica.load(message)
            self.loads += 1
            self._poke.set()
            self.link = self.replica.link
            for socket in list(self.sockets):
                await self._tell(socket.board_ready())
        elif kind == "roster.changed":
            for socket in list(self.sockets):
                await self._tell(socket.roster_changed())

    async def _fan_out(self, parts):
        followers_of = self.followers
        for device, seq, _items, frame in parts:
            followers = followers_of.get(device)
            if followers:
                for socket in tuple(followers):
                    await self._tell(socket.board_diff(seq, frame))

    async def _set_link(self, link):
        if link == self.link:
            return  # the bridge's heartbeat: nothing changed for the pages
        self.link = link
        if self.replica.loaded:
            self.replica.link = link
        for socket in list(self.sockets):
            await self._tell(socket.board_link(link))

    async def _tell(self, coroutine):
        try:
            await coroutine
        except Exception:  # noqa: BLE001 - one closing socket must not keep the others from their frames
            logger.debug("a socket could not take a board message", exc_info=True)

    def _forget(self):
        self.replica.forget()
        self._poke.set()  # the snapshot loop asks at once

    def _heard(self):
        self.bridge_heard = time.monotonic()

    # --- staying loaded --------------------------------------------------------------------------

    async def _ask(self):
        self.asks += 1
        self._loads_at_ask = self.loads
        try:
            await self._join()  # a restarted Redis forgot the groups (joining twice is harmless)
            await self.layer.send(BRIDGE_CHANNEL, {"type": "bridge.snapshot", "reply_to": self.channel})
        except Exception:  # noqa: BLE001 - ChannelFull (no bridge reads) or the layer is away: ask again later
            logger.warning("the board of this process could not ask the bridge for a snapshot", exc_info=True)

    async def _wait_until(self, condition, seconds):
        deadline = time.monotonic() + seconds
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._poke.clear()
            try:
                await asyncio.wait_for(self._poke.wait(), left)
            except TimeoutError:
                return

    async def _keep_loaded(self):
        """Ask for a snapshot whenever the replica is not loaded: once, then again after
        SNAPSHOT_WAIT_SECONDS while a bridge is heard (the request was lost), else backing off.
        A request waits in the bridge's channel for the layer's expiry (30 s), longer than the
        longest backoff: a bridge that starts answers the one waiting at once."""
        delay = SNAPSHOT_WAIT_SECONDS
        replica = self.replica
        asked = True  # attach() asked first
        while True:
            if replica.loaded:
                asked = None
                delay = SNAPSHOT_WAIT_SECONDS
                await self._wait_until(lambda: not replica.loaded, 3600)
                continue
            if asked is None:
                await self._ask()
            asked = None
            loads = self._loads_at_ask
            await self._wait_until(lambda: self.loads != loads, delay)
            if self.loads != loads:
                continue  # answered (and perhaps already forgotten again: then asked at once)
            if time.monotonic() - self.bridge_heard < delay:
                delay = SNAPSHOT_WAIT_SECONDS  # a bridge is there: the request was lost, ask again
            else:
                await self._set_link(NO_BRIDGE)
                delay = min(delay * 2, SNAPSHOT_BACKOFF_MAX_SECONDS)

    async def _watch_bridge(self):
        """A bridge that went silent is gone: say so; the replica is asked for again."""
        while True:
            beat = settings.BRIDGE_HEARTBEAT_SECONDS
            await asyncio.sleep(beat)
            if self.replica.loaded and time.monotonic() - self.bridge_heard > BRIDGE_SILENT_BEATS * beat:
                logger.info("no word from the bridge for %.0f s", BRIDGE_SILENT_BEATS * beat)
                self._forget()
                await self._set_link(NO_BRIDGE)
