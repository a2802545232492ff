"""Listen, whisper, barge: the bridge's spy commands and the life of each spy session.

A press travels: browser -> consumer -> bridge -> here. Every press is decided again by the policy
against the database as it is now, and written to the audit trail (MonitoringSession) BEFORE any
action goes to the PBX; refused presses are written too, and send nothing.

A session then follows the PBX's events:
    requested --Response: Success--> queued --OriginateResponse 4--> answered
              --ChanSpyStart (SpyerChannel = the answered channel)--> spying
              --ChanSpyStop / Hangup of the spy leg--> ended
and ends `failed` (Originate refused, phone busy / no answer, the spy leg ended before ChanSpyStart)
or `interrupted` (PBX link lost, bridge restarted with the spy leg gone). A user has at most one
live session, and presses are rate limited.

Every spy carries ChanSpy's `E` (supervision.actions), so the PBX ends the spy leg when the spied
call ends, whether or not the AMI user may send Hangup. A Stop the PBX refuses (`Permission
denied` for a `write=originate` user) is a failure told in words; the session stays live. Only a
Stop press makes the session end as "stopped".

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
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from supervision import actions, policy, presses
from supervision.ami.pending import ActionError, ActionTimeout, ConnectionLost, NotConnected
from supervision.bridge import speaking
from accounts.models import Extension
from supervision.models import Kind, MonitoringSession, Outcome
from supervision.presses import DONE, on_db_thread, update_row
from supervision.reasons import Why, row_fields

logger = logging.getLogger(__name__)

PRESS_LIMIT = 5  # presses (spy + spy.switch) per user...
PRESS_WINDOW = 10.0  # ...within this many seconds

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
    spy_uniqueid: str = ""  # with the name, it tells this leg from a later one of the same name
    options: str = ""  # ChanSpy's options as sent (`qxE`...): what a failure is likely caused by
    state: str = Outcome.REQUESTED
    stop_requested: bool = False
    # The language of the page that pressed (last): the texts the PBX's later events bring speak it.
    language: str | None = None
    legs: object = None  # presses.LegWatch of its Originate: why the phone did not connect


# --- database reads (run in presses.settle's database step) --------------------------------------


def _read_press(user_id, target_id, mode, session_key=None):
    """The policy's answer plus what the Originate needs, read fresh from the database in one
    query (the user, the phone and its owner, his own phone, the permissions serving the press's
    mode and the keypad-switch check, the login session the press came with)."""
    read = policy.read_press(user_id, (mode, *policy.MODES), target_id, own_phone=policy.FIRST_PHONE,
                             session_key=session_key)
    decision = read.decisions[mode]
    allow_switch = bool(decision) and all(read.decisions[each] for each in policy.MODES)
    return decision, read.user, read.target, read.own_phone, allow_switch


def _read_people(user_id, target_id, session_key=None):
    """Whom a press refused before the policy was asked was about (one query; a press from an
    ended session is told so: its socket closes)."""
    read = policy.read_press(user_id, (), target_id, session_key=session_key)
    return (read.user, read.target), read.session_ended


def _read_switch(user_id, target_id, mode):
    """The policy's answer for a keypad switch to `mode` (None for an unknown one: refused)."""
    user, target, decisions = policy.decide_each(user_id, (mode,), target_id)
    return decisions[mode], user, target


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


def _judge_press(mode, client, facts, seen):
    """A spy press decided (pure): refused with the first reason that holds, or the Originate."""
    decision, user, target, spyer, allow_switch = facts

    def refuse(reason, text):
        return presses.refused(_row(user, target, spyer, mode, client), reason, text)

    # An unknown mode is read as None, which the policy refuses as unknown_action.
    link, channel, busy_leg = seen
    cannot = presses.cannot_ring(decision, spyer, link, Why("no_phone_listen"))
    if cannot:
        return refuse(*cannot)
    name = str(target.user)
    if (channel is None or channel.get("state") != "up") and busy_leg is not None:
        # What is heard decides, not who is named: that phone's leg hears someone else's call.
        return refuse("not_a_conversation", Why("not_a_conversation", name=name))
    if channel is None or channel.get("state") != "up":
        return refuse("no_call", Why("no_call", name=name))
    try:
        fields = actions.spy_originate(spyer, channel["name"], mode, allow_switch=allow_switch, action_id=None)
    except actions.UnsafeValue as exc:
        logger.warning("refusing to spy on %r: %s", channel.get("name"), exc)
        return refuse("unsafe_channel", Why("cannot_join", name=name))
    row = _row(user, target, spyer, mode, client, target_channel=channel["name"],
               target_uniqueid=(channel.get("uniqueid") or "")[:64], allow_switch=allow_switch)
    options = dict(fields)["Data"].rsplit(",", 1)[1]
    return presses.accepted(row, decision.reason, fields, user_name=str(user), target_name=name,
                            target_user_id=target.user_id, target_channel=channel["name"],
                            allow_switch=allow_switch, options=options)


class SpyMonitor(presses.EventFollower):
    EVENTS = frozenset({"OriginateResponse", "ChanSpyStart", "ChanSpyStop", "Hangup"})

    def __init__(self, bridge, *, clock=time.monotonic):
        super().__init__()
        self.bridge = bridge
        self.clock = clock
        self.by_user = {}  # user id -> LiveSession (one live session per user)
        self.by_action = {}  # ActionID -> LiveSession, from `Response: Success` to OriginateResponse
        self.by_spy_channel = {}  # spy leg's channel name -> LiveSession
        self.window = presses.PressWindow(clock)
        self.left_open = []  # spy rows a previous run left live: taken back or ended at the first login
        # user id -> a session whose spy leg was up when the PBX link went: its fate waits for the
        # next login's CoreShowChannels (the PBX may have kept the call, or restarted without it)
        self.held = {}
        self.startup = None  # the read of those rows (a task in the loop), awaited before the first login's look
        # `await fn(live)` after a keypad switch of a spying session: the board sees that one only
        # with the AMI `dtmf` read class (DTMFEnd), so who needs it hears it from here.
        self.switch_listeners = []

    # --- entry points -----------------------------------------------------------------------------

    async def spy(self, bridge, request):
        command = request.command
        mode = command.get("mode")
        target_id = _target_id(command.get("target"))
        if not self._press_allowed(request.user_id):
            await self._refuse_press(request, target_id, mode, presses.RATE_LIMITED, presses.rate_limited_text())
            return
        await self._start(request, target_id, mode)

    async def stop(self, bridge, request):
        live = self.by_user.get(request.user_id)
        wanted = request.command.get("session")
        if live is None and await self._refuse_while_held(request.user_id):
            return
        if live is None or (wanted is not None and wanted != live.session_id):
            await self._status(request.user_id, "idle", "no_session", _("You are not monitoring anyone."))
            return
        await self._stop(live)

    async def switch(self, bridge, request):
        mode = request.command.get("mode")
        live = self.by_user.get(request.user_id)
        if not self._press_allowed(request.user_id):
            await self._refuse_press(
                request, live.target_id if live else None, mode, presses.RATE_LIMITED, presses.rate_limited_text()
            )
            return
        if live is None and await self._refuse_while_held(request.user_id):
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

        def judge(facts, _seen):
            decision, user, target = facts
            if decision:
                return None  # allowed: the session's own row follows the switch
            return presses.refused(_row(user, target, None, mode, request.client), decision.reason, decision.message)

        refusal = await presses.settle(
            partial(_read_switch, request.user_id, live.target_id, mode if mode in policy.MODES else None), judge)
        if refusal is not None:
            await self._status(request.user_id, "denied", refusal.reason, refusal.text, live, mode=mode)
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
            await update_row(live.session_id, mode=mode, modes=",".join(live.modes))
            await self._status(request.user_id, live.state, "switched", doing(mode, live.target_name), live)
            if live.state == Outcome.SPYING:
                await self._notify_monitored(live, active=True)
                await self._tell_switched(live)
            return
        # Without ChanSpy's `d` the mode cannot change in place: end this session, start another
        # (not while the PBX keeps the first one: the user would be left with two).
        live.stop_requested = True
        if not await self._hangup(live):
            return
        await self._finish(live, Outcome.ENDED, Why("switched", mode=mode))
        await self._start(request, live.target_id, mode)

    async def _tell_switched(self, live):
        for listener in self.switch_listeners:
            try:
                await listener(live)
            except Exception:  # noqa: BLE001 - a listener's bug must not fail the switch
                logger.exception("%s: switch listener %r failed", self.bridge.name, listener)

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
        mode = live.mode
        verdict = await presses.settle(
            partial(_read_press, request.user_id, live.target_id, mode if mode in policy.MODES else None,
                    presses.session_key(request)),
            partial(_judge_press, mode, request.client), self._look_at_target, request=request)
        if not verdict.allowed:
            self._release(live)
            return await self._status(live.user_id, "denied", verdict.reason, verdict.text, live)
        for name, value in verdict.found.items():
            setattr(live, name, value)
        live.modes, live.session_id = [mode], verdict.session_id
        if live.stop_requested:
            return await self._finish(live, Outcome.ENDED, Why("stopped_before_ringing"))
        live.legs = self.watch_legs(Kind.SPY, verdict.row["from_extension"])
        response, failure = await presses.send_originate(self.bridge.client, verdict.fields)
        if failure is not None:
            outcome, why, reason = failure
            return await self._finish(live, outcome, why, reason=reason)
        live.action_id = response.action_id or ""
        live.state = Outcome.QUEUED
        self.by_action[live.action_id] = live
        await update_row(live.session_id, outcome=Outcome.QUEUED, action_id=live.action_id)
        await self._status(live.user_id, "queued", "ok", _("Calling your phone…"), live)
        async with self._lock:
            for msg in list(self._recent):
                if msg.event == "OriginateResponse" and msg.action_id == live.action_id:
                    await self._handle(msg)

    def _look_at_target(self, facts):
        """In the loop: the PBX link, the target phone's conversation as the board has it now (never
        a leg of a ChanSpy, PickupChan or Playback: docs/architecture.md), and, when it has none, an
        Up channel of that phone that is such a leg (to say why there is nothing to join)."""
        target = facts[2]
        if target is None:
            return presses.link_of(self.bridge.client), None, None
        board = self.bridge.board
        channel = board.conversation_of(target.device)
        busy_leg = None
        if channel is None or channel.get("state") != "up":
            busy_leg = next((c for c in board.channels_of(target.device) if c["state"] == "up"), None)
        return presses.link_of(self.bridge.client), channel, busy_leg

    async def _replay_after(self, live, origin):
        """Handle the spy leg's events that came before we knew the leg's name: the
        OriginateResponse can share a TCP read with the Originate's Response, ChanSpyStart can
        follow before our bookkeeping caught up, and a leg the PBX ends at once may send its
        Hangup before the OriginateResponse. Events are this leg's by name AND uniqueid (names
        come again after a PBX restart). Handling is idempotent, so an event seen both here and
        live counts once."""
        for msg in list(self._recent):
            if live.state in DONE:
                return
            if msg is not origin and msg.event != "OriginateResponse" and _about_leg(live, msg):
                await self._handle(msg)

    # --- PBX events -------------------------------------------------------------------------------

    def _in_flight(self):
        return self.by_action or self.by_spy_channel

    def _press_of(self, msg):
        """The live session an event is about, if any (looked up, not taken out)."""
        if msg.event == "OriginateResponse":
            return self.by_action.get(msg.action_id or "")
        key = msg.get("Channel") if msg.event == "Hangup" else msg.get("SpyerChannel")
        live = self.by_spy_channel.get(key or "")
        return live if live is not None and _about_leg(live, msg) else None

    async def _handle_press_event(self, live, msg):
        event = msg.event
        if event == "OriginateResponse":
            self.by_action.pop(msg.action_id or "", None)
            if (msg.get("Response") or "").lower() == "success":
                live.spy_channel = msg.get("Channel") or ""
                live.spy_uniqueid = msg.get("Uniqueid") or ""
                live.state = Outcome.ANSWERED
                self.by_spy_channel[live.spy_channel] = live
                await update_row(live.session_id, outcome=Outcome.ANSWERED, answered_at=timezone.now(),
                                 spy_channel=live.spy_channel[:200], spy_uniqueid=live.spy_uniqueid[:64])
                if live.stop_requested:
                    await self._hangup(live)
                    return
                await self._status(live.user_id, "answered", "ok",
                                   _("Your phone answered; joining %(name)s's call…") % {"name": live.target_name}, live)
                await self._replay_after(live, msg)
            else:
                why = presses.failure_words(live.legs, msg.get("Reason"))
                await self._finish(live, Outcome.FAILED, Why("phone_not_connected", why=why))
        elif event == "ChanSpyStart":
            if live.state == Outcome.SPYING:
                return
            live.state = Outcome.SPYING
            await update_row(live.session_id, outcome=Outcome.SPYING, spying_started_at=timezone.now())
            await self._status(live.user_id, "spying", "ok", doing(live.mode, live.target_name), live)
            await self._notify_monitored(live, active=True)
        elif event == "ChanSpyStop":
            # The spied call is gone (the exact channel name cannot match another); with `E` the
            # PBX hangs the spy leg up right after.
            await self._finish(live, Outcome.ENDED, _stopped(live) if live.stop_requested else
                               Why("call_ended", name=live.target_name))
        elif event == "Hangup":
            if live.stop_requested:
                await self._finish(live, Outcome.ENDED, _stopped(live))
            elif live.state == Outcome.SPYING:
                await self._finish(live, Outcome.ENDED, Why("phone_hung_up", name=live.target_name))
            else:
                # Answered, then ended by the PBX before ChanSpyStart: AMI does not say why
                # (`asterisk20-whisper-no-beep`: the reason is only in the Asterisk log).
                await self._finish(live, Outcome.FAILED, _no_spy_text(live), reason="spy_not_started")

    def _link_lost(self, state):
        if not self.by_user:
            return None
        sessions = [live for live in self.by_user.values() if live.session_id is not None]
        for live in list(self.by_user.values()):
            self._release(live)
        if self.bridge.stopping:
            # The bridge is being stopped (a restart): the spies go on at the PBX, and the next
            # run takes their rows back from its first CoreShowChannels, or ends them.
            logger.info("%s: stopping with %d spy session(s) in flight; the next start takes them back or ends them",
                        self.bridge.name, len(sessions))
            return None
        # A spy leg that was up may outlive the link (a network cut, not a PBX restart): no verdict
        # until the next login's CoreShowChannels shows whether the PBX still runs it.
        held = [live for live in sessions
                if live.spy_channel and live.spy_uniqueid and live.state in (Outcome.ANSWERED, Outcome.SPYING)]
        for live in held:
            self.held[live.user_id] = live
        return self._link_went([live for live in sessions if live not in held], held, state)

    async def _link_went(self, lost, held, state):
        await self._interrupted(lost, state)
        for live in held:
            with speaking(live.language):
                await self._status(live.user_id, live.state, "link_down", _held_text(live, state), live)

    async def _interrupted(self, sessions, state):
        for live in sessions:
            with speaking(live.language):  # each row and message in its own presser's language
                reason = Why("link_lost", state=state)
                await presses.interrupt_rows([live.session_id], reason)
                live.state = Outcome.INTERRUPTED
                await self._status(live.user_id, "interrupted", "link_down", reason, live)
            if live.spy_channel:
                await self._notify_monitored(live, active=False)

    # --- ending -----------------------------------------------------------------------------------

    async def _stop(self, live):
        """Hang up the spy leg; a phone not answered yet is hung up as soon as it answers (the
        Hangup event then ends the row)."""
        live.stop_requested = True
        if live.spy_channel and not await self._hangup(live):
            return
        # Until the spy leg's Hangup event: at once with transmit_silence=yes; without it, on a
        # silent call, not before the spied call ends (the page then shows it stopping).
        if live.state not in DONE:
            await self._status(live.user_id, "stopping", "ok", _("Stopping…"), live)

    async def _hangup(self, live):
        """Ask the PBX to end the spy leg. False when it would not: the session goes on, and the
        user is told why and what he can do. On the PJSIP route the leg is the Local `;1`
        channel; ending it ends the call on the phone too."""
        try:
            await self.bridge.client.send("Hangup", actions.hangup_action(live.spy_channel))
        except ActionError as exc:
            if not _no_such_channel(exc.message):
                await self._stop_refused(live, exc.message)
                return False
            # Gone already (its Hangup event may have come before we knew the leg): it ended.
            if live.state not in DONE:
                await self._finish(live, Outcome.ENDED, _stopped(live))
        except ActionTimeout:
            await self._stop_refused(live, Why("no_answer_in_time"))
            return False
        except (ConnectionLost, NotConnected):
            return False  # the link is going: its loss says what becomes of the session
        except actions.UnsafeValue as exc:
            await self._stop_refused(live, str(exc))
            return False
        return True

    async def _stop_refused(self, live, why):
        """The Stop did not take: the spy goes on, so nothing says it stopped (not the row, not
        the monitored person), and the user learns what he can do instead."""
        live.stop_requested = False
        logger.warning("%s: Hangup of spy leg %s (session %s) refused: %s; the spy goes on",
                       self.bridge.name, live.spy_channel, live.session_id, why)
        text = Why("stop_refused", why=why, name=live.target_name)
        await update_row(live.session_id, **row_fields(text))
        await self._status(live.user_id, live.state, "stop_refused", text, live)

    async def _finish(self, live, outcome, why, *, reason=None):
        was_spying = live.state == Outcome.SPYING
        if live.state in DONE:
            return
        live.state = outcome
        self._release(live)
        fields = {"outcome": outcome, "ended_at": timezone.now(), **row_fields(why)}
        if reason:
            fields["reason"] = reason
        await update_row(live.session_id, **fields)
        await self._status(live.user_id, outcome, reason or "ok", why, live)
        if was_spying:
            await self._notify_monitored(live, active=False)

    def _release(self, live):
        self.unwatch(live.legs)
        if self.by_user.get(live.user_id) is live:
            del self.by_user[live.user_id]
        if live.action_id and self.by_action.get(live.action_id) is live:
            del self.by_action[live.action_id]
        if live.spy_channel and self.by_spy_channel.get(live.spy_channel) is live:
            del self.by_spy_channel[live.spy_channel]

    # --- after a login: spy legs of an earlier run -------------------------------------------------

    async def read_left_open(self, reason):
        self.left_open = await on_db_thread(_left_open)(reason)

    async def on_resync(self, items):
        """After a login's CoreShowChannels (`items`; None when the PBX refused it). The first one
        after start decides the spy rows a previous run left live: a ChanSpy channel whose name
        AND uniqueid match a row's spy leg is taken back under that session (Stop works again;
        names alone could be another call after a PBX restart); a row without its leg ends
        `interrupted`. At every login, a spy leg of ours (`Spy-<ext>` on a roster phone, as
        supervision.actions starts them) that no session owns is hung up: nobody could stop it."""
        if self.startup is not None:
            await self.startup
            self.startup = None
        left_open, self.left_open = self.left_open, []
        held, self.held = list(self.held.values()), {}
        if items is None:
            for live in held:
                await self._end_held(live, leg_gone=False)
            if left_open:
                detail = self.bridge.resync_detail or "-"
                logger.warning("%s: the PBX would not list its channels (%s): %d spy session(s) of the previous "
                               "run end interrupted, their spy calls may go on", self.bridge.name, detail, len(left_open))
                await self._end_left_open(left_open, Why("bridge_restarted_unlisted", detail=detail), leg_gone=False)
            return
        legs = {(item.get("Channel"), item.get("Uniqueid")): item for item in items
                if (item.get("Application") or "").lower() == "chanspy"}
        for live in held:
            # (A user who started another session meanwhile keeps that one; the old leg is then
            # an orphan, hung up below.)
            if (live.spy_channel, live.spy_uniqueid) in legs and live.user_id not in self.by_user:
                await self._resume(live)
            else:
                await self._end_held(live, leg_gone=True)
        gone = []
        for row in left_open:
            item = legs.get((row.spy_channel, row.spy_uniqueid)) if row.spy_channel and row.spy_uniqueid else None
            if item is None or row.user_id is None or row.user_id in self.by_user:
                gone.append(row)
            else:
                await self._take_back(row, item)
        if gone:
            await self._end_left_open(gone, Why("bridge_restarted"), leg_gone=True)
        orphans = [item for key, item in legs.items()
                   if key[0] not in self.by_spy_channel and (item.get("CallerIDName") or "").startswith("Spy-")]
        if orphans:
            phones = await _roster_dial_strings()
            for item in orphans:
                if item["Channel"].rsplit("-", 1)[0] in phones:
                    await self._hang_up_orphan(item)

    async def _end_left_open(self, rows, reason, *, leg_gone):
        """Rows of the previous run that cannot be taken back end `interrupted`, and their users'
        open pages are told; the monitored person only when the spy leg is known to be gone."""
        await presses.interrupt_rows([row.pk for row in rows], reason)
        for row in rows:
            if row.user_id is None:
                continue
            live = _live_from_row(row)
            live.state = Outcome.INTERRUPTED
            await self._status(row.user_id, Outcome.INTERRUPTED, "bridge_restarted", reason, live)
            if leg_gone and row.outcome == Outcome.SPYING:
                await self._notify_monitored(live, active=False)

    async def _take_back(self, row, item):
        await self._resume(_live_from_row(row, options=(item.get("ApplicationData") or "").rpartition(",")[2]))

    async def _resume(self, live):
        """The PBX still runs this session's spy leg: follow it again (Stop and Switch work)."""
        self.by_user[live.user_id] = live
        self.by_spy_channel[live.spy_channel] = live
        logger.info("%s: took back spy session %s (%s, %s on %s)",
                    self.bridge.name, live.session_id, live.spy_channel, live.mode, live.target_channel)
        with speaking(live.language):
            await self._status(live.user_id, live.state, "taken_back", self._live_text(live), live)

    async def _end_held(self, live, *, leg_gone):
        """A session held over a lost link that the PBX's listing does not bring back."""
        was_spying = live.state == Outcome.SPYING
        with speaking(live.language):
            if leg_gone:
                reason = Why("link_lost_leg_gone")
            else:
                reason = Why("link_lost_unlisted", detail=self.bridge.resync_detail or "-")
            await presses.interrupt_rows([live.session_id], reason)
            live.state = Outcome.INTERRUPTED
            await self._status(live.user_id, Outcome.INTERRUPTED, "link_down", reason, live)
        if leg_gone and was_spying:
            await self._notify_monitored(live, active=False)

    async def _refuse_while_held(self, user_id):
        """Stop or Switch while the link is down and the spy may go on: say what the user can do."""
        live = self.held.get(user_id)
        if live is None:
            return False
        await self._status(user_id, live.state, "pbx_down",
                           _("The PBX link is down, so the dashboard cannot end or change the call: hang up your "
                             "phone to stop."), live)
        return True

    async def _hang_up_orphan(self, item):
        name = item["Channel"]
        try:
            await self.bridge.client.send("Hangup", actions.hangup_action(name))
        except (ActionError, ActionTimeout, ConnectionLost, NotConnected, actions.UnsafeValue) as exc:
            logger.warning("%s: spy leg %s (uniqueid %s, ChanSpy %s) has no session and could not be hung up: %s",
                           self.bridge.name, name, item.get("Uniqueid"), item.get("ApplicationData"), exc)
            return
        logger.warning("%s: hung up spy leg %s (uniqueid %s, ChanSpy %s): no session of this bridge owns it",
                       self.bridge.name, name, item.get("Uniqueid"), item.get("ApplicationData"))

    # --- a page that connects: the user's live session ---------------------------------------------

    def sessions_of(self, user_id):
        """The `spy.status` of `user_id`'s live session (his new page shows Stop and Switch), and
        the `monitored` notice of a session spying on him (called in the loop, words in the page's
        language)."""
        messages = []
        live = self.by_user.get(user_id)
        held = self.held.get(user_id)
        if live is not None and live.session_id is not None and live.state not in DONE:
            state = "stopping" if live.stop_requested else live.state
            messages.append(self._status_message(state, "live", self._live_text(live), live))
        elif held is not None:
            link = self.bridge.client.link.state
            messages.append(self._status_message(held.state, "link_down", _held_text(held, link), held))
        if settings.NOTIFY_MONITORED:
            for other in self.by_user.values():
                if other.target_user_id == user_id and other.state == Outcome.SPYING:
                    messages.append(self._monitored_message(other, active=True))
        return messages

    def _live_text(self, live):
        if live.stop_requested:
            return _("Stopping…")
        if live.state == Outcome.SPYING:
            return doing(live.mode, live.target_name)
        if live.state == Outcome.ANSWERED:
            return _("Your phone answered; joining %(name)s's call…") % {"name": live.target_name}
        return _("Calling your phone…")

    # --- refusals and rate limit ------------------------------------------------------------------

    def _press_allowed(self, user_id):
        return self.window.allow(user_id, PRESS_LIMIT, PRESS_WINDOW)

    async def _refuse_press(self, request, target_id, mode, reason, text):
        """Refused before the policy is asked: the row names whom it was about all the same."""
        def judge(facts, _seen):
            people, session_ended = facts
            if session_ended:
                return presses.refused(_row(*people, None, mode, request.client), policy.SESSION_ENDED,
                                       Why("account_inactive"))
            return presses.refused(_row(*people, None, mode, request.client), reason, text)

        verdict = await presses.settle(partial(_read_people, request.user_id, target_id, presses.session_key(request)),
                                       judge, request=request)
        reason, text = verdict.reason, verdict.text
        await self._status(request.user_id, "denied", reason, text, mode=mode, target=target_id)

    async def _refuse_busy(self, request, target_id, mode, current):
        if current.target_name:
            text = Why("already_monitoring", name=current.target_name, mode=current.mode)
        else:
            text = Why("previous_press")
        await self._refuse_press(request, target_id, mode, "already_monitoring", text)

    # --- messages ---------------------------------------------------------------------------------

    async def _status(self, user_id, state, reason, text, live=None, *, mode=None, target=None):
        await self.bridge.notify_user(user_id, self._status_message(state, reason, text, live, mode=mode, target=target))

    @staticmethod
    def _status_message(state, reason, text, live=None, *, mode=None, target=None):
        return {
            "type": "spy.status",
            "state": str(state),
            "reason": reason,
            "text": str(text),
            "session": live.session_id if live else None,
            "target": live.target_id if live else target,
            "mode": mode or (live.mode if live else None),
        }

    async def _notify_monitored(self, live, *, active):
        # Data, no words: the presser's language says nothing about the monitored person's, so each
        # of his pages words the notice itself from its own labels ("monitored" in
        # supervision.views.dashboard_labels), in the language it was served in.
        if not settings.NOTIFY_MONITORED or live.target_user_id is None:
            return
        await self.bridge.notify_user(live.target_user_id, self._monitored_message(live, active=active))

    @staticmethod
    def _monitored_message(live, *, active):
        return {"type": "monitored", "by": live.user_name, "mode": live.mode, "active": active}


def _held_text(live, state):
    return _("The PBX link was lost (%(state)s). Your phone may still be connected to %(name)s's call: hang up "
             "your phone to stop. The session is taken back when the link returns.") % {
                 "state": state, "name": live.target_name}


def _live_from_row(row, *, options=""):
    """The session an audit row of a previous run describes (its texts in the site's language:
    the page's is not known any more)."""
    return LiveSession(
        user_id=row.user_id, user_name=row.user_label, session_id=row.pk, target_id=row.target_extension_id,
        target_user_id=row.target_user_id, target_name=row.target_label, target_channel=row.target_channel,
        mode=row.mode, modes=[m for m in row.modes.split(",") if m] or [row.mode], allow_switch=row.allow_switch,
        action_id=row.action_id, spy_channel=row.spy_channel, spy_uniqueid=row.spy_uniqueid, options=options,
        state=Outcome.SPYING if row.outcome == Outcome.SPYING else Outcome.ANSWERED,
    )


def _stopped(live):
    return Why("stopped", name=live.target_name)


def _no_spy_text(live):
    """Why a spy leg ended before ChanSpyStart, as far as AMI lets anyone know."""
    if "q" not in live.options:
        return Why("spy_not_started_beep", name=live.target_name)
    return Why("spy_not_started", name=live.target_name)


def _no_such_channel(message):
    """The PBX's answer to a Hangup of a channel that is gone (it ended by itself)."""
    text = (message or "").lower()
    return "no such channel" in text or "channel not found" in text


def _about_leg(live, msg):
    """Is this ChanSpyStart/ChanSpyStop/Hangup about this session's spy leg?"""
    if msg.event == "Hangup":
        name, uniqueid = msg.get("Channel"), msg.get("Uniqueid")
    else:
        name, uniqueid = msg.get("SpyerChannel"), msg.get("SpyerUniqueid")
    if not live.spy_channel or name != live.spy_channel:
        return False
    return not (live.spy_uniqueid and uniqueid) or uniqueid == live.spy_uniqueid


def _left_open(reason):
    """At start: rows of other kinds a previous run left open end `interrupted` (their commands
    cannot be followed again); the spy rows are returned, for the first login to decide."""
    MonitoringSession.objects.live().exclude(kind=Kind.SPY).interrupt_open(reason)
    return list(MonitoringSession.objects.live().filter(kind=Kind.SPY).order_by("pk"))


@on_db_thread
def _roster_dial_strings():
    """How the PBX names the channels it rings for each roster phone (`SIP/104`,
    `Local/104@dashboard-phones`): a spy leg's name minus its suffix is one of these."""
    return {extension.dial_string for extension in Extension.objects.all()}


def install(bridge):
    """Plug the spy commands into the bridge. Rows left open by a previous run are read now and
    decided at the first login (`SpyMonitor.on_resync`)."""
    monitor = SpyMonitor(bridge)
    bridge.register("spy", monitor.spy)
    bridge.register("spy.stop", monitor.stop)
    bridge.register("spy.switch", monitor.switch)
    bridge.add_event_listener(monitor.on_event)
    bridge.add_resync_listener(monitor.on_resync)
    bridge.add_session_reporter(monitor.sessions_of)
    bridge.client.on_link(monitor.on_link)
    bridge.spy_monitor = monitor
    reason = Why("bridge_restarted")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        monitor.left_open = _left_open(reason)
    else:
        monitor.startup = loop.create_task(monitor.read_left_open(reason))
    return monitor
