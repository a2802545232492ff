"""Listen, whisper, barge: the bridge's spy commands and the life of each spy session.

A press travels: browser -> consumer -> bridge -> here. Every press is decided again by the policy
against the database as it is now, and written to the audit trail (MonitoringSession) BEFORE any
action goes to the PBX; refused presses are written too, and send nothing.

A session then follows the PBX's events:
    requested --Response: Success--> queued --OriginateResponse 4--> answered
              --ChanSpyStart (SpyerChannel = the answered channel)--> spying
              --ChanSpyStop / Hangup of the spy leg--> ended
and ends `failed` (Originate refused, phone busy / no answer...) or `interrupted` (PBX link lost,
bridge restarted). A user has at most one live session, and presses are rate limited.

Commands (browser JSON; ids and a mode only, never channel names):
    {"type": "spy", "target": <extension id>, "mode": "listen"|"whisper"|"barge"}
    {"type": "spy.switch", "mode": ...}        (the user's live session)
    {"type": "spy.stop"}                       (the user's live session)
Messages to the user's dashboards (group supervision.user.<id>):
    {"type": "spy.status", "state": <outcome or refusal>, "reason": code, "text": ..., "session": id,
     "target": <extension id>, "mode": ...}
and to the monitored person (NOTIFY_MONITORED): {"type": "monitored", "by": name, "mode": ...,
"active": true|false}.
"""

import asyncio
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from supervision import actions, policy
from supervision.ami.pending import ActionError, ActionTimeout, ConnectionLost, NotConnected
from supervision.bridge import speaking
from supervision.models import Kind, MonitoringSession, Outcome

logger = logging.getLogger(__name__)

PRESS_LIMIT = 5  # presses (spy + spy.switch) per user...
PRESS_WINDOW = 10.0  # ...within this many seconds
RECENT_EVENTS = 500  # spy-related events kept for _replay_after
SPY_EVENTS = {"OriginateResponse", "ChanSpyStart", "ChanSpyStop", "Hangup"}

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


def doing(mode, name):
    """"Listening to Anna" - what the user's phone is doing now."""
    if mode == "whisper":
        return _("Whispering to %(name)s") % {"name": name}
    if mode == "barge":
        return _("Barging in on %(name)s") % {"name": name}
    return _("Listening to %(name)s") % {"name": name}


@dataclass
class LiveSession:
    """What the bridge keeps in memory about one session in flight (the row holds the rest)."""

    user_id: int
    user_name: str = ""
    session_id: int | None = None
    target_id: int | None = None
    target_user_id: int | None = None
    target_name: str = ""
    target_channel: str = ""
    mode: str = ""
    modes: list = field(default_factory=list)
    allow_switch: bool = False
    action_id: str = ""
    spy_channel: str = ""
    state: str = Outcome.REQUESTED
    stop_requested: bool = False
    # The language of the page that pressed (last): the texts the PBX's later events bring speak it.
    language: str | None = None


# --- database (run in a thread: the bridge lives in the event loop) ------------------------------


def _db(function):
    def run(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=True)


@_db
def _decide(user_id, target_id, mode):
    """The policy's answer plus what the Originate needs, read fresh from the database once (the
    user, the phone and the permissions serve the press's mode and the keypad-switch check)."""
    user, target, decisions = policy.decide_each(user_id, (mode, *policy.MODES), target_id)
    decision = decisions[mode]
    spyer = user.extensions.order_by("pk").first() if user is not None else None
    allow_switch = bool(decision) and all(decisions[each] for each in policy.MODES)
    return decision, user, target, spyer, allow_switch


@_db
def _recheck(user_id, target_id, mode):
    decision = policy.can(user_id, mode, target_id)
    user = policy.fresh_user(user_id)
    target = policy.fresh_extension(target_id) if target_id is not None else None
    return decision, user, target


@_db
def _people(user_id, target_id):
    user = policy.fresh_user(user_id)
    target = policy.fresh_extension(target_id) if target_id is not None else None
    return user, target


@_db
def _write(**fields):
    return MonitoringSession.objects.create(**fields).pk


@_db
def _update(session_id, **fields):
    MonitoringSession.objects.filter(pk=session_id).update(**fields)


@_db
def _interrupt(session_ids, reason):
    return MonitoringSession.objects.filter(pk__in=session_ids).live().update(
        outcome=Outcome.INTERRUPTED, outcome_detail=reason[:255], ended_at=timezone.now()
    )


@_db
def _interrupt_open(reason):
    return MonitoringSession.objects.interrupt_open(reason)


def _row(user, target, spyer, mode, client, **extra):
    """The audit row's fields for a press (any of user/target/spyer may be missing)."""
    return {
        "kind": Kind.SPY,
        "user": user,
        "user_label": str(user) if user is not None else "",
        "from_extension": spyer,
        "from_device": spyer.device if spyer is not None else "",
        "target_user": target.user if target is not None else None,
        "target_label": str(target.user) if target is not None else "",
        "target_extension": target,
        "target_device": target.device if target is not None else "",
        "mode": mode if mode in policy.MODES else "",
        "modes": mode if mode in policy.MODES else "",
        "client_address": (client or "")[:64],
        **extra,
    }


def _target_id(value):
    """The browser's target: an extension id, nothing else (a forged string is not looked up)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


class SpyMonitor:
    def __init__(self, bridge, *, clock=time.monotonic):
        self.bridge = bridge
        self.clock = clock
        self.by_user = {}  # user id -> LiveSession (one live session per user)
        self.by_action = {}  # ActionID -> LiveSession, from `Response: Success` to OriginateResponse
        self.by_spy_channel = {}  # spy leg's channel name -> LiveSession
        self.presses = defaultdict(deque)
        self._recent = deque(maxlen=RECENT_EVENTS)
        self._lock = asyncio.Lock()
        self._tasks = set()

    # --- entry points -----------------------------------------------------------------------------

    async def spy(self, bridge, request):
        command = request.command
        mode = command.get("mode")
        target_id = _target_id(command.get("target"))
        if not self._press_allowed(request.user_id):
            await self._refuse_press(request, target_id, mode, "rate_limited", _("Too many presses; wait a few seconds."))
            return
        await self._start(request, target_id, mode)

    async def stop(self, bridge, request):
        live = self.by_user.get(request.user_id)
        wanted = request.command.get("session")
        if live is None or (wanted is not None and wanted != live.session_id):
            await self._status(request.user_id, "idle", "no_session", _("You are not monitoring anyone."))
            return
        await self._stop(live)

    async def switch(self, bridge, request):
        mode = request.command.get("mode")
        live = self.by_user.get(request.user_id)
        if not self._press_allowed(request.user_id):
            await self._refuse_press(
                request, live.target_id if live else None, mode, "rate_limited", _("Too many presses; wait a few seconds.")
            )
            return
        if live is None or live.session_id is None:
            await self._status(request.user_id, "idle", "no_session", _("You are not monitoring anyone."))
            return
        if not live.spy_channel:
            await self._status(request.user_id, live.state, "not_connected",
                               _("Your phone is not connected yet; try again in a moment."), live)
            return
        if mode == live.mode:
            await self._status(request.user_id, live.state, "same_mode", doing(mode, live.target_name), live)
            return
        decision, user, target = await _recheck(request.user_id, live.target_id, mode if mode in policy.MODES else None)
        if mode not in policy.MODES or not decision:
            reason = decision.reason if mode in policy.MODES else "unknown_action"
            text = decision.message if mode in policy.MODES else _("Unknown action.")
            await _write(**_row(user, target, None, mode, request.client, reason=reason,
                                outcome=Outcome.DENIED, outcome_detail=text, ended_at=timezone.now()))
            await self._status(request.user_id, "denied", reason, text, live, mode=mode)
            return
        if live.allow_switch:
            live.language = request.language
            try:
                await self.bridge.client.send("PlayDTMF", actions.switch_dtmf(live.spy_channel, mode))
            except (ActionError, ActionTimeout, ConnectionLost, NotConnected) as exc:
                await self._status(request.user_id, live.state, "switch_failed",
                                   _("The switch did not reach the PBX: %(why)s") % {"why": exc}, live)
                return
            live.mode = mode
            live.modes.append(mode)
            await _update(live.session_id, mode=mode, modes=",".join(live.modes))
            await self._status(request.user_id, live.state, "switched", doing(mode, live.target_name), live)
            if live.state == Outcome.SPYING:
                await self._notify_monitored(live, active=True)
            return
        # Without ChanSpy's `d` the mode cannot change in place: end this session, start another.
        live.stop_requested = True
        await self._hangup(live, quiet=True)
        await self._finish(live, Outcome.ENDED, _("Switched to %(mode)s.") % {"mode": _(mode)})
        await self._start(request, live.target_id, mode)

    # --- a new session ------------------------------------------------------------------------------

    async def _start(self, request, target_id, mode):
        user_id = request.user_id
        current = self.by_user.get(user_id)
        if current is not None:
            await self._refuse_busy(request, target_id, mode, current)
            return
        live = LiveSession(user_id=user_id, target_id=target_id, mode=mode, language=request.language)
        self.by_user[user_id] = live  # reserved before the first await: concurrent presses see it
        try:
            await self._originate(request, live)
        except BaseException:
            self._release(live)
            raise

    async def _originate(self, request, live):
        user_id, mode, target_id = request.user_id, live.mode, live.target_id
        decision, user, target, spyer, allow_switch = await _decide(
            user_id, target_id, mode if mode in policy.MODES else None
        )

        async def refuse(reason, text):
            await _write(**_row(user, target, spyer, mode, request.client, reason=reason, outcome=Outcome.DENIED,
                                outcome_detail=text, ended_at=timezone.now()))
            self._release(live)
            await self._status(user_id, "denied", reason, text, live)

        if mode not in policy.MODES:
            return await refuse("unknown_action", _("Unknown action."))
        if not decision:
            return await refuse(decision.reason, decision.message)
        name = str(target.user)
        live.user_name, live.target_name, live.target_user_id = str(user), name, target.user_id
        if spyer is None:
            return await refuse("no_phone", _("You have no phone in the roster to listen on."))
        link = self.bridge.client.link
        if link.state != "up":
            return await refuse(
                "pbx_down", _("The PBX link is %(state)s (%(detail)s); try again when it is back.")
                % {"state": link.state, "detail": link.detail or "-"}
            )
        channel = self.bridge.board.live_channel(target.device)
        if channel is None or channel.get("state") != "up":
            return await refuse("no_call", _("%(name)s has no call right now.") % {"name": name})
        try:
            fields = actions.spy_originate(spyer, channel["name"], mode, allow_switch=allow_switch, action_id=None)
        except actions.UnsafeValue as exc:
            logger.warning("refusing to spy on %r: %s", channel.get("name"), exc)
            return await refuse("unsafe_channel", _("%(name)s's call cannot be joined.") % {"name": name})

        live.target_channel, live.allow_switch, live.modes = channel["name"], allow_switch, [mode]
        live.session_id = await _write(**_row(
            user, target, spyer, mode, request.client, reason=decision.reason, target_channel=channel["name"],
            allow_switch=allow_switch, outcome=Outcome.REQUESTED,
        ))
        if live.stop_requested:
            return await self._finish(live, Outcome.ENDED, _("Stopped before your phone was called."))
        try:
            response = await self.bridge.client.send("Originate", fields)
        except NotConnected as exc:
            return await self._finish(live, Outcome.DENIED, _("The PBX link is down: %(why)s") % {"why": exc},
                                      reason="pbx_down")
        except ActionError as exc:
            return await self._finish(live, Outcome.FAILED, _("The PBX refused: %(why)s") % {"why": exc.message})
        except ActionTimeout:
            return await self._finish(live, Outcome.FAILED, _("The PBX did not answer in time."))
        except ConnectionLost:
            return await self._finish(live, Outcome.INTERRUPTED, _("The PBX link dropped while calling your phone."))
        live.action_id = response.action_id or ""
        live.state = Outcome.QUEUED
        self.by_action[live.action_id] = live
        await _update(live.session_id, outcome=Outcome.QUEUED, action_id=live.action_id)
        await self._status(user_id, "queued", "ok", _("Calling your phone…"), live)
        async with self._lock:
            for msg in list(self._recent):
                if msg.event == "OriginateResponse" and msg.action_id == live.action_id:
                    await self._handle(msg)

    async def _replay_after(self, live, origin):
        """Handle the spy leg's events that came after its OriginateResponse but before we knew the
        leg's name: the OriginateResponse can share a TCP read with the Originate's Response, and
        ChanSpyStart can follow before our bookkeeping caught up. Handling is idempotent, so an
        event seen both here and live counts once."""
        recent = list(self._recent)
        start = next((i + 1 for i, msg in enumerate(recent) if msg is origin), len(recent))
        for msg in recent[start:]:
            if live.state in (Outcome.ENDED, Outcome.FAILED, Outcome.INTERRUPTED):
                return
            if live.spy_channel in (msg.get("SpyerChannel"), msg.get("Channel")):
                await self._handle(msg)

    # --- PBX events -------------------------------------------------------------------------------

    def on_event(self, msg):
        if msg.event not in SPY_EVENTS:
            return None
        self._recent.append(msg)
        if not (self.by_action or self.by_spy_channel):
            return None
        return self._on_event(msg)

    async def _on_event(self, msg):
        # One event at a time, in the PBX's order (asyncio.Lock wakes waiters first come first served).
        async with self._lock:
            await self._handle(msg)

    def _session_of(self, msg):
        """The live session an event is about, if any (looked up, not taken out)."""
        if msg.event == "OriginateResponse":
            return self.by_action.get(msg.action_id or "")
        key = msg.get("Channel") if msg.event == "Hangup" else msg.get("SpyerChannel")
        return self.by_spy_channel.get(key or "")

    async def _handle(self, msg):
        live = self._session_of(msg)
        if live is None:
            return
        # The event comes from the PBX, not from a page: its texts are composed in the language of
        # the page that pressed, not in the server's default.
        with speaking(live.language):
            await self._handle_session_event(live, msg)

    async def _handle_session_event(self, live, msg):
        event = msg.event
        if event == "OriginateResponse":
            self.by_action.pop(msg.action_id or "", None)
            if (msg.get("Response") or "").lower() == "success":
                live.spy_channel = msg.get("Channel") or ""
                live.state = Outcome.ANSWERED
                self.by_spy_channel[live.spy_channel] = live
                await _update(live.session_id, outcome=Outcome.ANSWERED, answered_at=timezone.now(),
                              spy_channel=live.spy_channel[:200])
                if live.stop_requested:
                    await self._hangup(live)
                    return
                await self._status(live.user_id, "answered", "ok",
                                   _("Your phone answered; joining %(name)s's call…") % {"name": live.target_name}, live)
                await self._replay_after(live, msg)
            else:
                why = originate_reason(msg.get("Reason"))
                await self._finish(live, Outcome.FAILED, _("Your phone did not connect: %(why)s.") % {"why": why})
        elif event == "ChanSpyStart":
            if live.state == Outcome.SPYING:
                return
            live.state = Outcome.SPYING
            await _update(live.session_id, outcome=Outcome.SPYING, spying_started_at=timezone.now())
            await self._status(live.user_id, "spying", "ok", doing(live.mode, live.target_name), live)
            await self._notify_monitored(live, active=True)
        elif event in ("ChanSpyStop", "Hangup"):
            if event == "ChanSpyStop" and not live.stop_requested:
                # Without option E the spy leg stays up in silence once the spied call is gone.
                self._spawn(self._hangup(live, quiet=True))
            await self._finish(live, Outcome.ENDED, _("Stopped monitoring %(name)s.") % {"name": live.target_name})

    def on_link(self, link=None):
        state = getattr(link, "state", None) or self.bridge.client.link.state
        if state != "up":
            self._recent.clear()  # channel names start again after an Asterisk restart
        if state == "up" or not self.by_user:
            return None
        sessions = [live for live in self.by_user.values() if live.session_id is not None]
        for live in list(self.by_user.values()):
            self._release(live)
        return self._interrupted(sessions, state)

    async def _interrupted(self, sessions, state):
        for live in sessions:
            with speaking(live.language):  # each row and message in its own presser's language
                reason = _("The PBX link was lost (%(state)s).") % {"state": state}
                await _interrupt([live.session_id], reason)
                live.state = Outcome.INTERRUPTED
                await self._status(live.user_id, "interrupted", "link_down", reason, live)
            if live.spy_channel:
                await self._notify_monitored(live, active=False)

    # --- ending -----------------------------------------------------------------------------------

    async def _stop(self, live):
        """Hang up the spy leg; a phone not answered yet is hung up as soon as it answers (the
        Hangup event then ends the row)."""
        live.stop_requested = True
        if live.spy_channel:
            await self._hangup(live)
        else:
            await self._status(live.user_id, "stopping", "ok", _("Stopping…"), live)

    async def _hangup(self, live, *, quiet=False):
        try:
            await self.bridge.client.send("Hangup", actions.hangup_action(live.spy_channel))
        except (ActionError, ActionTimeout, ConnectionLost, NotConnected, actions.UnsafeValue) as exc:
            # "No such channel": it is gone already; the row ends all the same.
            if not quiet:
                logger.info("hangup of spy channel %s: %s", live.spy_channel, exc)
            if live.state not in (Outcome.ENDED, Outcome.FAILED, Outcome.INTERRUPTED):
                await self._finish(live, Outcome.ENDED, _("Stopped monitoring %(name)s.") % {"name": live.target_name})

    async def _finish(self, live, outcome, why, *, reason=None):
        was_spying = live.state == Outcome.SPYING
        if live.state in (Outcome.ENDED, Outcome.FAILED, Outcome.INTERRUPTED, Outcome.DENIED):
            return
        live.state = outcome
        self._release(live)
        fields = {"outcome": outcome, "outcome_detail": str(why)[:255], "ended_at": timezone.now()}
        if reason:
            fields["reason"] = reason
        await _update(live.session_id, **fields)
        await self._status(live.user_id, outcome, reason or "ok", why, live)
        if was_spying:
            await self._notify_monitored(live, active=False)

    def _spawn(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release(self, live):
        if self.by_user.get(live.user_id) is live:
            del self.by_user[live.user_id]
        if live.action_id and self.by_action.get(live.action_id) is live:
            del self.by_action[live.action_id]
        if live.spy_channel and self.by_spy_channel.get(live.spy_channel) is live:
            del self.by_spy_channel[live.spy_channel]

    # --- refusals and rate limit ------------------------------------------------------------------

    def _press_allowed(self, user_id):
        now = self.clock()
        window = self.presses[user_id]
        while window and now - window[0] > PRESS_WINDOW:
            window.popleft()
        window.append(now)
        return len(window) <= PRESS_LIMIT

    async def _refuse_press(self, request, target_id, mode, reason, text):
        user, target = await _people(request.user_id, target_id)
        await _write(**_row(user, target, None, mode, request.client, reason=reason, outcome=Outcome.DENIED,
                            outcome_detail=text, ended_at=timezone.now()))
        await self._status(request.user_id, "denied", reason, text, mode=mode, target=target_id)

    async def _refuse_busy(self, request, target_id, mode, current):
        if current.target_name:
            text = _("You are already monitoring %(name)s (%(mode)s): stop first or switch mode.") % {
                "name": current.target_name, "mode": _(current.mode)}
        else:
            text = _("Your previous press is still being handled.")
        user, target = await _people(request.user_id, target_id)
        await _write(**_row(user, target, None, mode, request.client, reason="already_monitoring",
                            outcome=Outcome.DENIED, outcome_detail=text, ended_at=timezone.now()))
        await self._status(request.user_id, "denied", "already_monitoring", text, mode=mode, target=target_id)

    # --- messages ---------------------------------------------------------------------------------

    async def _status(self, user_id, state, reason, text, live=None, *, mode=None, target=None):
        message = {
            "type": "spy.status",
            "state": str(state),
            "reason": reason,
            "text": str(text),
            "session": live.session_id if live else None,
            "target": live.target_id if live else target,
            "mode": mode or (live.mode if live else None),
        }
        await self.bridge.notify_user(user_id, message)

    async def _notify_monitored(self, live, *, active):
        # Data, no words: the presser's language says nothing about the monitored person's, so each
        # of his pages words the notice itself from its own labels ("monitored" in
        # supervision.views.dashboard_labels), in the language it was served in.
        if not settings.NOTIFY_MONITORED or live.target_user_id is None:
            return
        await self.bridge.notify_user(
            live.target_user_id, {"type": "monitored", "by": live.user_name, "mode": live.mode, "active": active}
        )


def install(bridge):
    """Plug the spy commands into the bridge; rows left open by a previous run end `interrupted`."""
    monitor = SpyMonitor(bridge)
    bridge.register("spy", monitor.spy)
    bridge.register("spy.stop", monitor.stop)
    bridge.register("spy.switch", monitor.switch)
    bridge.add_event_listener(monitor.on_event)
    bridge.client.on_link(monitor.on_link)
    bridge.spy_monitor = monitor
    reason = _("The bridge restarted while this session was in flight.")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        MonitoringSession.objects.interrupt_open(reason)
    else:
        monitor.startup = loop.create_task(_interrupt_open(reason))
    return monitor
