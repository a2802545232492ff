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

import logging
import time
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from supervision import actions, policy, presses
from supervision.bridge import speaking
from supervision.models import Kind, Outcome, Recording
from supervision.presses import DONE, originate_reason, update_row

logger = logging.getLogger(__name__)

PRESS_LIMIT = 5  # presses of these commands per user...
PRESS_WINDOW = 10.0  # ...within this many seconds


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


# --- database reads (run in presses.settle's database step) --------------------------------------


def _own_phone(user, from_id):
    """The phone to ring: the one the page named if it is his, else his first."""
    if user is None:
        return None
    phones = user.extensions.order_by("pk")
    if from_id is not None:
        return phones.filter(pk=from_id).first()
    return phones.first()


def _read_pickup(user_id, target_id):
    user, target, decisions = policy.decide_each(user_id, ("pickup",), target_id)
    return decisions["pickup"], user, target, _own_phone(user, None)


def _read_own_phone(user_id, action, from_id):
    """For dial and playback: the user's phone, and may he ring it with this action?"""
    user = policy.fresh_user(user_id)
    phone = _own_phone(user, from_id)
    decision = policy.decide(user, action, phone) if phone is not None else None
    return decision, user, phone


def _read_playback(user_id, recording_id, from_id):
    """The phone to play to and its decision, and the recording and whether it is shared."""
    decision, user, phone = _read_own_phone(user_id, "playback", from_id)
    recording = Recording.objects.filter(pk=recording_id).first() if recording_id is not None else None
    shared = policy.decide(user, "playback", recording) if recording is not None else None
    return decision, user, phone, shared, recording


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
        self.by_target = {}  # ringing channel -> pickup Job, until Pickup / its response
        self.by_channel = {}  # the user's leg -> Job, until its Hangup
        self.window = presses.PressWindow(clock)

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
            cannot = presses.cannot_ring(decision, phone, link, _("You have no phone in the roster to answer on."))
            if cannot:
                return refuse(*cannot)
            name = str(target.user)
            if ringing is None:
                return refuse(
                    "not_ringing", _("Nothing rings on %(name)s's phone any more: answered elsewhere or hung up.")
                    % {"name": name})
            try:
                fields = actions.pickup_originate(phone, ringing["name"])
            except actions.UnsafeValue as exc:
                logger.warning("refusing to pick up %r: %s", ringing["name"], exc)
                return refuse("unsafe_channel", _("%(name)s's call cannot be picked up.") % {"name": name},
                              ringing["name"])
            row = _row(Kind.PICKUP, user, phone, request.client, target=target, target_channel=ringing["name"])
            return presses.accepted(row, decision.reason, fields, target_name=name, target_channel=ringing["name"])

        await self._press(request, job, partial(_read_pickup, request.user_id, target_id), judge, look,
                          lambda: _("Calling your phone to answer %(name)s's call…") % {"name": job.target_name})

    def _ringing_channel(self, device):
        ringing = [c for c in self.bridge.board.channels_of(device) if c.get("state") == "ringing"]
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
                return refuse("bad_number", _("That is not a number to call: use digits, +, * and # (1 to 32)."))
            cannot = presses.cannot_ring(decision, phone, link, _("You have no phone in the roster to call from."))
            if cannot:
                return refuse(*cannot)
            try:
                fields = actions.dial_originate(phone, number, context=settings.AMI_DIAL_CONTEXT)
            except actions.UnsafeValue as exc:
                logger.warning("refusing to dial %r from %s: %s", number, phone.device, exc)
                return refuse("bad_number", _("That number cannot be called from here."))
            return presses.accepted(_row(Kind.DIAL, user, phone, request.client, label=number), decision.reason, fields)

        from_id = _positive_id(request.command.get("from"))
        await self._press(request, job, partial(_read_own_phone, request.user_id, "dial", from_id), judge,
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
            if recording is None or not shared:
                return presses.refused(_row(Kind.PLAYBACK, user, phone, request.client), "not_found",
                                       _("That recording does not exist or is not shared with you."))
            cannot = presses.cannot_ring(decision, phone, link, _("You have no phone in the roster to play to."))
            if cannot:
                return refuse(*cannot)
            try:
                fields = actions.playback_originate(phone, recording.path, root=settings.RECORDINGS_ROOT)
            except actions.UnsafeValue as exc:
                logger.warning("refusing to play recording %s: %s", recording.pk, exc)
                return refuse("bad_path", _("“%(title)s” is not under the recordings folder %(root)s; ask its owner to fix it.")
                              % {"title": title, "root": settings.RECORDINGS_ROOT})
            row = _row(Kind.PLAYBACK, user, phone, request.client, label=title, target_channel=path)
            return presses.accepted(row, shared.reason, fields, target_name=title)

        from_id = _positive_id(request.command.get("from"))
        await self._press(request, job, partial(_read_playback, request.user_id, recording_id, from_id), judge,
                          self._look_at_link,
                          lambda: _("Calling your phone to play “%(title)s”…") % {"title": job.target_name})

    # --- the press path: check -> audit row -> send -> track -> report ----------------------------

    def _early_refusal(self, request):
        """(reason, words) when a press is refused before the policy is asked, else None."""
        if not self.window.allow(request.user_id, PRESS_LIMIT, PRESS_WINDOW):
            return presses.RATE_LIMITED, presses.rate_limited_text()
        if request.user_id in self.pending_by_user:
            return "busy", _("Your previous press is still being handled; wait until your phone answers.")
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
            verdict = await presses.settle(read, partial(judge, early), look)
            job.session_id = verdict.session_id
            if not verdict.allowed:
                self._release(job)
                job.state = Outcome.DENIED
                return await self._status(job, "denied", verdict.reason, verdict.text)
            for name, value in verdict.found.items():
                setattr(job, name, value)
            if job.kind == Kind.PICKUP:
                # Known before sending: a Pickup event racing ahead of our bookkeeping still finds the job.
                self.by_target[job.target_channel] = job
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
        return self.by_action or self.by_target or self.by_channel

    def _press_of(self, msg):
        """The job an event is about, if any (looked up, not taken out)."""
        if msg.event == "OriginateResponse":
            return self.by_action.get(msg.action_id or "")
        if msg.event == "Pickup":
            return self.by_target.get(msg.get("TargetChannel") or "")
        return self.by_channel.get(msg.get("Channel") or "")

    async def _handle_press_event(self, job, msg):
        """Idempotent: an event replayed after the Originate's Response counts once."""
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
        await update_row(job.session_id, outcome=Outcome.ANSWERED, answered_at=timezone.now(), spy_channel=channel[:200])
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
            await update_row(job.session_id, outcome=Outcome.ANSWERED, answered_at=timezone.now(),
                          spy_channel=(picker_channel or "")[:200])
            await self._status(job, "answered", "picked_up",
                               _("You answered %(name)s's call on your phone.") % {"name": job.target_name})
        elif picker_channel:
            await update_row(job.session_id, spy_channel=picker_channel[:200])

    def _link_lost(self, state):
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
                    await presses.interrupt_rows([job.session_id], reason)
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
        await update_row(job.session_id, **fields)
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
