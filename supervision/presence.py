"""Who has a dashboard open right now, as the bridge knows it, whatever web server process each
socket lives in.

Each dashboard socket tells the bridge `here` when it opens and again with every heartbeat it sends
its page (consumers.HEARTBEAT_SECONDS), and `gone` when it closes. The bridge counts the sockets per
user; a socket whose word stops coming for TTL_SECONDS (its web server process died, or the channel
layer dropped the message) is no longer counted. A restarted bridge knows every open dashboard again
within one heartbeat.

The messages come over the bridge's command channel as internal commands (`presence`) that the
sockets send themselves; a browser cannot send them (they are not among the socket's browser
commands). Other modules ask `bridge.presence.online(user_id)` and
`bridge.presence.users_with_role("admin")`, and hear changes with `bridge.presence.on_change(fn)`:
`fn(user_id, online)` (may return a coroutine) when a user's first dashboard opens or his last goes.
"""

import asyncio
import inspect
import logging
import time

logger = logging.getLogger(__name__)

COMMAND = "presence"
from supervision.consumers import HEARTBEAT_SECONDS  # a socket says `here` this often  # noqa: E402
TTL_SECONDS = 3 * HEARTBEAT_SECONDS + 5  # three heartbeats missed: the socket is gone
SWEEP_SECONDS = 5.0


class Presence:
    def __init__(self, bridge, *, clock=time.monotonic):
        self.bridge = bridge
        self.clock = clock
        self.sockets = {}  # user id -> {socket channel name: (role, last heard)}
        self.listeners = []
        self._sweeper = None

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

    async def command(self, bridge, request):
        command = request.command
        user_id, socket = request.user_id, command.get("socket")
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not isinstance(socket, str):
            return
        was_online = self.online(user_id)
        if command.get("state") == "here":
            self.sockets.setdefault(user_id, {})[socket] = (str(command.get("role") or ""), self.clock())
            self._ensure_sweeper()
        else:
            sockets = self.sockets.get(user_id, {})
            sockets.pop(socket, None)
            if not sockets:
                self.sockets.pop(user_id, None)
        now_online = self.online(user_id)
        if now_online != was_online:
            await self._tell(user_id, now_online)

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
    bridge.register(COMMAND, presence.command)
    bridge.presence = presence
    return presence
