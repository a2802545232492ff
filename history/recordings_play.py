"""A call's recording played to the user's own phone: the training library's playback press
(supervision/cti.py: the policy's `playback` right on his own phone, the audit row written before
anything is sent, Originate `Application: Playback`, the outcome in words), with the file of a call
he may see (`CallRecord.objects.visible_to`) instead of a library recording.

Command (the call page's socket, /ws/library/): {"type": "recording.play", "call": <CallRecord id>,
"from": <own extension id, optional>}. Answers: the library's `call.status` messages (kind
`playback`) with `"call": <id>`. The file goes to Playback as Asterisk names it, without its
extension: CALL_RECORDINGS_PBX_DIR/<recording_file minus .wav>.
"""

import logging
from functools import partial

from django.conf import settings
from django.utils.translation import gettext as _

from supervision import actions, cti, presses
from supervision.models import Kind
from supervision.reasons import Why

from history import recordings

logger = logging.getLogger(__name__)


def _read(user_id, call_id, from_id):
    from history.models import CallRecord

    decision, user, phone = cti._read_own_phone(user_id, "playback", from_id)
    call = None
    if user is not None and call_id is not None:
        call = CallRecord.objects.visible_to(user).filter(pk=call_id).exclude(recording_file="").first()
    return decision, user, phone, call


def title_of(call):
    """How the press names the recording on the page and in the audit trail."""
    when = call.ended_at.strftime("%Y-%m-%d %H:%M")
    return f"{call.person_label or call.device} · {call.other_number or '—'} · {when}"


async def play(bridge, request):
    control = bridge.call_control
    call_id = cti._positive_id(request.command.get("call"))
    job = cti.Job(Kind.PLAYBACK, request.user_id, language=request.language)
    job.call_id = call_id

    def judge(early, facts, link):
        decision, user, phone, call = facts
        title = title_of(call) if call is not None else ""
        sound = recordings.pbx_sound(call.recording_file)[:200] if call is not None else ""

        def refuse(reason, text):
            return presses.refused(cti._row(Kind.PLAYBACK, user, phone, request.client, label=title,
                                            target_channel=sound), reason, text)

        if early:
            return refuse(*early)
        # A call one may not see is not named, neither on the page nor in one's own audit rows.
        if call is None:
            return presses.refused(cti._row(Kind.PLAYBACK, user, phone, request.client), "not_found",
                                   Why("call_recording_not_found"))
        cannot = presses.cannot_ring(decision, phone, link, Why("no_phone_play"))
        if cannot:
            return refuse(*cannot)
        try:
            fields = actions.call_recording_originate(phone, recordings.pbx_sound(call.recording_file),
                                                      root=settings.CALL_RECORDINGS_PBX_DIR)
        except actions.UnsafeValue as exc:
            logger.warning("refusing to play the recording of call %s: %s", call.pk, exc)
            return refuse("not_found", Why("call_recording_not_found"))
        return presses.accepted(cti._row(Kind.PLAYBACK, user, phone, request.client, label=title,
                                         target_channel=sound), decision.reason, fields, target_name=title)

    from_id = cti._positive_id(request.command.get("from"))
    await control._press(request, job, partial(_read, request.user_id, call_id, from_id), judge,
                         control._look_at_link,
                         lambda: _("Calling your phone to play “%(title)s”…") % {"title": job.target_name})


def install(bridge):
    if getattr(bridge, "call_control", None) is not None:
        bridge.register("recording.play", play)
