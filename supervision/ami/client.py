"""The asyncio AMI client: one TCP link to Asterisk, kept up for as long as the client runs.

Layers, each in its own module: framing (`protocol`), action futures (`pending`), link state and
backoff (`link`); this module is only the connection lifecycle: connect, read the banner, log in
(plain or MD5 challenge), keep alive with `Ping`, and after any loss reconnect with a capped,
jittered backoff. An action in flight when the link drops fails with `ConnectionLost` and is never
sent again (a re-sent Originate rings a phone twice).
"""

import asyncio
import hashlib
import inspect
import itertools
import logging
import secrets

from supervision.ami import link as links
from supervision.ami.link import Backoff, LinkState
from supervision.ami.pending import (
    ActionError,
    ActionTimeout,
    AMIError,
    ConnectionLost,
    NotConnected,
    PendingActions,
)
from supervision.ami.protocol import Parser, ProtocolError, encode_action

__all__ = [
    "AMIClient",
    "AMIError",
    "ActionError",
    "ActionTimeout",
    "ConnectionLost",
    "LinkState",
    "LoginRefused",
    "NotConnected",
]

log = logging.getLogger("supervision.ami")

READ_CHUNK = 64 * 1024


class LoginRefused(AMIError):
    """The PBX refused our credentials; `reason` is its answer (`Authentication failed`)."""

    def __init__(self, text, reason):
        super().__init__(text)
        self.reason = reason


class _Connection:
    """One TCP connection and everything that dies with it: parser, pending actions, tasks."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.parser = Parser()
        self.pending = PendingActions()
        self.banner_seen = asyncio.Event()
        self.closed = asyncio.Event()
        self.logged_in = False
        self.shutting_down = None  # detail of an `Event: Shutdown`, if one came
        self.lost = None  # why it ended; the first reason wins
        self.lost_level = logging.WARNING

    def write(self, data):
        if self.lost is not None:
            raise ConnectionLost(self.lost)
        self.writer.write(data)

    def abort(self, reason, level=logging.WARNING):
        if self.lost is not None:
            return
        self.lost, self.lost_level = reason, level
        self.logged_in = False
        self.pending.fail_all(lambda: ConnectionLost(reason))
        self.writer.close()
        self.closed.set()

    def partial_frame(self):
        # Bytes of an unfinished frame still in the parser at EOF: the peer closed mid-message.
        return self.parser.has_partial


class AMIClient:
    def __init__(
        self,
        host,
        port,
        username,
        secret,
        *,
        auth="plain",
        action_timeout=10.0,
        ping_interval=20.0,
        reconnect_max=30.0,
        reconnect_min=0.5,
        pong_timeout=None,
        connect_timeout=None,
        name="ami",
    ):
        if auth not in ("plain", "md5"):
            raise ValueError(f"auth must be 'plain' or 'md5', not {auth!r}")
        self.host, self.port = host, int(port)
        self.username, self._secret = username, secret
        self.auth = auth
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout if pong_timeout is not None else action_timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else action_timeout
        self.name = name
        self.link = links.initial()
        self._backoff = Backoff(reconnect_min, reconnect_max)
        self._ids = itertools.count(1)
        self._conn = None
        self._task = None
        self._stopping = False
        self._event_callbacks = []
        self._link_callbacks = []
        self._login_callbacks = []
        self._background = set()

    @property
    def where(self):
        return f"{self.host}:{self.port}"

    # -- subscriptions ------------------------------------------------------------------------

    def on_event(self, callback):
        """`callback(msg)` for every unsolicited event, synchronously in the loop."""
        self._event_callbacks.append(callback)
        return callback

    def on_link(self, callback):
        """`callback(link_state)` on every change of `client.link`."""
        self._link_callbacks.append(callback)
        return callback

    def on_login(self, callback):
        """`await callback()` after every successful (re)login, before the link is reported up."""
        self._login_callbacks.append(callback)
        return callback

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self):
        if self._task is not None:
            return
        self._stopping = False
        self._set_link(links.CONNECTING, f"connecting to {self.where}")
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-link")

    async def stop(self):
        """Log off politely if logged in, then close; the client stays down until `start()`."""
        self._stopping = True
        conn = self._conn
        if conn is not None and conn.logged_in:
            try:
                await self._request(conn, "Logoff", (), min(self.action_timeout, 2.0))
            except AMIError:
                pass  # a dying link needs no goodbye
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._set_link(links.DOWN, "stopped", retry_in=None)

    async def wait_until(self, *states, timeout=None):
        """Wait for `client.link.state` to be one of `states`; returns that LinkState."""
        if self.link.state in states:
            return self.link
        loop = asyncio.get_running_loop()
        reached = loop.create_future()

        def check(state):
            if state.state in states and not reached.done():
                reached.set_result(state)

        self._link_callbacks.append(check)
        try:
            async with asyncio.timeout(timeout):
                return await reached
        finally:
            self._link_callbacks.remove(check)

    # -- actions ------------------------------------------------------------------------------

    async def send(self, action, fields=(), timeout=None):
        """Send one action; its `Response: Success` message, or ActionError/ActionTimeout/...."""
        return await self._request(self._logged_in_connection(), action, fields, timeout)

    async def send_list(self, action, fields=(), timeout=None):
        """Send a list action (CoreShowChannels, Status...); the item events until `EventList: Complete`."""
        return await self._request(self._logged_in_connection(), action, fields, timeout, as_list=True)

    def _logged_in_connection(self):
        conn = self._conn
        if conn is None or not conn.logged_in or conn.lost is not None:
            raise NotConnected(f"the AMI link is {self.link.state}: {self.link.detail}")
        if conn.shutting_down:
            raise NotConnected(conn.shutting_down)
        return conn

    def _next_action_id(self):
        # Unique across reconnects and across processes sharing a PBX: a late answer from an old
        # connection, or another client's answer, can never resolve the wrong future.
        return f"{self.name}-{next(self._ids)}-{secrets.token_hex(3)}"

    async def _request(self, conn, action, fields, timeout, *, as_list=False):
        fields = list(fields.items() if isinstance(fields, dict) else fields)
        if any(str(key).lower() == "actionid" for key, _value in fields):
            raise ValueError("the client sets ActionID itself; do not pass one")
        action_id = self._next_action_id()
        data = encode_action(action, fields, action_id)  # InjectionError before anything is sent
        pending = conn.pending.expect_list if as_list else conn.pending.expect
        answer = pending(action_id, action)
        timeout = self.action_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(timeout):
                conn.write(data)
                try:
                    await conn.writer.drain()
                except (ConnectionError, RuntimeError) as exc:
                    conn.abort(f"writing to {self.where} failed: {exc}")
                return await answer
        except TimeoutError:
            raise ActionTimeout(f"{action}: no answer within {timeout:g} s") from None
        finally:
            conn.pending.forget(action_id)
            if not answer.done():
                answer.cancel()

    # -- the link -----------------------------------------------------------------------------

    def _set_link(self, state, detail, **fields):
        previous = self.link
        self.link = previous.changed(state, detail, **fields)
        if (previous.state, previous.detail) == (state, detail):
            level = logging.DEBUG
        elif state == links.UP:
            level = logging.INFO
        elif state == links.LOGIN_REFUSED:
            level = logging.ERROR
        elif state == links.DOWN and detail not in ("stopped", "not started"):
            level = logging.WARNING
        else:
            level = logging.DEBUG
        log.log(level, "%s: AMI link %s %s: %s", self.name, state, self.where, detail)
        for callback in list(self._link_callbacks):
            self._call(callback, self.link, "on_link")

    def _call(self, callback, argument, kind):
        try:
            result = callback(argument)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        except Exception:  # noqa: BLE001 - one broken subscriber must not take the link down
            log.exception("%s: %s callback %r failed", self.name, kind, callback)

    async def _run(self):
        while not self._stopping:
            if self.link.state != links.CONNECTING:
                self._set_link(links.CONNECTING, f"connecting to {self.where}", retry_in=None, refused_with=None)
            refused = None  # the LoginRefused, when the PBX refused the login
            try:
                detail = await self._connect_and_serve()
            except LoginRefused as exc:
                refused, detail = exc, str(exc)
            except _Ended as exc:
                detail = str(exc)
            except (OSError, TimeoutError) as exc:
                detail = self._connect_failure(exc)
            except Exception as exc:  # noqa: BLE001 - a bug here must not end reconnecting for good
                log.exception("%s: unexpected failure of the AMI link to %s", self.name, self.where)
                detail = f"internal error: {exc!r}"
            if self._stopping:
                break
            delay = self._backoff.longest() if refused is not None else self._backoff.next_delay()
            if refused is not None:
                self._set_link(
                    links.LOGIN_REFUSED,
                    f"{detail}; check the AMI user and secret in manager.conf and the settings",
                    retry_in=round(delay, 2), refused_with=refused.reason,
                )
            else:
                self._set_link(links.DOWN, detail, retry_in=round(delay, 2))
            log.info("%s: next AMI connection attempt to %s in %.1f s", self.name, self.where, delay)
            await asyncio.sleep(delay)

    def _connect_failure(self, exc):
        if isinstance(exc, TimeoutError):
            return f"no TCP answer from {self.where} within {self.connect_timeout:g} s"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection to {self.where} refused: nothing listens there (is Asterisk running, manager enabled?)"
        return f"cannot connect to {self.where}: {exc.strerror or exc}"

    async def _connect_and_serve(self):
        """One connection from TCP connect to its end; returns why it ended."""
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        conn = self._conn = _Connection(reader, writer)
        reader_task = asyncio.create_task(self._read(conn), name=f"{self.name}-read")
        keepalive = None
        try:
            await self._await_banner(conn)
            await self._login(conn)
            conn.logged_in = True
            if self._stopping:
                return "stopped"
            keepalive = asyncio.create_task(self._keepalive(conn), name=f"{self.name}-ping")
            for callback in list(self._login_callbacks):
                try:
                    await callback()
                except AMIError as exc:
                    log.warning("%s: after login, %r failed: %s", self.name, callback, exc)
                except Exception:  # noqa: BLE001 - a broken subscriber must not take the link down
                    log.exception("%s: on_login callback %r failed", self.name, callback)
            if conn.lost is None:
                self._backoff.reset()
                self._set_link(links.UP, f"logged in as {self.username}", retry_in=None)
            await conn.closed.wait()
            return conn.lost
        finally:
            conn.abort("client stopped" if self._stopping else "connection closed", logging.DEBUG)
            for task in (reader_task, keepalive):
                if task is not None:
                    task.cancel()
            if self._conn is conn:
                self._conn = None

    async def _await_banner(self, conn):
        try:
            async with asyncio.timeout(self.action_timeout):
                await _first(conn.banner_seen.wait(), conn.closed.wait())
        except TimeoutError:
            conn.abort(
                f"connected to {self.where} but no AMI banner within {self.action_timeout:g} s "
                "(a silent peer, or not an AMI port)"
            )
        if conn.lost is not None:
            raise _Ended(conn.lost)
        banner = conn.parser.banner
        self.link = self.link.changed(
            self.link.state, self.link.detail, banner=banner, ami_version=links.ami_version(banner)
        )
        log.debug("%s: %s greets: %s", self.name, self.where, banner)

    async def _login(self, conn):
        try:
            if self.auth == "md5":
                challenge = await self._request(conn, "Challenge", [("AuthType", "MD5")], self.action_timeout)
                key = hashlib.md5((challenge.get("Challenge", "") + self._secret).encode()).hexdigest()
                fields = [("AuthType", "MD5"), ("Username", self.username), ("Key", key)]
            else:
                fields = [("Username", self.username), ("Secret", self._secret)]
            await self._request(conn, "Login", fields, self.action_timeout)
        except ActionError as exc:
            conn.abort("login refused", logging.DEBUG)
            raise LoginRefused(f"login as {self.username!r} refused by {self.where}: {exc.message}", exc.message) from None
        except ActionTimeout as exc:
            conn.abort(f"no answer to the login from {self.where}: {exc}")
            raise _Ended(conn.lost) from None
        except ConnectionLost:
            raise _Ended(f"{conn.lost} (during login)") from None

    async def _keepalive(self, conn):
        while conn.lost is None:
            await asyncio.sleep(self.ping_interval)
            try:
                await self._request(conn, "Ping", (), self.pong_timeout)
            except ActionTimeout:
                log.error("%s: %s stopped answering Ping; dropping the link", self.name, self.where)
                conn.abort(f"no answer to Ping within {self.pong_timeout:g} s: the PBX went silent")
            except ActionError:
                pass  # an error answer is still an answer: the peer is alive
            except ConnectionLost:
                return

    async def _read(self, conn):
        try:
            while conn.lost is None:
                data = await conn.reader.read(READ_CHUNK)
                if not data:
                    if conn.shutting_down:
                        conn.abort(f"{conn.shutting_down}; connection closed")
                    elif conn.partial_frame():
                        conn.abort(f"{self.where} closed the connection in the middle of a message")
                    else:
                        conn.abort(f"{self.where} closed the connection")
                    return
                messages = conn.parser.feed(data)
                if not conn.banner_seen.is_set() and conn.parser.banner is not None:
                    if not links.looks_like_ami(conn.parser.banner):
                        raise ProtocolError(f"not an AMI server: it greeted with {conn.parser.banner[:80]!r}")
                    conn.banner_seen.set()
                for msg in messages:
                    self._dispatch(conn, msg)
        except ProtocolError as exc:
            log.error("%s: protocol error from %s: %s; closing the connection", self.name, self.where, exc)
            conn.abort(f"protocol error from {self.where}: {exc}", logging.ERROR)
        except (ConnectionError, OSError) as exc:
            conn.abort(f"connection to {self.where} lost: {exc}")

    def _dispatch(self, conn, msg):
        if conn.pending.feed(msg):
            return
        if msg.event is None:
            log.debug("%s: answer nobody waits for: %r", self.name, msg)
            return
        if msg.event == "Shutdown":
            how = msg.get("Shutdown", "")
            restart = msg.get("Restart", "")
            conn.shutting_down = f"Asterisk is shutting down (Shutdown: {how}, Restart: {restart})"
            self._set_link(links.DOWN, conn.shutting_down)
        for callback in self._event_callbacks:
            try:
                callback(msg)
            except Exception:  # noqa: BLE001 - a broken subscriber must not stop the reading
                log.exception("%s: on_event callback %r failed on %r", self.name, callback, msg)


class _Ended(AMIError):
    """The connection ended before login completed; the message says why."""


async def _first(*awaitables):
    tasks = [asyncio.ensure_future(aw) for aw in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
