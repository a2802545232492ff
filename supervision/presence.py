"""Who has a dashboard open right now, as the bridge knows it, whatever web server process each
socket lives in.

Each dashboard socket tells the bridge `here` when it opens and again with every heartbeat it sends
its page (consumers.HEARTBEAT_SECONDS), and `gone` when it closes, on a channel of their own
(PRESENCE_CHANNEL: these are not commands, and nothing a page sends becomes one). The bridge counts
the sockets per user; a socket whose word stops coming for TTL_SECONDS (its web server process died,
or the channel layer dropped the message) is no longer counted. A restarted bridge knows every open
dashboard again within one heartbeat.

Other modules ask `bridge.presence.online(user_id)` and `bridge.presence.users_with_role("admin")`,
and hear changes with `bridge.presence.on_change(fn)`: `fn(user_id, online)` (may return a
coroutine) when a user's first dashboard opens or his last goes.
"""

import asyncio
import inspect
import logging
import time

logger = logging.getLogger(__name__)

PRESENCE_CHANNEL = "supervision.presence"
HEARTBEAT_SECONDS = 15  # = consumers.HEARTBEAT_SECONDS: a socket says `here` this often
TTL_SECONDS = 3 * HEARTBEAT_SECONDS + 5  # three heartbeats missed: the socket is gone
SWEEP_SECONDS = 5.0


class Presence:
    def __init__(self, bridge, *, clock=time.monotonic):
        self.bridge = bridge
        self.clock = clock
        self.sockets = {}  # user id -> {socket channel name: (role, last heard)}
        self.listeners = []
        self._sweeper = None
        self._receiver = None

    # --- what other modules ask -----------------------------------------------------------------

    def online(self, user_id):
        return any(self._fresh(heard) for _role, heard in self.sockets.get(user_id, {}).values())

    def role(self, user_id):
        """The role the user's dashboards said he has (None when none is open)."""
        for role, heard in self.sockets.get(user_id, {}).values():
            if self._fresh(heard):
                return role
        return None

    def users_with_role(self, role):
        return sorted(user_id for user_id in self.sockets if self.online(user_id) and self.role(user_id) == role)

    def on_change(self, listener):
        self.listeners.append(listener)

    # --- the sockets' word ----------------------------------------------------------------------

    async def handle(self, message):
        """One socket's word: {"type": "presence", "state": "here"|"gone", "user_id", "socket", "role"}."""
        user_id, socket = message.get("user_id"), message.get("socket")
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not isinstance(socket, str):
            return
        was_online = self.online(user_id)
        if message.get("state") == "here":
            self.sockets.setdefault(user_id, {})[socket] = (str(message.get("role") or ""), self.clock())
            self._ensure_sweeper()
        else:
            sockets = self.sockets.get(user_id, {})
            sockets.pop(socket, None)
            if not sockets:
                self.sockets.pop(user_id, None)
        now_online = self.online(user_id)
        if now_online != was_online:
            await self._tell(user_id, now_online)

    def start(self, _link=None):
        """Listen on PRESENCE_CHANNEL (once; called at install inside a running loop, else at the
        bridge's first link change, which its start makes)."""
        if self._receiver is None and not self.bridge.stopping:
            self._receiver = self.bridge._spawn(self._receive_loop(), "presence")

    async def _receive_loop(self):
        while True:
            try:
                message = await self.bridge.layer.receive(PRESENCE_CHANNEL)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - e.g. Redis away for a moment
                logger.warning("%s: presence receive failed; retrying", self.bridge.name, exc_info=True)
                await asyncio.sleep(1)
                continue
            try:
                await self.handle(message)
            except Exception:  # noqa: BLE001 - one odd message must not stop the loop
                logger.exception("%s: could not handle presence %r", self.bridge.name, message)

    def _fresh(self, heard):
        return self.clock() - heard <= TTL_SECONDS

    def sweep(self):
        """Forget sockets not heard of for TTL_SECONDS; the users who went offline by it."""
        gone = []
        for user_id, sockets in list(self.sockets.items()):
            was_online = bool(sockets)
            for socket, (_role, heard) in list(sockets.items()):
                if not self._fresh(heard):
                    del sockets[socket]
            if not sockets:
                del self.sockets[user_id]
                if was_online:
                    gone.append(user_id)
        return gone

    def _ensure_sweeper(self):
        if self._sweeper is None or self._sweeper.done():
            # One of the bridge's tasks: cancelled when it stops.
            self._sweeper = self.bridge._spawn(self._sweep_loop(), "presence sweep")

    async def _sweep_loop(self):
        while self.sockets:
            await asyncio.sleep(SWEEP_SECONDS)
            for user_id in self.sweep():
                logger.info("%s: the dashboards of user %s stopped saying they are open", self.bridge.name, user_id)
                await self._tell(user_id, False)

    async def _tell(self, user_id, online):
        for listener in self.listeners:
            try:
                result = listener(user_id, online)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - one module's bug must not stop the others hearing it
                logger.exception("%s: presence listener %r failed", self.bridge.name, listener)


def install(bridge):
    presence = Presence(bridge)
    bridge.presence = presence
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # built outside the loop (`manage.py ami_bridge`): its start begins it
        bridge.client.on_link(presence.start)
    else:
        presence.start()
    return presence
