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

How a pickup ends (ami-captures asterisk20-pickupchan, asterisk20-sip-ringing-pickupchan):
PickupChan answers the picker's own leg even when nothing rings (Reason 4 all the same), so the
OriginateResponse alone does not say whether the call was taken. It was when a `Pickup` event names
our ringing channel as TargetChannel, or when the OriginateResponse already carries the ringing
leg's name (the picker took over its identity; over chan_sip that response comes BEFORE the
`Pickup` event, over Local channels after it). A successful response naming the picker's own leg
with no `Pickup` seen means nothing was ringing there any more: answered elsewhere or gone.
"""

import asyncio
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.translation import gettext as _

from supervision import actions, policy
from supervision.ami.pending import ActionError, ActionTimeout, ConnectionLost, NotConnected
from supervision.bridge import speaking
from supervision.models import Kind, MonitoringSession, Outcome, Recording
from supervision.monitoring import originate_reason

logger = logging.getLogger(__name__)

PRESS_LIMIT = 5  # presses of these commands per user...
PRESS_WINDOW = 10.0  # ...within this many seconds
RECENT_EVENTS = 500
EVENTS = {"OriginateResponse", "Pickup", "Hangup"}
DONE = (Outcome.ENDED, Outcome.FAILED, Outcome.INTERRUPTED, Outcome.DENIED)


@dataclass
class Job:
    """One press in flight (the audit row holds the rest)."""

    kind: str
    user_id: int
    session_id: int | None = None
    target_id: int | None = None  # pickup: the ringing phone's extension
    target_name: str = ""  # pickup: its owner; dial: the number; playback: the title
    target_channel: str = ""  # pickup: the exact ringing channel
    recording_id: int | None = None
    action_id: str = ""
    own_channel: str = ""  # the user's leg once known, followed to its Hangup
    state: str = Outcome.REQUESTED
    picked: bool = False
    language: str | None = None  # of the page that pressed: the PBX's later events are told in it


# --- database (in a thread: the bridge lives in the event loop) ----------------------------------


def _db(function):
    def run(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=True)


def _own_phone(user, from_id):
    """The phone to ring: the one the page named if it is his, else his first."""
    if user is None:
        return None
    phones = user.extensions.order_by("pk")
    if from_id is not None:
        return phones.filter(pk=from_id).first()
    return phones.first()


@_db
def _decide_pickup(user_id, target_id):
    decision = policy.can(user_id, "pickup", target_id)
    user = policy.fresh_user(user_id)
    target = policy.fresh_extension(target_id) if target_id is not None else None
    return decision, user, target, _own_phone(user, None)


@_db
def _decide_own_phone(user_id, action, from_id):
    """For dial and playback: the user's phone, and may he ring it with this action?"""
    user = policy.fresh_user(user_id)
    phone = _own_phone(user, from_id)
    decision = policy.can(user_id, action, phone) if phone is not None else None
    return decision, user, phone


@_db
def _decide_recording(user_id, recording_id):
    recording = Recording.objects.filter(pk=recording_id).first() if recording_id is not None else None
    if recording is None:
        return None, None
    return policy.can(user_id, "playback", recording), recording


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


class CallControl:
    def __init__(self, bridge, *, clock=time.monotonic):
        self.bridge = bridge
        self.clock = clock
        self.pending_by_user = {}  # user id -> Job not yet answered (one press at a time)
        self.by_action = {}  # ActionID -> Job, until its OriginateResponse
        self.by_target = {}  # ringing channel -> pickup Job, until Pickup / its response
        self.by_channel = {}  # the user's leg -> Job, until its Hangup
        self.presses = defaultdict(deque)
        self._recent = deque(maxlen=RECENT_EVENTS)
        self._lock = asyncio.Lock()

    # --- pickup ---------------------------------------------------------------------------------

    async def pickup(self, bridge, request):
        target_id = _positive_id(request.command.get("target"))
        job = Job(Kind.PICKUP, request.user_id, target_id=target_id, language=request.language)
        decision, user, target, phone = await _decide_pickup(request.user_id, target_id)

        async def refuse(reason, text):
            await self._refuse(request, job, _row(Kind.PICKUP, user, phone, request.client, target=target,
                                                  target_channel=job.target_channel), reason, text)

        if not await self._press_allowed(request, job, refuse):
            return
        if not decision:
            return await refuse(decision.reason, decision.message)
        name = job.target_name = str(target.user)
        if phone is None:
            return await refuse("no_phone", _("You have no phone in the roster to answer on."))
        if not await self._link_up(refuse):
            return
        ringing = self._ringing_channel(target.device)
        if ringing is None:
            return await refuse(
                "not_ringing", _("Nothing rings on %(name)s's phone any more: answered elsewhere or hung up.")
                % {"name": name})
        job.target_channel = ringing["name"]
        try:
            fields = actions.pickup_originate(phone, job.target_channel)
        except actions.UnsafeValue as exc:
            logger.warning("refusing to pick up %r: %s", job.target_channel, exc)
            return await refuse("unsafe_channel", _("%(name)s's call cannot be picked up.") % {"name": name})
        row = _row(Kind.PICKUP, user, phone, request.client, target=target, target_channel=job.target_channel,
                   reason=decision.reason)
        # Known before sending: a Pickup event racing ahead of our bookkeeping still finds the job.
        self.by_target[job.target_channel] = job
        await self._originate(request, job, row, fields, _("Calling your phone to answer %(name)s's call…") % {"name": name})

    def _ringing_channel(self, device):
        ringing = [c for c in self.bridge.board.channels_of(device) if c.get("state") == "ringing"]
        return max(ringing, key=lambda c: c.get("created_at") or 0.0) if ringing else None

    # --- click-to-call --------------------------------------------------------------------------

    async def dial(self, bridge, request):
        number = request.command.get("number")
        job = Job(Kind.DIAL, request.user_id, target_name=number if isinstance(number, str) else "",
                  language=request.language)
        decision, user, phone = await _decide_own_phone(request.user_id, "dial", _positive_id(request.command.get("from")))

        async def refuse(reason, text):
            await self._refuse(request, job, _row(Kind.DIAL, user, phone, request.client, label=job.target_name),
                               reason, text)

        if not await self._press_allowed(request, job, refuse):
            return
        if not isinstance(number, str) or not actions.DIAL_NUMBER_RE.fullmatch(number):
            return await refuse("bad_number", _("That is not a number to call: use digits, +, * and # (1 to 32)."))
        if phone is None:
            return await refuse("no_phone", _("You have no phone in the roster to call from."))
        if not decision:
            return await refuse(decision.reason, decision.message)
        if not await self._link_up(refuse):
            return
        try:
            fields = actions.dial_originate(phone, number, context=settings.AMI_DIAL_CONTEXT)
        except actions.UnsafeValue as exc:
            logger.warning("refusing to dial %r from %s: %s", number, phone.device, exc)
            return await refuse("bad_number", _("That number cannot be called from here."))
        row = _row(Kind.DIAL, user, phone, request.client, label=number, reason=decision.reason)
        await self._originate(request, job, row, fields,
                              _("Calling your phone; once you answer it calls %(number)s…") % {"number": number})

    # --- training library -----------------------------------------------------------------------

    async def playback(self, bridge, request):
        recording_id = _positive_id(request.command.get("recording"))
        job = Job(Kind.PLAYBACK, request.user_id, recording_id=recording_id, language=request.language)
        decision, user, phone = await _decide_own_phone(
            request.user_id, "playback", _positive_id(request.command.get("from")))
        shared, recording = await _decide_recording(request.user_id, recording_id)
        if recording is not None:
            job.target_name = recording.title

        async def refuse(reason, text):
            await self._refuse(request, job, _row(Kind.PLAYBACK, user, phone, request.client, label=job.target_name,
                                                  target_channel=recording.path[:200] if recording else ""),
                               reason, text)

        if not await self._press_allowed(request, job, refuse):
            return
        if recording is None:
            return await refuse("not_found", _("That recording does not exist (any more)."))
        if not shared:
            return await refuse(shared.reason, shared.message)
        if phone is None:
            return await refuse("no_phone", _("You have no phone in the roster to play to."))
        if not decision:
            return await refuse(decision.reason, decision.message)
        if not await self._link_up(refuse):
            return
        try:
            fields = actions.playback_originate(phone, recording.path, root=settings.RECORDINGS_ROOT)
        except actions.UnsafeValue as exc:
            logger.warning("refusing to play recording %s: %s", recording.pk, exc)
            return await refuse("bad_path", _("“%(title)s” is not under the recordings folder %(root)s; ask its owner to fix it.")
                                % {"title": recording.title, "root": settings.RECORDINGS_ROOT})
        row = _row(Kind.PLAYBACK, user, phone, request.client, label=recording.title,
                   target_channel=recording.path[:200], reason=shared.reason)
        await self._originate(request, job, row, fields,
                              _("Calling your phone to play “%(title)s”…") % {"title": recording.title})

    # --- shared steps ---------------------------------------------------------------------------

    async def _press_allowed(self, request, job, refuse):
        now = self.clock()
        window = self.presses[request.user_id]
        while window and now - window[0] > PRESS_WINDOW:
            window.popleft()
        window.append(now)
        if len(window) > PRESS_LIMIT:
            await refuse("rate_limited", _("Too many presses; wait a few seconds."))
            return False
        if request.user_id in self.pending_by_user:
            await refuse("busy", _("Your previous press is still being handled; wait until your phone answers."))
            return False
        return True

    async def _link_up(self, refuse):
        link = self.bridge.client.link
        if link.state == "up":
            return True
        await refuse("pbx_down", _("The PBX link is %(state)s (%(detail)s); try again when it is back.")
                     % {"state": link.state, "detail": link.detail or "-"})
        return False

    async def _refuse(self, request, job, row, reason, text):
        job.state = Outcome.DENIED
        job.session_id = await _write(**row, reason=reason, outcome=Outcome.DENIED, outcome_detail=str(text)[:255],
                                      ended_at=timezone.now())
        await self._status(job, "denied", reason, text)

    async def _originate(self, request, job, row, fields, calling_text):
        self.pending_by_user[job.user_id] = job  # before the first await: a second press sees it
        try:
            job.session_id = await _write(**row, outcome=Outcome.REQUESTED)
            try:
                response = await self.bridge.client.send("Originate", fields)
            except NotConnected as exc:
                return await self._finish(job, Outcome.DENIED, _("The PBX link is down: %(why)s") % {"why": exc},
                                          reason="pbx_down")
            except ActionError as exc:
                return await self._finish(job, Outcome.FAILED, _("The PBX refused: %(why)s") % {"why": exc.message})
            except ActionTimeout:
                return await self._finish(job, Outcome.FAILED, _("The PBX did not answer in time."))
            except ConnectionLost:
                return await self._finish(job, Outcome.INTERRUPTED, _("The PBX link dropped while calling your phone."))
        except BaseException:
            self._release(job)
            raise
        job.action_id = response.action_id or ""
        job.state = Outcome.QUEUED
        self.by_action[job.action_id] = job
        await _update(job.session_id, outcome=Outcome.QUEUED, action_id=job.action_id)
        await self._status(job, "queued", "ok", calling_text)
        # Events that shared a TCP read with the Response were seen before the ActionID was known.
        async with self._lock:
            for msg in list(self._recent):
                if job.state in DONE:
                    break
                await self._handle(msg)

    # --- PBX events -----------------------------------------------------------------------------

    def on_event(self, msg):
        if msg.event not in EVENTS:
            return None
        self._recent.append(msg)
        if not (self.by_action or self.by_target or self.by_channel):
            return None
        return self._on_event(msg)

    async def _on_event(self, msg):
        async with self._lock:  # one event at a time, in the PBX's order
            await self._handle(msg)

    def _job_of(self, msg):
        """The job an event is about, if any (looked up, not taken out)."""
        if msg.event == "OriginateResponse":
            return self.by_action.get(msg.action_id or "")
        if msg.event == "Pickup":
            return self.by_target.get(msg.get("TargetChannel") or "")
        return self.by_channel.get(msg.get("Channel") or "")

    async def _handle(self, msg):
        """Idempotent: an event replayed after the Originate's Response counts once."""
        job = self._job_of(msg)
        if job is None:
            return
        # The event comes from the PBX, not from a page: its texts speak the presser's language.
        with speaking(job.language):
            await self._handle_job_event(job, msg)

    async def _handle_job_event(self, job, msg):
        event = msg.event
        if event == "OriginateResponse":
            self.by_action.pop(msg.action_id or "", None)
            if job.state in DONE:
                return
            if (msg.get("Response") or "").lower() != "success":
                why = originate_reason(msg.get("Reason"))
                return await self._finish(job, Outcome.FAILED, _("Your phone did not connect: %(why)s.") % {"why": why})
            channel = msg.get("Channel") or ""
            if job.kind != Kind.PICKUP:
                return await self._answered(job, channel)
            if job.picked:
                return
            if channel == job.target_channel:
                return await self._picked_up(job, None)  # identity swapped: the Pickup event follows
            self.by_target.pop(job.target_channel, None)
            await self._finish(job, Outcome.FAILED, _(
                "Too late: %(name)s's call was no longer ringing (answered elsewhere or hung up).")
                % {"name": job.target_name}, reason="not_ringing")
        elif event == "Pickup":
            if job.state in DONE:
                return
            await self._picked_up(job, msg.get("Channel") or "")
        elif event == "Hangup":
            if job.kind == Kind.PLAYBACK:
                text = _("Finished playing “%(title)s”.") % {"title": job.target_name}
            elif job.kind == Kind.DIAL:
                text = _("The call to %(number)s ended.") % {"number": job.target_name}
            else:
                text = _("%(name)s's call ended.") % {"name": job.target_name}
            await self._finish(job, Outcome.ENDED, text)

    async def _answered(self, job, channel):
        job.state = Outcome.ANSWERED
        job.own_channel = channel
        self.pending_by_user.pop(job.user_id, None)
        if channel:
            self.by_channel[channel] = job
        await _update(job.session_id, outcome=Outcome.ANSWERED, answered_at=timezone.now(), spy_channel=channel[:200])
        if job.kind == Kind.PLAYBACK:
            text = _("Playing “%(title)s” on your phone.") % {"title": job.target_name}
        else:
            text = _("Your phone answered; calling %(number)s.") % {"number": job.target_name}
        await self._status(job, "answered", "ok", text)

    async def _picked_up(self, job, picker_channel):
        """Picked up: reported once; the picker's leg (from the Pickup event) is followed to its end."""
        first = not job.picked
        job.picked = True
        if picker_channel:
            self.by_target.pop(job.target_channel, None)
            job.own_channel = picker_channel
            self.by_channel[picker_channel] = job
        if first:
            job.state = Outcome.ANSWERED
            self.pending_by_user.pop(job.user_id, None)
            await _update(job.session_id, outcome=Outcome.ANSWERED, answered_at=timezone.now(),
                          spy_channel=(picker_channel or "")[:200])
            await self._status(job, "answered", "picked_up",
                               _("You answered %(name)s's call on your phone.") % {"name": job.target_name})
        elif picker_channel:
            await _update(job.session_id, spy_channel=picker_channel[:200])

    def on_link(self, link=None):
        state = getattr(link, "state", None) or self.bridge.client.link.state
        if state != "up":
            self._recent.clear()  # channel names start again after an Asterisk restart
        if state == "up":
            return None
        jobs = {id(job): job for job in [*self.pending_by_user.values(), *self.by_action.values(),
                                         *self.by_target.values(), *self.by_channel.values()]}
        if not jobs:
            return None
        for job in jobs.values():
            self._release(job)
        return self._interrupted(list(jobs.values()), state)

    async def _interrupted(self, jobs, state):
        for job in jobs:
            with speaking(job.language):  # each row and message in its own presser's language
                reason = _("The PBX link was lost (%(state)s).") % {"state": state}
                if job.session_id is not None:
                    await _interrupt([job.session_id], reason)
                job.state = Outcome.INTERRUPTED
                await self._status(job, "interrupted", "link_down", reason)

    async def _finish(self, job, outcome, why, *, reason=None):
        if job.state in DONE:
            return
        job.state = outcome
        self._release(job)
        fields = {"outcome": outcome, "outcome_detail": str(why)[:255], "ended_at": timezone.now()}
        if reason:
            fields["reason"] = reason
        await _update(job.session_id, **fields)
        await self._status(job, outcome, reason or "ok", why)

    def _release(self, job):
        for table, key in [(self.pending_by_user, job.user_id), (self.by_action, job.action_id),
                           (self.by_target, job.target_channel), (self.by_channel, job.own_channel)]:
            if key and table.get(key) is job:
                del table[key]

    async def _status(self, job, state, reason, text):
        message = {"type": "call.status", "kind": str(job.kind), "state": str(state), "reason": reason,
                   "text": str(text), "session": job.session_id}
        if job.kind == Kind.PICKUP:
            message["target"] = job.target_id
        elif job.kind == Kind.DIAL:
            message["number"] = job.target_name
        else:
            message["recording"] = job.recording_id
        await self.bridge.notify_user(job.user_id, message)


def install(bridge):
    """Plug pickup, dial and playback into the bridge. (Rows left open by a previous run are ended
    by supervision.monitoring's install, whatever their kind.)"""
    control = CallControl(bridge)
    bridge.register("pickup", control.pickup)
    bridge.register("dial", control.dial)
    bridge.register("playback", control.playback)
    bridge.add_event_listener(control.on_event)
    bridge.client.on_link(control.on_link)
    bridge.call_control = control
    return control
