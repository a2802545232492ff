"""The life of a help request, inside the bridge (installed like supervision.monitoring).

A trainee in a call presses "I need help": browser -> consumer -> bridge -> `help.raise` here. The
server decides everything: only an active trainee, only while one of his phones has an answered
conversation on the board (the request names that call by the board's uniqueid, never by anything
the browser sent), one open request per call, presses rate limited. A row is written for it
(HelpRequest) before anyone is told.

Who is told (messages `help` to each user's dashboards, group supervision.user.<id>):
- the trainee's own dashboards (his page shows it, with Cancel);
- his curator's dashboards, if the curator has one open (supervision.presence);
- otherwise the admins who have one open; a curator whose last dashboard closes while a request
  of his trainee is open hands it to the admins then. A dashboard that opens later gets the open
  requests it should show right after its snapshot (a session reporter).

It ends, once, as:
- `joined`: a phone of the trainee's curator or of an admin appears among the call's watchers (the
  board's `watchers`: a ChanSpy on exactly that channel, from a press on the card or the banner, or
  a keypad switch of one already there to another mode); the row keeps who, the mode and the
  response time (from the press to the PBX's event);
- `cancelled`: the trainee pressed Cancel;
- `call_ended`: the call's channel hung up (or was gone when the PBX listed its channels again);
- `interrupted`: the PBX would not list its channels after the link came back, or the bridge
  restarted with the request open.
Everyone who was shown the request gets its end.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Extension, Role, User
from helprequests.models import Audience, EndReason, HelpRequest
from supervision import presence as presence_module
from supervision import presses
from supervision.presses import on_db_thread

logger = logging.getLogger(__name__)

MESSAGE = "help"
PRESS_LIMIT = 5  # raises and cancels per trainee...
PRESS_WINDOW = 10.0  # ...within this many seconds
OPEN = "open"
DENIED = "denied"


@dataclass
class OpenRequest:
    """What the bridge keeps about one open request (the row holds the rest)."""

    request_id: int
    trainee_id: int
    trainee_name: str
    curator_id: int | None
    curator_name: str
    target: int  # the extension id of the trainee's phone in the call (the card's buttons use it)
    device: str
    channel: str
    uniqueid: str
    raised_at: float  # epoch seconds, for the pages' clocks
    raised_clock: float  # monotonic, for the response time
    escalated: bool = False  # shown to the admins (the curator had no dashboard open)
    seen: set = field(default_factory=set)  # (device, mode) watchers already judged: not an answer
    told: set = field(default_factory=set)  # user ids whose dashboards were shown it


# --- database steps ------------------------------------------------------------------------------


@on_db_thread
def _read_trainee(user_id):
    """(trainee facts, [(extension id, device)]) for an active trainee, else (reason, None)."""
    user = User.objects.select_related("curator").filter(pk=user_id).first()
    if user is None or not user.is_active:
        return "inactive", None
    if user.role != Role.TRAINEE:
        return "not_trainee", None
    curator = user.curator
    facts = {"id": user.pk, "name": str(user), "curator_id": curator.pk if curator else None,
             "curator_name": str(curator) if curator else ""}
    return facts, [(extension.pk, extension.device) for extension in user.extensions.order_by("pk")]


@on_db_thread
def _create_row(**fields):
    return HelpRequest.objects.create(**fields).pk


@on_db_thread
def _update_row(request_id, **fields):
    HelpRequest.objects.filter(pk=request_id).update(**fields)


def _interrupt_left_open(before):
    """Requests a previous run left open cannot be followed again: they end `interrupted`."""
    return HelpRequest.objects.open().filter(raised_at__lt=before).update(
        ended_at=timezone.now(), end_reason=EndReason.INTERRUPTED)


@on_db_thread
def _person_on_phone(device):
    """(user id, role, name) of the roster phone `device` (`SIP/104`, `PJSIP/104`), else None."""
    resource = device.partition("/")[2].split("@")[0]
    for extension in Extension.objects.select_related("user").filter(resource=resource):
        if extension.device == device and extension.user.is_active:
            return extension.user.pk, extension.user.role, str(extension.user)
    return None


# --- the desk --------------------------------------------------------------------------------------


class HelpDesk:
    def __init__(self, bridge, presence, *, clock=time.monotonic):
        self.bridge = bridge
        self.presence = presence
        self.clock = clock
        self.open = {}  # request id -> OpenRequest
        self.by_call = {}  # (trainee id, call uniqueid) -> OpenRequest (None while its row is written)
        self.by_channel = {}  # the call's channel name -> OpenRequest
        self.window = presses.PressWindow(clock)
        self.started = timezone.now()
        self.startup = None  # the end of a previous run's open rows, awaited at the first login

    # --- the trainee's presses ------------------------------------------------------------------

    async def raise_hand(self, bridge, request):
        user_id = request.user_id
        if not self.window.allow(user_id, PRESS_LIMIT, PRESS_WINDOW):
            return await self._refuse(user_id, presses.RATE_LIMITED, presses.rate_limited_text())
        trainee, extensions = await _read_trainee(user_id)
        if extensions is None:
            if trainee == "inactive":
                return await self._refuse(user_id, "inactive", _("Your account is not active."))
            return await self._refuse(user_id, "not_trainee", _("Only a trainee can ask for help."))
        refusal = presses.link_refusal(presses.link_of(self.bridge.client))
        if refusal is not None:
            return await self._refuse(user_id, *refusal)
        found = self._call_of(extensions)
        if found is None:
            return await self._refuse(user_id, "no_call", _("You can ask for help only during a call."))
        extension_id, device, channel = found
        key = (user_id, channel["uniqueid"])
        if key in self.by_call:
            existing = self.by_call[key]
            if existing is not None:  # one open request per call: the page is shown the one there is
                await self.bridge.notify_user(user_id, self._message(existing))
            return None
        self.by_call[key] = None  # reserved before the first await: a second press sees it
        try:
            req = await self._open(trainee, extension_id, device, channel)
        except BaseException:
            self.by_call.pop(key, None)
            raise
        self.by_call[key] = req
        message = self._message(req)
        for target in sorted(req.told):
            await self.bridge.notify_user(target, message)
        return None

    def _call_of(self, extensions):
        """The trainee's answered conversation on the board (never a spy, pickup or playback leg)."""
        for extension_id, device in extensions:
            channel = self.bridge.board.conversation_of(device)
            if channel is not None and channel.get("state") == "up" and channel.get("uniqueid"):
                return extension_id, device, channel
        return None

    async def _open(self, trainee, extension_id, device, channel):
        curator_id = trainee["curator_id"]
        curator_online = curator_id is not None and self.presence.online(curator_id)
        admins = [] if curator_online else self.presence.users_with_role(Role.ADMIN)
        audience = Audience.CURATOR if curator_online else Audience.ADMINS if admins else Audience.NOBODY
        now = timezone.now()
        row_id = await _create_row(
            trainee_id=trainee["id"], trainee_label=trainee["name"][:160], curator_id=curator_id,
            curator_label=trainee["curator_name"][:160], extension_id=extension_id, device=device[:128],
            call_uniqueid=channel["uniqueid"][:64], call_channel=channel["name"][:200], raised_at=now,
            audience=audience, escalated_at=None if curator_online else now)
        req = OpenRequest(
            request_id=row_id, trainee_id=trainee["id"], trainee_name=trainee["name"], curator_id=curator_id,
            curator_name=trainee["curator_name"], target=extension_id, device=device, channel=channel["name"],
            uniqueid=channel["uniqueid"], raised_at=time.time(), raised_clock=self.clock(),
            escalated=not curator_online,
            # Whoever already listens when the hand goes up has not answered it by being there.
            seen={(watcher.get("device"), watcher.get("mode")) for watcher in channel.get("watchers") or ()})
        req.told = {trainee["id"], *admins} | ({curator_id} if curator_online else set())
        self.open[row_id] = req
        self.by_channel[req.channel] = req
        logger.info("%s: help request %s by user %s on %s (%s), shown to %s", self.bridge.name, row_id,
                    req.trainee_id, req.channel, req.uniqueid, audience)
        return req

    async def cancel(self, bridge, request):
        user_id = request.user_id
        if not self.window.allow(user_id, PRESS_LIMIT, PRESS_WINDOW):
            return await self._refuse(user_id, presses.RATE_LIMITED, presses.rate_limited_text())
        req = self.open.get(request.command.get("request"))
        if req is None or req.trainee_id != user_id:
            return await self._refuse(user_id, "no_request", _("You have no open help request."))
        return await self._end(req, EndReason.CANCELLED)

    async def _refuse(self, user_id, reason, text):
        await self.bridge.notify_user(user_id, {"type": MESSAGE, "request": None, "state": DENIED,
                                                "reason": reason, "text": str(text)})

    # --- the PBX's events -------------------------------------------------------------------------

    def on_event(self, msg):
        if not self.by_channel:
            return None
        if msg.event == "Hangup":
            req = self.by_channel.get(msg.get("Channel") or "")
            if req is not None and msg.get("Uniqueid") in (None, "", req.uniqueid):
                return self._end(req, EndReason.CALL_ENDED)
            return None
        joins = []
        for req in list(self.by_channel.values()):
            channel = self.bridge.board.channel(req.channel)
            if channel is None:
                continue
            for watcher in channel.get("watchers") or ():
                key = (watcher.get("device"), watcher.get("mode"))
                if key[0] and key not in req.seen:
                    req.seen.add(key)  # judged once, whatever the answer
                    joins.append((req, key))
        if not joins:
            return None
        return self._judge_joins(joins, self.clock())

    async def _judge_joins(self, joins, at):
        """A new watcher on a request's call: its end if that phone is the curator's or an admin's."""
        for req, (device, mode) in joins:
            if req.request_id not in self.open:
                continue
            person = await _person_on_phone(device)
            if person is None:
                continue
            person_id, role, name = person
            if person_id != req.curator_id and role != Role.ADMIN:
                continue
            await self._end(req, EndReason.JOINED, responder=(person_id, name), mode=mode or "", at=at)

    async def on_switched(self, live):
        """A spying session switched mode by the keypad (supervision.monitoring): the board shows
        that only with the AMI `dtmf` read class, so the switch itself is an answer too."""
        req = self.by_channel.get(live.target_channel)
        if req is None or (live.user_id != req.curator_id and self.presence.role(live.user_id) != Role.ADMIN):
            return
        req.seen.add((None, live.mode))  # whatever the board shows later, this answer counted
        await self._end(req, EndReason.JOINED, responder=(live.user_id, live.user_name), mode=live.mode)

    async def on_resync(self, items):
        """After a login: a request whose call the PBX no longer lists ended with it; without the
        list nothing can be said, and the requests end `interrupted`."""
        if self.startup is not None:
            await self.startup
            self.startup = None
        if not self.open:
            return
        if items is None:
            for req in list(self.open.values()):
                await self._end(req, EndReason.INTERRUPTED)
            return
        listed = {(item.get("Channel"), item.get("Uniqueid")) for item in items}
        for req in list(self.open.values()):
            if (req.channel, req.uniqueid) not in listed:
                await self._end(req, EndReason.CALL_ENDED)

    # --- ending -----------------------------------------------------------------------------------

    async def _end(self, req, reason, *, responder=None, mode="", at=None):
        if self.open.pop(req.request_id, None) is None:
            return  # ended already
        if self.by_call.get((req.trainee_id, req.uniqueid)) is req:
            del self.by_call[(req.trainee_id, req.uniqueid)]
        if self.by_channel.get(req.channel) is req:
            del self.by_channel[req.channel]
        fields = {"ended_at": timezone.now(), "end_reason": reason}
        extra = {}
        if responder is not None:
            seconds = round(max(0.0, (at if at is not None else self.clock()) - req.raised_clock), 3)
            fields.update(responder_id=responder[0], responder_label=responder[1][:160], mode=mode,
                          response_seconds=seconds)
            extra = {"responder": responder[0], "responder_name": responder[1], "mode": mode,
                     "response_seconds": seconds}
        await _update_row(req.request_id, **fields)
        logger.info("%s: help request %s ended: %s", self.bridge.name, req.request_id, reason)
        message = self._message(req, state=str(reason), **extra)
        for target in sorted(req.told | {req.trainee_id} | ({responder[0]} if responder else set())):
            await self.bridge.notify_user(target, message)

    # --- who is online ------------------------------------------------------------------------------

    async def on_presence(self, user_id, online):
        """A curator whose last dashboard closed hands his trainees' open requests to the admins;
        someone who can help coming online is news for the trainee waiting (his page says who
        has been told). The newcomer's own page is shown the requests after its snapshot."""
        if online:
            role = self.presence.role(user_id)
            for req in list(self.open.values()):
                if user_id == req.curator_id or (req.escalated and role == Role.ADMIN):
                    await self.bridge.notify_user(req.trainee_id, self._message(req))
            return
        for req in list(self.open.values()):
            if req.curator_id != user_id or req.escalated:
                continue
            req.escalated = True
            admins = self.presence.users_with_role(Role.ADMIN)
            await _update_row(req.request_id, escalated_at=timezone.now())
            req.told |= set(admins)
            message = self._message(req)
            for target in sorted({req.trainee_id, *admins}):
                await self.bridge.notify_user(target, message)

    def sessions_of(self, user_id):
        """The open requests a dashboard that just connected must show (in the loop, no I/O): the
        trainee's own, his curator's, and to an admin those handed to the admins."""
        role = self.presence.role(user_id)
        messages = []
        for req in self.open.values():
            if user_id in (req.trainee_id, req.curator_id) or user_id in req.told or (
                    req.escalated and role == Role.ADMIN):
                req.told.add(user_id)
                messages.append(self._message(req))
        return messages

    # --- messages ---------------------------------------------------------------------------------

    def _notified(self, req):
        """Whose dashboards show it now, for the trainee's page: his curator's, the admins', nobody's."""
        if req.curator_id is not None and self.presence.online(req.curator_id):
            return Audience.CURATOR.value
        if req.escalated and self.presence.users_with_role(Role.ADMIN):
            return Audience.ADMINS.value
        return Audience.NOBODY.value

    def _message(self, req, state=OPEN, **extra):
        # Data, no words: each page words it from its own labels, in the language it was served in.
        return {"type": MESSAGE, "request": req.request_id, "state": state, "trainee": req.trainee_id,
                "trainee_name": req.trainee_name, "curator_name": req.curator_name, "target": req.target,
                "raised_at": req.raised_at, "now": time.time(), "notified": self._notified(req), **extra}


def install(bridge):
    """Plug the help commands into the bridge (after supervision.presence, installed if missing)."""
    presence = getattr(bridge, "presence", None) or presence_module.install(bridge)
    desk = HelpDesk(bridge, presence)
    bridge.register("help.raise", desk.raise_hand)
    bridge.register("help.cancel", desk.cancel)
    bridge.add_event_listener(desk.on_event)
    bridge.add_resync_listener(desk.on_resync)
    bridge.add_session_reporter(desk.sessions_of)
    presence.on_change(desk.on_presence)
    spy_monitor = getattr(bridge, "spy_monitor", None)
    if spy_monitor is not None:
        spy_monitor.switch_listeners.append(desk.on_switched)
    bridge.help_desk = desk
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None:
        _interrupt_left_open(desk.started)
    else:
        desk.startup = loop.create_task(on_db_thread(_interrupt_left_open)(desk.started))
    return desk
