"""Actions awaiting their answer, matched by ActionID; the errors an action can end with.

No I/O here: the client registers a future before writing an action and feeds every received
message through `PendingActions.feed`, which says whether the message belonged to an action.
A `PendingActions` lives exactly as long as one TCP connection: when the link drops, every
future in it fails with `ConnectionLost` and the table is thrown away, so nothing in flight can
ever be sent a second time on the next connection.
"""

import asyncio


class AMIError(Exception):
    """Base of everything an action can fail with."""


class ActionError(AMIError):
    """The PBX answered `Response: Error` (e.g. `Permission denied`, `No such channel`)."""

    def __init__(self, action, message, response=None):
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message
        self.response = response


class ActionTimeout(AMIError):
    """No answer within the action's timeout; the link itself may still be fine."""


class ConnectionLost(AMIError):
    """The link dropped while the action was in flight. It is never re-sent: it may have run."""


class NotConnected(AMIError):
    """There is no logged-in link to send on right now."""


class _Pending:
    __slots__ = ("action", "future", "items")

    def __init__(self, action, future, items):
        self.action = action
        self.future = future
        self.items = items  # None for a single-response action, a list for a list action


class PendingActions:
    def __init__(self):
        self._by_id = {}

    def __len__(self):
        return len(self._by_id)

    def expect(self, action_id, action):
        """A future resolved with the action's `Response: Success` message."""
        return self._register(action_id, action, None)

    def expect_list(self, action_id, action):
        """A future resolved with the list's item events once `EventList: Complete` arrives."""
        return self._register(action_id, action, [])

    def _register(self, action_id, action, items):
        if action_id in self._by_id:
            raise ValueError(f"ActionID {action_id!r} is already awaiting an answer")
        future = asyncio.get_running_loop().create_future()
        self._by_id[action_id] = _Pending(action, future, items)
        return future

    def forget(self, action_id):
        self._by_id.pop(action_id, None)

    def feed(self, msg):
        """Deliver a message to the action it answers. True if it was consumed here.

        Only responses and the events of a list in progress are consumed; any other event,
        even one carrying an ActionID (an Async Originate's `OriginateResponse`, whose
        `Response: Success` already resolved its future), is left for the event stream.
        """
        action_id = msg.action_id
        if action_id is None:
            return False
        pending = self._by_id.get(action_id)
        if msg.event is None:  # a response (an OriginateResponse event also has a `Response:` key)
            if pending is None:
                return True  # a late answer to an action that timed out: nobody waits for it
            self._answer(action_id, pending, msg)
            return True
        if pending is None or pending.items is None:
            return False
        if (msg.get("EventList") or "").lower() == "complete":
            self._resolve(action_id, pending, pending.items)
        else:
            pending.items.append(msg)
        return True

    def _answer(self, action_id, pending, msg):
        if (msg.response or "").lower() not in ("success", "goodbye"):
            # `Response: Error` (and anything unknown) fails the action; a list ends here too.
            message = msg.get("Message") or msg.response or "an answer without Response"
            self._fail(action_id, pending, ActionError(pending.action, message, msg))
        elif pending.items is None:
            self._resolve(action_id, pending, msg)
        elif (msg.get("EventList") or "").lower() != "start":
            # A list action answered without starting a list: there are no items to wait for.
            self._resolve(action_id, pending, pending.items)

    def _resolve(self, action_id, pending, result):
        del self._by_id[action_id]
        if not pending.future.done():
            pending.future.set_result(result)

    def _fail(self, action_id, pending, exc):
        del self._by_id[action_id]
        if not pending.future.done():
            pending.future.set_exception(exc)

    def fail_all(self, exc_factory):
        """Fail every waiting action (the connection is gone); `exc_factory()` makes each error."""
        pending, self._by_id = self._by_id, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(exc_factory())
