"""The article's other Originate moves, from the web: answer a ringing call on one's own phone
(PickupChan), click-to-call (Context/Exten) and a training recording played to one's phone
(Playback). Same path as the spy commands: browser -> consumer -> bridge -> here; every press is
decided again by the policy, written to the audit trail (MonitoringSession, kind pickup / dial /
playback) before anything is sent, refused presses included, and the outcome reaches the user in
words.

Commands (browser JSON; ids and the typed number only, never channel names or paths):
    {"type": "pickup", "target": <extension id>}
    {"type": "dial", "number": "5551234", "from": <own extension id, optional>}
    {"type": "playback", "recording": "<recording id>", "from": <own extension id, optional>}
Messages to the user's pages (group supervision.user.<id>):
    {"type": "call.status", "kind": "pickup"|"dial"|"playback", "state": <outcome or "denied">,
     "reason": code, "text": ..., "session": id, "target": <extension id, pickup>,
     "number": ..., "recording": id}

How a pickup ends (ami-captures asterisk20-pickup-race-*, asterisk22-pjsip-pickupchan): PickupChan
answers the picker's own phone whether or not it takes the call (Reason 4 all the same), and its
OriginateResponse may come before or after the `Pickup` event and name either leg (the legs swap
identities), so the response tells nothing. What tells: a `Pickup` event for our ringing channel
(taken by our phone, or by someone else's), the ringing leg's `Hangup` (cause 26 "answered
elsewhere" while our phone is up and nobody else's Pickup came: ours, decided after PICKUP_SETTLE;
any other cause: the caller gave up), or our phone's leg hanging up before any of these (nothing
rang there any more: too late). With none of these within PICKUP_VERDICT after the phone answered,
the page says only what is known: the phone answered, the pickup is not confirmed.

The call is the phone's own leg (presses.LegWatch): on the PJSIP route the Local pair may be
optimised away while the phone's leg goes on (asterisk22-pjsip-click-to-call), so a dial, a playback
or a picked-up call ends when the last of its legs hangs up. Why a phone did not connect comes from
its own leg too (DialEnd, hang-up cause): PJSIP gives Reason 0 for a phone answering busy.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from supervision import actions, policy, presses
from supervision.board import device_of
from supervision.bridge import speaking
from supervision.models import Kind, Outcome
from supervision.presses import DONE, originate_reason, update_row
from supervision.reasons import Why, row_fields

logger = logging.getLogger(__name__)

PRESS_LIMIT = 5  # presses of these commands per user...
PRESS_WINDOW = 10.0  # ...within this many seconds
# A Pickup event follows the ringing leg's "answered elsewhere" within milliseconds on a real PBX
# (every run of asterisk20-pickup-race-*); give it this long before deciding from the hang-up alone.
PICKUP_SETTLE = 1.0
# After the picker's phone answered, how long to wait for any of the events that tell before saying
# that the pickup is not confirmed.
PICKUP_VERDICT = 5.0


def _answered_text(job):
    """Worded for the reader: his own ringing call is not "Dmitry Ivanov's call" to Dmitry."""
    if job.own_call:
        return _("You answered your ringing call on this phone.")
    return _("You answered %(name)s's call on your phone.") % {"name": job.target_name}


@dataclass(eq=False)  # each press is itself: kept in sets
class Job:
    """One press in flight (the audit row holds the rest)."""

    kind: str
    user_id: int
    session_id: int | None = None
    target_id: int | None = None  # pickup: the ringing phone's extension
    target_name: str = ""  # pickup: its owner; dial: the number; playback: the title
    own_call: bool = False  # pickup: the ringing phone is the user's own (texts say "your call")
    target_channel: str = ""  # pickup: the exact ringing channel
    recording_id: int | None = None
    action_id: str = ""
    own_channel: str = ""  # the user's leg the PBX named first
    state: str = Outcome.REQUESTED
    answered: bool = False  # the user's phone answered (OriginateResponse Success)
    picked: bool = False  # pickup: the PBX said our phone took the call
    answered_elsewhere: bool = False  # pickup: the ringing leg hung up with cause 26
    legs: object = None  # presses.LegWatch: the legs this press makes on the user's phone
    timer: object = None  # a pending verdict step (asyncio.TimerHandle)
    language: str | None = None  # of the page that pressed: the PBX's later events are told in it


# --- database reads (run in presses.settle's database step) --------------------------------------


def _read_pickup(user_id, target_id, session_key=None):
    """One query: the user, the ringing phone and its owner, his own phone, the permission, the
    login session the press came with."""
    read = policy.read_press(user_id, ("pickup",), target_id, own_phone=policy.FIRST_PHONE, session_key=session_key)
    return read.decisions["pickup"], read.user, read.target, read.own_phone


def _read_own_phone(user_id, action, from_id, session_key=None):
    """For dial and playback: the user's phone (the one the page named if it is his, else his
    first), and may he ring it with this action? One query, the login session included."""
    read = policy.read_press(user_id, (action,), None, own_phone=policy.FIRST_PHONE if from_id is None else from_id,
                             session_key=session_key)
    phone = read.own_phone
    decision = policy.decide_read(read, action, phone) if phone is not None or read.session_ended else None
    return decision, read.user, phone


def _read_playback(user_id, recording_id, from_id, session_key=None):
    """The phone to play to and its decision, and the recording and whether it is shared: one
    query, the login session included."""
    read = policy.read_press(user_id, ("playback",), None, own_phone=policy.FIRST_PHONE if from_id is None else from_id,
                             session_key=session_key, recording=recording_id)
    phone, recording = read.own_phone, read.recording
    decision = policy.decide_read(read, "playback", phone) if phone is not None or read.session_ended else None
    shared = policy.decide_read(read, "playback", recording) if recording is not None else None
    return decision, read.user, phone, shared, recording


def _row(kind, user, phone, client, *, target=None, label="", **extra):
    """The audit row of a press (any of user / phone / target may be missing)."""
    return {
        "kind": kind,
        "user": user,
        "user_label": str(user) if user is not None else "",
        "from_extension": phone,
        "from_device": phone.device if phone is not None else "",
        "target_user": target.user if target is not None else None,
        "target_label": (str(target.user) if target is not None else label)[:160],
        "target_extension": target,
        "target_device": target.device if target is not None else "",
        "client_address": (client or "")[:64],
        **extra,
    }


def _positive_id(value):
    """An id from the browser: a positive int, or a string of digits (nothing else is looked up)."""
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


class CallControl(presses.EventFollower):
    EVENTS = frozenset({"OriginateResponse", "Pickup", "Hangup"})

    def __init__(self, bridge, *, clock=time.monotonic):
        super().__init__()
        self.bridge = bridge
        self.clock = clock
        self.pending_by_user = {}  # user id -> Job not yet answered (one press at a time)
        self.by_action = {}  # ActionID -> Job, until its OriginateResponse
        self.by_target = {}  # ringing channel -> {pickup Jobs}: several users may press on one call
        self.following = set()  # Jobs whose phone answered, followed until the last of their legs hangs up
        self.window = presses.PressWindow(clock)
        self._tasks = set()

    # --- pickup ---------------------------------------------------------------------------------

    async def pickup(self, bridge, request):
        target_id = _positive_id(request.command.get("target"))
        job = Job(Kind.PICKUP, request.user_id, target_id=target_id, language=request.language)

        def look(facts):
            target = facts[2]
            ringing = self._ringing_channel(target.device) if target is not None else None
            return presses.link_of(self.bridge.client), ringing

        def judge(early, facts, seen):
            decision, user, target, phone = facts

            def refuse(reason, text, ringing=""):
                row = _row(Kind.PICKUP, user, phone, request.client, target=target, target_channel=ringing)
                return presses.refused(row, reason, text)

            if early:
                return refuse(*early)
            link, ringing = seen
            cannot = presses.cannot_ring(decision, phone, link, Why("no_phone_answer"))
            if cannot:
                return refuse(*cannot)
            name = str(target.user)
            if ringing is None:
                return refuse("not_ringing", Why("not_ringing", name=name))
            try:
                fields = actions.pickup_originate(phone, ringing["name"])
            except actions.UnsafeValue as exc:
                logger.warning("refusing to pick up %r: %s", ringing["name"], exc)
                return refuse("unsafe_channel", Why("cannot_pick_up", name=name), ringing["name"])
            row = _row(Kind.PICKUP, user, phone, request.client, target=target, target_channel=ringing["name"],
                       target_uniqueid=(ringing.get("uniqueid") or "")[:64])
            job.own_call = target.user_id == user.pk
            return presses.accepted(row, decision.reason, fields, target_name=name, target_channel=ringing["name"])

        read = partial(_read_pickup, request.user_id, target_id, presses.session_key(request))
        await self._press(request, job, read, judge, look,
                          lambda: _("Calling your phone to answer your ringing call…") if job.own_call
                          else _("Calling your phone to answer %(name)s's call…") % {"name": job.target_name})

    def _ringing_channel(self, device):
        """The call ringing on that phone: never a leg of a spy, pickup or playback (the board's
        `leg`, or a leg the product's own press is ringing right now, before the PBX named its
        application): picking that up would hear what it hears."""
        own = presses.legs_in_flight(self.bridge, (Kind.SPY, Kind.PICKUP, Kind.PLAYBACK))
        ringing = [c for c in self.bridge.board.channels_of(device)
                   if c.get("state") == "ringing" and c.get("leg") is None and c["name"] not in own]
        return max(ringing, key=lambda c: c.get("created_at") or 0.0) if ringing else None

    # --- click-to-call --------------------------------------------------------------------------

    async def dial(self, bridge, request):
        number = request.command.get("number")
        job = Job(Kind.DIAL, request.user_id, target_name=number if isinstance(number, str) else "",
                  language=request.language)

        def judge(early, facts, link):
            decision, user, phone = facts

            def refuse(reason, text):
                return presses.refused(_row(Kind.DIAL, user, phone, request.client, label=job.target_name), reason, text)

            if early:
                return refuse(*early)
            if not isinstance(number, str) or not actions.DIAL_NUMBER_RE.fullmatch(number):
                return refuse("bad_number", Why("bad_number"))
            cannot = presses.cannot_ring(decision, phone, link, Why("no_phone_call"))
            if cannot:
                return refuse(*cannot)
            try:
                fields = actions.dial_originate(phone, number, context=settings.AMI_DIAL_CONTEXT)
            except actions.UnsafeValue as exc:
                logger.warning("refusing to dial %r from %s: %s", number, phone.device, exc)
                return refuse("bad_number", Why("number_refused"))
            return presses.accepted(_row(Kind.DIAL, user, phone, request.client, label=number), decision.reason, fields)

        from_id = _positive_id(request.command.get("from"))
        read = partial(_read_own_phone, request.user_id, "dial", from_id, presses.session_key(request))
        await self._press(request, job, read, judge,
                          self._look_at_link,
                          lambda: _("Calling your phone; once you answer it calls %(number)s…") % {"number": number})

    # --- training library -----------------------------------------------------------------------

    async def playback(self, bridge, request):
        recording_id = _positive_id(request.command.get("recording"))
        job = Job(Kind.PLAYBACK, request.user_id, recording_id=recording_id, language=request.language)

        def judge(early, facts, link):
            decision, user, phone, shared, recording = facts
            title = recording.title if recording is not None and shared else ""
            path = recording.path[:200] if recording is not None and shared else ""

            def refuse(reason, text):
                row = _row(Kind.PLAYBACK, user, phone, request.client, label=title, target_channel=path)
                return presses.refused(row, reason, text)

            if early:
                return refuse(*early)
            # A recording one may not play is not named, neither on the page nor in one's own
            # audit rows: an unknown id and someone's private one get the same words.
            if recording is None or (not shared and shared.reason == "not_shared"):
                return presses.refused(_row(Kind.PLAYBACK, user, phone, request.client), "not_found",
                                       Why("recording_not_found"))
            if not shared:
                return refuse(shared.reason, shared.message)
            cannot = presses.cannot_ring(decision, phone, link, Why("no_phone_play"))
            if cannot:
                return refuse(*cannot)
            try:
                fields = actions.playback_originate(phone, recording.path, root=settings.RECORDINGS_ROOT)
            except actions.UnsafeValue as exc:
                logger.warning("refusing to play recording %s: %s", recording.pk, exc)
                return refuse("bad_path", Why("bad_path", title=title, root=settings.RECORDINGS_ROOT))
            row = _row(Kind.PLAYBACK, user, phone, request.client, label=title, target_channel=path)
            return presses.accepted(row, shared.reason, fields, target_name=title)

        from_id = _positive_id(request.command.get("from"))
        await self._press(request, job, partial(_read_playback, request.user_id, recording_id, from_id,
                                                   presses.session_key(request)), judge,
                          self._look_at_link,
                          lambda: _("Calling your phone to play “%(title)s”…") % {"title": job.target_name})

    # --- the press path: check -> audit row -> send -> track -> report ----------------------------

    def _early_refusal(self, request):
        """(reason, words) when a press is refused before the policy is asked, else None."""
        if not self.window.allow(request.user_id, PRESS_LIMIT, PRESS_WINDOW):
            return presses.RATE_LIMITED, presses.rate_limited_text()
        if request.user_id in self.pending_by_user:
            return "busy", Why("busy")
        return None

    def _look_at_link(self, _facts):
        return presses.link_of(self.bridge.client)

    async def _press(self, request, job, read, judge, look, calling_text):
        """Settle the press in one database step (its row committed), then send the Originate
        and follow it by its ActionID. `judge(early, facts, seen)` is the command's own decision;
        `calling_text()` the words once the PBX took the Originate."""
        early = self._early_refusal(request)
        if early is None:
            self.pending_by_user[job.user_id] = job  # before the first await: a second press sees it
        try:
            verdict = await presses.settle(read, partial(judge, early), look, request=request)
            job.session_id = verdict.session_id
            if not verdict.allowed:
                self._release(job)
                job.state = Outcome.DENIED
                return await self._status(job, "denied", verdict.reason, verdict.text)
            for name, value in verdict.found.items():
                setattr(job, name, value)
            if job.kind == Kind.PICKUP:
                # Known before sending: a Pickup event racing ahead of our bookkeeping still finds the job.
                self.by_target.setdefault(job.target_channel, set()).add(job)
            job.legs = self.watch_legs(job.kind, verdict.row["from_extension"])
            response, failure = await presses.send_originate(self.bridge.client, verdict.fields)
            if failure is not None:
                outcome, why, reason = failure
                return await self._finish(job, outcome, why, reason=reason)
        except BaseException:
            self._release(job)
            raise
        job.action_id = response.action_id or ""
        job.state = Outcome.QUEUED
        self.by_action[job.action_id] = job
        await update_row(job.session_id, outcome=Outcome.QUEUED, action_id=job.action_id)
        await self._status(job, "queued", "ok", calling_text())
        # Events that shared a TCP read with the Response were seen before the ActionID was known.
        async with self._lock:
            for msg in list(self._recent):
                if job.state in DONE:
                    break
                await self._handle(msg)

    # --- PBX events -----------------------------------------------------------------------------

    def _in_flight(self):
        return self.by_action or self.by_target or self.following

    def _presses_of(self, msg):
        """The jobs an event is about (looked up, not taken out): a Pickup or the ringing leg's
        Hangup concerns every pickup pressed on that call."""
        if msg.event == "OriginateResponse":
            job = self.by_action.get(msg.action_id or "")
            return () if job is None else (job,)
        name = msg.get("TargetChannel" if msg.event == "Pickup" else "Channel") or ""
        jobs = self.by_target.get(name)
        if jobs or msg.event == "Pickup":
            return sorted(jobs or (), key=lambda job: job.session_id or 0)
        return [job for job in self.following if job.legs is not None and name in job.legs.names]

    async def _handle_press_event(self, job, msg):
        """Idempotent: an event replayed after the Originate's Response counts once."""
        if job.state in DONE:
            return
        event = msg.event
        if event == "OriginateResponse":
            self.by_action.pop(msg.action_id or "", None)
            if job.answered:
                return
            if (msg.get("Response") or "").lower() != "success":
                why = presses.failure_words(job.legs, msg.get("Reason"))
                return await self._finish(job, Outcome.FAILED, Why("phone_not_connected", why=why))
            return await self._answered(job, msg.get("Channel") or "")
        if event == "Pickup":
            if job.picked:
                return
            picker = msg.get("Channel") or ""
            if device_of(picker) in (job.legs.phone_device, job.legs.local_device):
                return await self._picked_up(job, picker)
            return await self._too_late(job, Why("someone_else_answered", name=job.target_name))
        # Hangup: the ringing leg of a pickup, or one of the job's own legs.
        name = msg.get("Channel") or ""
        if job.kind == Kind.PICKUP and not job.picked and name == job.target_channel:
            if msg.get("Cause") == "26":
                # Answered elsewhere: by our phone if it is still up and no one else's Pickup came.
                job.answered_elsewhere = True
                return self._later(job, PICKUP_SETTLE, self._settle_pickup)
            return await self._too_late(job, Why("caller_hung_up", name=job.target_name))
        if name not in job.legs.names:
            return
        if job.kind == Kind.PICKUP and not job.picked and job.answered:
            # Our phone's leg went before anything said the call was ours: nothing rang there any more.
            return await self._too_late(job, Why("no_longer_ringing", name=job.target_name))
        if not job.answered or job.legs.alive:
            return  # a failed dial ends with its OriginateResponse; a call goes on in its other legs
        if job.kind == Kind.PLAYBACK:
            text = Why("playback_finished", title=job.target_name)
        elif job.kind == Kind.DIAL:
            text = Why("dial_ended", number=job.target_name)
        else:
            text = Why("call_ended", name=job.target_name)
        await self._finish(job, Outcome.ENDED, text)

    async def _answered(self, job, channel):
        """The user's phone answered. For a pickup that says nothing yet about the call."""
        job.answered = True
        self.pending_by_user.pop(job.user_id, None)
        self.following.add(job)
        if job.picked:
            return  # the Pickup came first and said it all; this response may name the ringing leg
        job.own_channel = channel
        if (job.legs is not None and channel != job.target_channel
                and device_of(channel) in (job.legs.phone_device, job.legs.local_device)):
            # The leg the PBX named (not the ringing leg a pickup swapped names with).
            job.legs.names.add(channel)
            if self.bridge.board.channel(channel) is not None:
                job.legs.alive.add(channel)
        await update_row(job.session_id, outcome=Outcome.ANSWERED, answered_at=timezone.now(), spy_channel=channel[:200],
                         spy_uniqueid=self._uniqueid_of(channel))
        if job.kind == Kind.PICKUP:
            if job.answered_elsewhere:
                self._later(job, PICKUP_SETTLE, self._settle_pickup)
            else:
                self._later(job, PICKUP_VERDICT, self._pickup_unconfirmed)
            text = _("Your phone answered; waiting for the PBX to say whether it took %(name)s's call…") % {
                "name": job.target_name}
        elif job.kind == Kind.PLAYBACK:
            text = _("Playing “%(title)s” on your phone.") % {"title": job.target_name}
        else:
            text = _("Your phone answered; calling %(number)s.") % {"number": job.target_name}
        await self._status(job, "answered", "ok", text)

    async def _picked_up(self, job, picker_channel):
        """The PBX said our phone took the call: told once; its legs are followed to their end."""
        job.picked = True
        self._cancel_timer(job)
        self._forget_target(job)
        self.pending_by_user.pop(job.user_id, None)
        self.following.add(job)
        job.legs.names.add(picker_channel)
        if self.bridge.board.channel(picker_channel) is not None:
            job.legs.alive.add(picker_channel)
        job.state = Outcome.ANSWERED
        fields = {"outcome": Outcome.ANSWERED, "spy_channel": picker_channel[:200],
                  "spy_uniqueid": self._uniqueid_of(picker_channel)}
        if not job.answered:
            fields["answered_at"] = timezone.now()
        await update_row(job.session_id, **fields)
        await self._status(job, "answered", "picked_up", _answered_text(job))

    def _uniqueid_of(self, channel):
        """Beside a channel name in the audit trail: names start again at 00000000 after a restart."""
        known = self.bridge.board.channel(channel)
        return (known or {}).get("uniqueid", "")[:64]

    async def _too_late(self, job, text):
        self._forget_target(job)
        await self._finish(job, Outcome.FAILED, text, reason="not_ringing")

    async def _settle_pickup(self, job):
        """PICKUP_SETTLE after the ringing leg went "answered elsewhere" with no Pickup event."""
        if job.picked:
            return
        if not job.answered:  # the response of our own phone is still to come: it decides first
            return self._later(job, PICKUP_SETTLE, self._settle_pickup)
        if job.legs.alive:
            return await self._picked_up(job, sorted(job.legs.alive)[0])
        await self._too_late(job, Why("someone_else_answered", name=job.target_name))

    async def _pickup_unconfirmed(self, job):
        """PICKUP_VERDICT after the phone answered, and nothing told: say what is known."""
        if job.picked:
            return
        await self._status(job, "answered", "unconfirmed", _(
            "Your phone answered, but the PBX has not said whether it took %(name)s's call.") % {"name": job.target_name})

    def _later(self, job, delay, step):
        """Run `step(job)` after `delay` seconds, in the PBX's order with the events (the lock) and
        in the presser's language; a newer step replaces a pending one."""
        self._cancel_timer(job)

        def run():
            job.timer = None
            task = asyncio.ensure_future(self._step(job, step))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        job.timer = asyncio.get_running_loop().call_later(delay, run)

    async def _step(self, job, step):
        async with self._lock:
            if job.state in DONE:
                return
            with speaking(job.language):
                await step(job)

    @staticmethod
    def _cancel_timer(job):
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None

    def _link_lost(self, state):
        jobs = {id(job): job for job in [*self.pending_by_user.values(), *self.by_action.values(),
                                         *(job for jobs in self.by_target.values() for job in jobs),
                                         *self.following]}
        if not jobs:
            return None
        for job in jobs.values():
            self._release(job)
        return self._interrupted(list(jobs.values()), state)

    async def _interrupted(self, jobs, state):
        for job in jobs:
            with speaking(job.language):  # each row and message in its own presser's language
                reason = Why("link_lost", state=state)
                if job.session_id is not None:
                    await presses.interrupt_rows([job.session_id], reason)
                job.state = Outcome.INTERRUPTED
                await self._status(job, "interrupted", "link_down", reason)

    async def _finish(self, job, outcome, why, *, reason=None):
        if job.state in DONE:
            return
        job.state = outcome
        self._release(job)
        fields = {"outcome": outcome, "ended_at": timezone.now(), **row_fields(why)}
        if reason:
            fields["reason"] = reason
        await update_row(job.session_id, **fields)
        await self._status(job, outcome, reason or "ok", why)

    def _forget_target(self, job):
        jobs = self.by_target.get(job.target_channel)
        if jobs is not None:
            jobs.discard(job)
            if not jobs:
                del self.by_target[job.target_channel]

    def _release(self, job):
        for table, key in [(self.pending_by_user, job.user_id), (self.by_action, job.action_id)]:
            if key and table.get(key) is job:
                del table[key]
        self._forget_target(job)
        self.following.discard(job)
        self._cancel_timer(job)
        self.unwatch(job.legs)

    async def _status(self, job, state, reason, text):
        await self.bridge.notify_user(job.user_id, self._message(job, state, reason, text))

    @staticmethod
    def _message(job, state, reason, text):
        message = {"type": "call.status", "kind": str(job.kind), "state": str(state), "reason": reason,
                   "text": str(text), "session": job.session_id}
        if job.kind == Kind.PICKUP:
            message["target"] = job.target_id
        elif job.kind == Kind.DIAL:
            message["number"] = job.target_name
        else:
            message["recording"] = job.recording_id
            if getattr(job, "call_id", None) is not None:  # a call's recording (history/recordings_play.py)
                message["call"] = job.call_id
        return message

    def sessions_of(self, user_id):
        """For a page of this user that just connected (bridge.add_session_reporter): where each of
        his calls in flight stands, in that page's language (active when this is called)."""
        jobs = {id(job): job for job in [*self.following, *self.pending_by_user.values()] if job.user_id == user_id}
        messages = []
        for job in sorted(jobs.values(), key=lambda job: job.session_id or 0):
            if job.state in DONE or job.session_id is None:
                continue
            if job.kind == Kind.PICKUP and job.picked:
                text = _answered_text(job)
            elif job.kind == Kind.PLAYBACK and job.answered:
                text = _("Playing “%(title)s” on your phone.") % {"title": job.target_name}
            elif job.kind == Kind.DIAL and job.answered:
                text = _("Your phone answered; calling %(number)s.") % {"number": job.target_name}
            elif job.answered:
                text = _("Your phone answered; waiting for the PBX to say whether it took %(name)s's call…") % {
                    "name": job.target_name}
            else:
                text = _("Calling your phone…")
            messages.append(self._message(job, "answered" if job.answered else "queued", "live", text))
        return messages


def install(bridge):
    """Plug pickup, dial and playback into the bridge. (Rows left open by a previous run are ended
    by supervision.monitoring's install, whatever their kind.)"""
    control = CallControl(bridge)
    bridge.register("pickup", control.pickup)
    bridge.register("dial", control.dial)
    bridge.register("playback", control.playback)
    bridge.add_event_listener(control.on_event)
    bridge.add_session_reporter(control.sessions_of)
    bridge.client.on_link(control.on_link)
    bridge.call_control = control
    return control
