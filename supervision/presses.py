"""The press path every Originate command shares (spy in supervision.monitoring; pickup, dial and
playback in supervision.cti): check -> audit row -> send -> track -> report.

A press is settled in ONE database step: the fresh reads the policy decides on, a look at what
the bridge knows (the board, the PBX link), the decision and the audit row (denied or
requested), all on one connection in one trip to the database thread. The row is committed when
the step returns, so it is written BEFORE anything is sent to the PBX.

The reads are not wrapped in a transaction with the INSERT: on SQLite in WAL mode a read
transaction that turns into a write fails at once (SQLITE_BUSY_SNAPSHOT, no busy timeout) when
another process committed in between; the INSERT alone is atomic and is the step's one commit.
"""

import asyncio
import concurrent.futures
from collections import defaultdict, deque
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from supervision.ami.pending import ActionError, ActionTimeout, ConnectionLost, NotConnected
from supervision.bridge import speaking
from supervision.models import MonitoringSession, Outcome

# A press in one of these states is over: later events and replays change nothing.
DONE = (Outcome.ENDED, Outcome.FAILED, Outcome.INTERRUPTED, Outcome.DENIED)

# OriginateResponse `Reason`, as a real Asterisk 20 sends it (ami-captures/README.md); put in
# words in the language active when the outcome is told.
ORIGINATE_REASONS = {
    "0": gettext_noop("not available / no such extension"),
    "1": gettext_noop("hung up"),
    "3": gettext_noop("no answer"),
    "4": gettext_noop("answered"),
    "5": gettext_noop("busy"),
    "8": gettext_noop("congestion / not available"),
}


def originate_reason(code):
    words = ORIGINATE_REASONS.get(str(code))
    return _(words) if words else _("reason %(code)s") % {"code": code}


# --- the database thread (the bridge lives in the event loop, the ORM is synchronous) -------------


def on_db_thread(function):
    """`function` as an awaitable run in Django's database thread, on a connection that is fresh
    for the step and let go after it (CONN_MAX_AGE decides whether it really closes)."""

    def run(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=True)


@on_db_thread
def update_row(session_id, **fields):
    MonitoringSession.objects.filter(pk=session_id).update(**fields)


@on_db_thread
def interrupt_rows(session_ids, reason):
    return MonitoringSession.objects.filter(pk__in=session_ids).live().update(
        outcome=Outcome.INTERRUPTED, outcome_detail=reason[:255], ended_at=timezone.now()
    )


@on_db_thread
def interrupt_open_rows(reason):
    return MonitoringSession.objects.interrupt_open(reason)


def in_loop(loop, function, *args):
    """`function(*args)` called in the event loop `loop`, from a worker thread that waits for its
    result: the board and the AMI link belong to the loop and change under a thread's feet.
    `function` returns data only (no words: the page's language is not active there)."""
    done = concurrent.futures.Future()

    def call():
        try:
            done.set_result(function(*args))
        except BaseException as exc:  # handed to the waiting thread
            done.set_exception(exc)

    loop.call_soon_threadsafe(call)
    return done.result()


# --- a press decided ----------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the judge of a press says: refused (`fields` None) with a reason code and the words
    for the user, or go ahead with the Originate's `fields`. `row` is the press's audit row
    without its outcome; `found` carries what the command module keeps for later (names, the
    channel...). `session_id` is the row written for it."""

    row: dict
    reason: str
    text: str = ""
    fields: dict | None = None
    found: dict = field(default_factory=dict)
    session_id: int | None = None

    @property
    def allowed(self):
        return self.fields is not None


def refused(row, reason, text, **found):
    return Verdict(row, reason, str(text), found=found)


def accepted(row, reason, fields, **found):
    return Verdict(row, reason, fields=fields, found=found)


async def settle(read, judge, look=None):
    """The press's one database step: `read()` the facts (database, fresh), `look(facts)` at the
    bridge's state (run in the bridge's loop), `judge(facts, seen) -> Verdict` (pure), then the
    audit row: `denied` and ended, or `requested`. A judge that returns None writes nothing."""
    return await _settle(asyncio.get_running_loop(), read, judge, look)


@on_db_thread
def _settle(loop, read, judge, look):
    facts = read()
    seen = in_loop(loop, look, facts) if look is not None else None
    verdict = judge(facts, seen)
    if verdict is None:
        return None
    row = {**verdict.row, "reason": verdict.reason}
    if verdict.allowed:
        row["outcome"] = Outcome.REQUESTED
    else:
        row.update(outcome=Outcome.DENIED, outcome_detail=verdict.text[:255], ended_at=timezone.now())
    verdict.session_id = MonitoringSession.objects.create(**row).pk
    return verdict


def link_refusal(link):
    """(reason, words) when the PBX link is not up, else None. `link` is (state, detail)."""
    state, detail = link
    if state == "up":
        return None
    return "pbx_down", _("The PBX link is %(state)s (%(detail)s); try again when it is back.") % {
        "state": state, "detail": detail or "-"}


def cannot_ring(decision, phone, link, no_phone_text):
    """(reason, words) when a press may not ring the presser's own phone, else None, in this
    order: the policy says no (`decision`; None when there was no phone to ask about), he has no
    phone in the roster, the PBX link is not up."""
    if decision is not None and not decision:
        return decision.reason, decision.message
    if phone is None:
        return "no_phone", no_phone_text
    return link_refusal(link)


def link_of(client):
    """The AMI link as data, read in the loop."""
    return client.link.state, client.link.detail


# --- sending and the rate limit -----------------------------------------------------------------


async def send_originate(client, fields):
    """(response, None) once the PBX took the Originate, else (None, (outcome, words, reason))."""
    try:
        return await client.send("Originate", fields), None
    except NotConnected as exc:
        return None, (Outcome.DENIED, _("The PBX link is down: %(why)s") % {"why": exc}, "pbx_down")
    except ActionError as exc:
        return None, (Outcome.FAILED, _("The PBX refused: %(why)s") % {"why": exc.message}, None)
    except ActionTimeout:
        return None, (Outcome.FAILED, _("The PBX did not answer in time."), None)
    except ConnectionLost:
        return None, (Outcome.INTERRUPTED, _("The PBX link dropped while calling your phone."), None)


class PressWindow:
    """At most `limit` presses per user within `window` seconds (every press counts, refused ones
    too: a flood is refused however it is made up)."""

    def __init__(self, clock):
        self.clock = clock
        self.presses = defaultdict(deque)

    def allow(self, user_id, limit, window):
        now = self.clock()
        times = self.presses[user_id]
        while times and now - times[0] > window:
            times.popleft()
        times.append(now)
        return len(times) <= limit


RATE_LIMITED = "rate_limited"


def rate_limited_text():
    return _("Too many presses; wait a few seconds.")


# --- following the PBX's events -----------------------------------------------------------------

RECENT_EVENTS = 500  # relevant events kept for the replay after a press's Response


class EventFollower:
    """The event side every command module shares. The bridge hands EVERY AMI event to `on_event`:
    one set lookup turns away those not in `EVENTS`; the rest are kept in `_recent` (events that
    shared a TCP read with an Originate's Response come before its ActionID is known) and, while
    anything is `_in_flight()`, handled one at a time in the PBX's order (asyncio.Lock wakes waiters
    first come first served), each in the language of the page that pressed.

    A command module sets EVENTS and `bridge`, and gives `_in_flight()`, `_press_of(msg)` (the press
    in flight an event is about, looked up, not taken out; it has a `language`),
    `_handle_press_event(press, msg)` and `_link_lost(state)` (what becomes of the presses in
    flight when the PBX link is no longer up: a coroutine to run, or None)."""

    EVENTS = frozenset()

    def __init__(self):
        self._recent = deque(maxlen=RECENT_EVENTS)
        self._lock = asyncio.Lock()

    def on_link(self, link=None):
        state = getattr(link, "state", None) or self.bridge.client.link.state
        if state == "up":
            return None
        self._recent.clear()  # channel names start again after an Asterisk restart
        return self._link_lost(state)

    def on_event(self, msg):
        if msg.event not in self.EVENTS:
            return None
        self._recent.append(msg)
        if not self._in_flight():
            return None
        return self._on_event(msg)

    async def _on_event(self, msg):
        async with self._lock:
            await self._handle(msg)

    async def _handle(self, msg):
        press = self._press_of(msg)
        if press is None:
            return
        # The event comes from the PBX, not from a page: its texts speak the presser's language.
        with speaking(press.language):
            await self._handle_press_event(press, msg)
