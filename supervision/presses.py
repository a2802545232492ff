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
import re
import weakref
from collections import defaultdict, deque
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from accounts import sessions
from supervision.ami.pending import ActionError, ActionTimeout, ConnectionLost, NotConnected
from supervision.board import device_of
from supervision.bridge import speaking
from supervision.models import MonitoringSession, Outcome
from supervision.policy import SESSION_ENDED
from supervision.reasons import Why, row_fields

# A press in one of these states is over: later events and replays change nothing.
DONE = (Outcome.ENDED, Outcome.FAILED, Outcome.INTERRUPTED, Outcome.DENIED)

# OriginateResponse `Reason`, as a real Asterisk 20 sends it (ami-captures/README.md); put in
# words in the language active when the outcome is told.
# (reason codes of supervision.reasons)
ORIGINATE_REASONS = {
    "0": "unavailable_or_no_extension",
    "1": "hung_up",
    "3": "no_answer",
    "4": "answered",
    "5": "line_busy",
    "8": "congestion",
}


def originate_reason(code):
    words = ORIGINATE_REASONS.get(str(code))
    return Why(words) if words else Why("reason_code", code=str(code))


# What the phone's own leg says when it did not connect: its `DialEnd` `DialStatus`, else its
# hang-up cause (Q.850). On PJSIP a phone answering `486 Busy` gives OriginateResponse Reason 0, the
# same as "no such extension"; only these tell busy from not available
# (ami-captures asterisk22-pjsip-originate-failures; chan_sip: asterisk20-originate-failures).
DIAL_STATUS_WORDS = {
    "BUSY": "line_busy",
    "NOANSWER": "no_answer",
    "CONGESTION": "congestion",
    "CHANUNAVAIL": "unavailable",
}
CAUSE_WORDS = {
    "1": "no_such_number",
    "17": "line_busy",
    "18": "no_answer",
    "19": "no_answer",
    "20": "unavailable",
    "21": "rejected",
    "27": "unavailable",
    "34": "congestion",
    "38": "congestion",
}
LEG_EVENTS = frozenset({"Newchannel", "DialBegin", "DialEnd", "HangupRequest", "SoftHangupRequest", "Hangup"})


class LegWatch:
    """The channels one Originate makes on the presser's own phone, followed from the PBX's events
    from the moment it is sent: on the PJSIP route the `Local/<ext>@<context>` pair (`device` of
    the dial string) and the phone's leg its `;2` dials; on chan_sip the phone's leg the Originate
    dials. It knows how their dial ended and why they hung up (a failed OriginateResponse names only
    the dial string, with `Uniqueid: <unknown>`), and which of them are still up: the call is the
    phone's own leg, which outlives the Local pair when Asterisk optimises it away
    (asterisk22-pjsip-click-to-call)."""

    def __init__(self, kind, phone_device, dial_string):
        self.kind = kind
        self.phone_device = phone_device
        self.local_device = dial_string if dial_string.startswith("Local/") else None
        self.names = set()  # every leg seen
        self.alive = set()  # legs not hung up yet
        self.dial_status = {}  # leg -> DialStatus of the dial that rang it
        self.cause = {}  # leg -> first hang-up cause that says something (not 0 / 16)

    def _add(self, name):
        self.names.add(name)
        self.alive.add(name)

    def see(self, msg):
        get = msg.fields.get
        event = msg.event
        if event == "Newchannel":
            name = get("Channel") or ""
            if self.local_device is not None and device_of(name) == self.local_device and name.startswith("Local/"):
                self._add(name)
        elif event == "DialBegin":
            dest, caller = get("DestChannel") or "", get("Channel")
            # An Originate's own dial has no calling channel; the Local route's `;2` is one of ours.
            if device_of(dest) in (self.phone_device, self.local_device) and (not caller or caller in self.names):
                self._add(dest)
        elif event == "DialEnd":
            dest = get("DestChannel") or ""
            if dest in self.names and get("DialStatus"):
                self.dial_status[dest] = get("DialStatus")
        else:
            name = get("Channel") or ""
            if name in self.names:
                cause = get("Cause") or ""
                if cause not in ("", "0", "16") and name not in self.cause:
                    self.cause[name] = cause
                if event == "Hangup":
                    self.alive.discard(name)

    def phone_legs(self):
        """The phone's own legs (not the Local pair), oldest name first."""
        return sorted(name for name in self.names if not name.startswith("Local/"))

    def why_not_connected(self):
        """Words for why the phone did not connect, from its own legs; None when they said nothing.
        The phone's leg speaks before the Local pair's."""
        legs = self.phone_legs() + sorted(name for name in self.names if name.startswith("Local/"))
        for leg in legs:
            words = DIAL_STATUS_WORDS.get(self.dial_status.get(leg, ""))
            if words:
                return Why(words)
        for leg in legs:
            words = CAUSE_WORDS.get(self.cause.get(leg, ""))
            if words:
                return Why(words)
        return None


def failure_words(legs, reason_code):
    """Why an Originate failed: what the phone's own legs said, else the OriginateResponse Reason."""
    return (legs.why_not_connected() if legs is not None else None) or originate_reason(reason_code)


# Every LegWatch in flight, per bridge: a pickup must never take a leg another press is ringing.
_WATCHES = weakref.WeakKeyDictionary()


def legs_in_flight(bridge, kinds):
    """Names of the legs the product's own presses of these kinds are ringing or holding."""
    names = set()
    for watch in _WATCHES.get(bridge, ()):
        if watch.kind in kinds:
            names |= watch.alive
    return names


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
        outcome=Outcome.INTERRUPTED, ended_at=timezone.now(), **row_fields(reason)
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
    for the user (a reasons.Why), or go ahead with the Originate's `fields`. `row` is the press's audit row
    without its outcome; `found` carries what the command module keeps for later (names, the
    channel...). `session_id` is the row written for it."""

    row: dict
    reason: str
    text: object = ""
    fields: dict | None = None
    found: dict = field(default_factory=dict)
    session_id: int | None = None

    @property
    def allowed(self):
        return self.fields is not None


def refused(row, reason, text, **found):
    return Verdict(row, reason, text, found=found)


def accepted(row, reason, fields, **found):
    return Verdict(row, reason, fields=fields, found=found)


async def settle(read, judge, look=None, *, request=None):
    """The press's one database step: `read()` the facts (database, fresh), `look(facts)` at the
    bridge's state (run in the bridge's loop), `judge(facts, seen) -> Verdict` (pure), then the
    audit row: `denied` and ended, or `requested`. A judge that returns None writes nothing.
    A press `request` refused because its login session has ended closes the socket it came from."""
    verdict = await _settle(asyncio.get_running_loop(), read, judge, look)
    if verdict is not None and verdict.reason == SESSION_ENDED and request is not None:
        await close_ended_session(request)
    return verdict


def session_key(request):
    """The login session a press came with, for the policy's read (accounts.sessions.key_of)."""
    return sessions.key_of(request.command)


async def close_ended_session(request):
    """The socket that sent a press its read found from an ended session checks its session again
    (`session.check`, as after a change of its user) and so closes."""
    if request.reply_to:
        await request.bridge.send_to(request.reply_to, {"type": "session.check"})


@on_db_thread
def _settle(loop, read, judge, look):
    facts = read()
    seen = in_loop(loop, look, facts) if look is not None else None
    verdict = judge(facts, seen)
    if verdict is None:
        return None
    row = {key: _storable(value) for key, value in verdict.row.items()}
    row["reason"] = verdict.reason
    if verdict.allowed:
        row["outcome"] = Outcome.REQUESTED
    else:
        row.update(outcome=Outcome.DENIED, ended_at=timezone.now(), **row_fields(verdict.text))
    if verdict.reason == RATE_LIMITED and not verdict.allowed:
        verdict.session_id = _BURSTS.record(row)
    else:
        verdict.session_id = MonitoringSession.objects.create(**row).pk
    return verdict


# What a press brings that is the user's own typing (a dialled number) is kept as text only: a
# control character (NUL, which PostgreSQL refuses in text, ESC, a lone CR) becomes U+FFFD.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # and lone surrogates (no UTF-8 form)


def _storable(value):
    return CONTROL_CHARACTERS.sub("\ufffd", value) if isinstance(value, str) else value


class RefusalBursts:
    """Rate-limited refusals are summarised: the first of a user's burst writes a row, the next
    ones only count into it (reason `refused_burst`: "N presses refused: ...", `requested_at` the first,
    `ended_at` the last). A burst ends after BURST_GAP seconds without one, and a flood that goes
    on starts a new row every BURST_ROW_SECONDS: a user adds at most one such row per ten minutes,
    whatever he sends. Used on the database thread only."""

    BURST_GAP = 60.0
    BURST_ROW_SECONDS = 600.0

    def __init__(self):
        self.open = {}  # user id -> [row id, count, first time, last time, the refusal's Why]

    def record(self, row):
        user = row.get("user")
        key = user.pk if user is not None else None
        now = row["ended_at"]
        burst = self.open.get(key)
        if burst is not None and (now - burst[3]).total_seconds() <= self.BURST_GAP \
                and (now - burst[2]).total_seconds() <= self.BURST_ROW_SECONDS:
            count = burst[1] + 1
            why = Why("refused_burst", count=count, why=burst[4]) if burst[4] is not None else None
            fields = row_fields(why) if why is not None else {
                "outcome_detail": f"{count} presses refused: {row['outcome_detail']}"[:255]}
            # The row as this burst left it (not one deleted meanwhile, nor another in its place).
            same = MonitoringSession.objects.filter(pk=burst[0], user_id=key, reason=RATE_LIMITED, ended_at=burst[3])
            if same.update(ended_at=now, **fields):
                burst[1] += 1
                burst[3] = now
                return burst[0]
        pk = MonitoringSession.objects.create(**row).pk
        why = Why(row["outcome_code"], **row["outcome_args"]) if row.get("outcome_code") else None
        self.open[key] = [pk, 1, now, now, why]
        return pk


_BURSTS = RefusalBursts()


def link_refusal(link):
    """(reason, words) when the PBX link is not up, else None. `link` is (state, detail)."""
    state, detail = link
    if state == "up":
        return None
    return "pbx_down", Why("pbx_link_state", state=state, detail=detail or "-")


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
        return None, (Outcome.DENIED, Why("pbx_link_down", why=str(exc)), "pbx_down")
    except ActionError as exc:
        return None, (Outcome.FAILED, Why("pbx_refused", why=exc.message or ""), None)
    except ActionTimeout:
        return None, (Outcome.FAILED, Why("pbx_no_answer"), None)
    except ConnectionLost:
        return None, (Outcome.INTERRUPTED, Why("pbx_dropped"), None)


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
    return Why("rate_limited")


# --- following the PBX's events -----------------------------------------------------------------

RECENT_EVENTS = 500  # relevant events kept for the replay after a press's Response


class EventFollower:
    """The event side every command module shares. The bridge hands EVERY AMI event to `on_event`:
    one set lookup turns away those not in `EVENTS`; the rest are kept in `_recent` (events that
    shared a TCP read with an Originate's Response come before its ActionID is known) and, while
    anything is `_in_flight()`, handled one at a time in the PBX's order (asyncio.Lock wakes waiters
    first come first served), each in the language of the page that pressed.

    A command module sets EVENTS and `bridge`, and gives `_in_flight()`, `_press_of(msg)` (the press
    in flight an event is about, looked up, not taken out; it has a `language`; or `_presses_of(msg)`
    when one event can be about several),
    `_handle_press_event(press, msg)` and `_link_lost(state)` (what becomes of the presses in
    flight when the PBX link is no longer up: a coroutine to run, or None)."""

    EVENTS = frozenset()

    def __init__(self):
        self._recent = deque(maxlen=RECENT_EVENTS)
        self._lock = asyncio.Lock()
        self._watches = set()  # LegWatch of each press whose Originate may still make legs

    def watch_legs(self, kind, phone):
        """Follow the legs an Originate ringing `phone` makes; call before sending it."""
        watch = LegWatch(kind, phone.device, phone.dial_string)
        self._watches.add(watch)
        _WATCHES.setdefault(self.bridge, set()).add(watch)
        return watch

    def unwatch(self, watch):
        if watch is not None:
            self._watches.discard(watch)
            _WATCHES.get(self.bridge, set()).discard(watch)

    def on_link(self, link=None):
        state = getattr(link, "state", None) or self.bridge.client.link.state
        if state == "up":
            return None
        self._recent.clear()  # channel names start again after an Asterisk restart
        return self._link_lost(state)

    def on_event(self, msg):
        if self._watches and msg.event in LEG_EVENTS:
            for watch in self._watches:
                watch.see(msg)
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
        for press in self._presses_of(msg):
            # The event comes from the PBX, not from a page: its texts speak the presser's language.
            with speaking(press.language):
                await self._handle_press_event(press, msg)

    def _presses_of(self, msg):
        """The presses an event is about: one at most, unless a module says otherwise (two users
        may press Answer here on the same ringing call)."""
        press = self._press_of(msg)
        return () if press is None else (press,)
