"""What the coaching views do, apart from HTTP: read a request's fields, ask the policy, write the
rows, and gather what a call's coaching section shows. The JSON endpoints (the dashboard's live
panel) and the HTML forms (the call page) share these, so both refuse the same things with the
same sentences."""

import re
from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import User
from coaching import policy, scoring
from coaching.models import (
    MAX_OFFSET_SECONDS, Acknowledgement, CoachingNote, Evaluation, EvaluationScore, Scorecard, parse_offset,
)

UNIQUEID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_TEXT = 2000


class CoachingError(Exception):
    """A refusal in words; `status` is the HTTP status the JSON endpoints answer with."""

    def __init__(self, message, *, status=400, code="invalid", field=None):
        super().__init__(message)
        self.message, self.status, self.code, self.field = message, status, code, field


def _denied(decision):
    status = 404 if decision.reason == "not_found" else 403
    return CoachingError(decision.message, status=status, code=decision.reason)


def check_uniqueid(value):
    value = (value or "").strip() if isinstance(value, str) else ""
    if not UNIQUEID.match(value):
        raise CoachingError(_("That is not a call's id."), code="bad_call")
    return value


def _int(value, message, code, field_name=None):
    if isinstance(value, bool):
        raise CoachingError(message, code=code, field=field_name)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        return int(value.strip())
    raise CoachingError(message, code=code, field=field_name)


def _text(value, label_message):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CoachingError(label_message, code="bad_text")
    value = value.replace("\x00", "").strip()
    if len(value) > MAX_TEXT:
        raise CoachingError(_("At most %(count)s characters, please.") % {"count": MAX_TEXT}, code="too_long")
    return value


def trainee_for(user, trainee_id, decide=policy.may_evaluate):
    """The trainee `trainee_id` names, if `user` may act on him (else CoachingError)."""
    trainee_id = _int(trainee_id, _("That person does not exist (any more)."), "not_found")
    decision = decide(user, trainee_id)
    if not decision:
        raise _denied(decision)
    return User.objects.get(pk=trainee_id)


def submit_evaluation(user, *, trainee_id, call_uniqueid, scorecard_id, scores, comment="", replaces_id=None,
                      live=False):
    """Grade (or correct the grade of) a call. `scores`: {criterion id (int or str): score (int or
    str)}. Returns the new Evaluation; raises CoachingError with a sentence."""
    call_uniqueid = check_uniqueid(call_uniqueid)
    trainee = trainee_for(user, trainee_id)
    scorecard_id = _int(scorecard_id, _("Choose a scorecard."), "no_scorecard", "scorecard")
    scorecard = Scorecard.objects.usable_by(policy.fresh_user(user)).filter(pk=scorecard_id).first()
    replaces = None
    if replaces_id not in (None, ""):
        replaces_id = _int(replaces_id, _("That grade does not exist."), "not_found")
        replaces = Evaluation.objects.filter(pk=replaces_id).first()
        if replaces is None:
            raise CoachingError(_("That grade does not exist."), status=404, code="not_found")
        if scorecard is None and replaces.scorecard_id == scorecard_id:
            # A correction may keep the scorecard it was graded with, even one no longer offered.
            scorecard = replaces.scorecard
    if scorecard is None:
        raise CoachingError(_("That scorecard is not available to you."), code="no_scorecard", field="scorecard")
    if not isinstance(scores, dict):
        raise CoachingError(_("Score every criterion."), code="missing_score")
    parsed = {}
    for key, value in scores.items():
        criterion_id = _int(key, _("Score every criterion."), "unknown_criterion")
        if value in (None, ""):
            continue  # left unscored: reported below as missing, by name
        parsed[criterion_id] = _int(value, _("A score is a whole number."), "out_of_scale", f"score_{criterion_id}")
    comment = _text(comment, _("The comment is text."))
    try:
        return Evaluation.submit(trainee=trainee, call_uniqueid=call_uniqueid, evaluator=policy.fresh_user(user),
                                 scorecard=scorecard, scores=parsed, comment=comment, live=bool(live),
                                 replaces=replaces)
    except scoring.ScoreError as error:
        raise _score_error(error, scorecard) from None
    except ValidationError as error:
        raise CoachingError(" ".join(error.messages), code="invalid") from None
    except IntegrityError:
        # Two grades of the same call (or corrections of the same version) at once: the database
        # let only one in.
        raise CoachingError(_("Someone graded this call a moment ago: reload and correct the newest version."),
                            status=409, code="already_graded") from None


def _score_error(error, scorecard):
    names = {criterion.pk: criterion.name for criterion in scorecard.criteria.all()}
    name = names.get(error.criterion, "")
    field_name = f"score_{error.criterion}" if error.criterion in names else None
    if error.code == "missing_score":
        return CoachingError(_("Score “%(name)s”.") % {"name": name}, code=error.code, field=field_name)
    if error.code == "out_of_scale":
        return CoachingError(_("“%(name)s” is scored from 0 to %(max)s.") % {"name": name, "max": scorecard.scale_max},
                             code=error.code, field=field_name)
    if error.code == "unknown_criterion":
        return CoachingError(_("That criterion is not on this scorecard (it may have just been changed): reload."),
                             code=error.code)
    if error.code == "no_criteria":
        return CoachingError(_("This scorecard has no criteria yet."), code=error.code)
    return CoachingError(_("This scorecard cannot be used as it is: ask its owner."), code=error.code)


def add_note(user, *, trainee_id, call_uniqueid, offset, text, live=False):
    """A coaching note at `offset` (seconds, or "m:ss") into the call. Returns the CoachingNote."""
    call_uniqueid = check_uniqueid(call_uniqueid)
    trainee = trainee_for(user, trainee_id)
    if isinstance(offset, str) and ":" in offset:
        try:
            offset = parse_offset(offset)
        except ValueError:
            raise CoachingError(_("Give the moment as m:ss, e.g. 0:42."), code="bad_offset", field="offset") from None
    elif isinstance(offset, float) and offset == offset and offset >= 0:
        offset = int(offset)
    offset = _int(offset, _("Give the moment as m:ss, e.g. 0:42."), "bad_offset", "offset")
    if offset < 0:
        raise CoachingError(_("Give the moment as m:ss, e.g. 0:42."), code="bad_offset", field="offset")
    if offset > MAX_OFFSET_SECONDS:
        raise CoachingError(_("That is further into the call than any call lasts."), code="bad_offset", field="offset")
    text = _text(text, _("The note is text."))
    if not text:
        raise CoachingError(_("Write the note."), code="empty", field="text")
    author = policy.fresh_user(user)
    return CoachingNote.objects.create(trainee=trainee, call_uniqueid=call_uniqueid, author=author,
                                       author_label=str(author), offset_seconds=offset, text=text, live=bool(live))


def acknowledge(user, item, *, comment="", disputed=False):
    """The trainee acknowledges an Evaluation or a CoachingNote (once)."""
    decision = policy.may_acknowledge(user, item)
    if not decision:
        raise _denied(decision)
    if isinstance(item, Evaluation) and Evaluation.objects.filter(replaces=item).exists():
        raise CoachingError(_("That grade has been corrected: acknowledge the newest version."), status=409,
                            code="corrected")
    comment = _text(comment, _("The comment is text."))
    target = {"evaluation": item} if isinstance(item, Evaluation) else {"note": item}
    try:
        with transaction.atomic():
            return Acknowledgement.objects.create(trainee_id=item.trainee_id, comment=comment, disputed=bool(disputed),
                                                  **target)
    except IntegrityError:
        raise CoachingError(_("You have already acknowledged it."), status=409, code="already") from None


# --- reading ---------------------------------------------------------------------------------


def call_page_url(trainee_id, call_uniqueid):
    """The call's page in the history when it has one there, else the coaching call page."""
    if apps.is_installed("history"):
        try:
            from history.models import CallRecord

            record = CallRecord.objects.filter(person_id=trainee_id, uniqueid=call_uniqueid).only("pk").first()
            if record is not None:
                return reverse("history:call", args=[record.pk])
        except Exception:  # noqa: BLE001 - the history's shape is not this module's to rely on
            pass
    return reverse("coaching:call", args=[trainee_id, call_uniqueid])


@dataclass
class CallCoaching:
    """Everything a call's coaching section shows to one viewer."""

    trainee: User
    call_uniqueid: str
    versions: list = field(default_factory=list)  # every evaluation, newest first (corrections beside the old)
    notes: list = field(default_factory=list)
    can_grade: bool = False
    is_trainee: bool = False
    scorecards: list = field(default_factory=list)  # usable for a new grade


def evaluations_with_details():
    return Evaluation.objects.select_related("acknowledgement_row", "replaces", "scorecard").prefetch_related(
        Prefetch("scores", queryset=EvaluationScore.objects.order_by("position", "pk")))


def call_coaching(viewer, trainee, call_uniqueid):
    """The section's data, or None when `viewer` may not read `trainee`'s coaching."""
    if trainee is None or not policy.may_view(viewer, trainee):
        return None
    versions = list(evaluations_with_details().of_call(trainee, call_uniqueid).order_by("-version", "-pk"))
    corrected = {version.replaces_id for version in versions if version.replaces_id}
    for version in versions:
        version.is_current = version.pk not in corrected
        version.ack = getattr(version, "acknowledgement_row", None)
        version.score_list = list(version.scores.all())
    notes = list(CoachingNote.objects.filter(trainee=trainee, call_uniqueid=call_uniqueid)
                 .select_related("acknowledgement_row"))
    for note in notes:
        note.ack = getattr(note, "acknowledgement_row", None)
    can_grade = bool(policy.may_evaluate(viewer, trainee))
    scorecards = []
    if can_grade:
        scorecards = list(Scorecard.objects.usable_by(policy.fresh_user(viewer)).prefetch_related("criteria"))
        scorecards = [card for card in scorecards if card.criteria.all()]
    return CallCoaching(trainee=trainee, call_uniqueid=call_uniqueid, versions=versions, notes=notes,
                        can_grade=can_grade, is_trainee=viewer.pk == trainee.pk, scorecards=scorecards)


def evaluation_json(evaluation):
    return {
        "id": evaluation.pk, "version": evaluation.version, "replaces": evaluation.replaces_id,
        "scorecard": evaluation.scorecard_name, "scorecard_id": evaluation.scorecard_id,
        "percent": str(evaluation.percent), "band": evaluation.band,
        "band_label": str(evaluation.get_band_display()), "critical_failed": evaluation.critical_failed,
        "evaluator": evaluation.evaluator_label, "comment": evaluation.comment,
        "created_at": evaluation.created_at.isoformat(),
        "scores": [{"criterion": s.criterion_id, "name": s.criterion_name, "score": s.score, "weight": s.weight,
                    "critical": s.critical} for s in evaluation.scores.all()],
    }


def note_json(note):
    return {"id": note.pk, "offset": note.offset_seconds, "offset_label": note.offset_label, "text": note.text,
            "author": note.author_label, "created_at": note.created_at.isoformat()}


def unacknowledged_count(user):
    """For the menu's badge: a trainee's own current evaluations not yet acknowledged; a grader's,
    those of the trainees he may read."""
    if not user.is_authenticated:
        return 0
    trainees = policy.visible_trainees(user)
    return Evaluation.objects.current().acknowledged(False).filter(trainee__in=trainees).count()
