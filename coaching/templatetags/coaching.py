"""Template tags: a call's coaching section (the history call page and the coaching call page
include it), the menu's count of unacknowledged evaluations, and the dashboard panel's settings."""

from django import template
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.translation import gettext as _

from coaching import policy, service
from coaching.models import format_offset

register = template.Library()

RADIO_SCALE_MAX = 10  # up to 0..10 each score is a row of radio buttons; beyond, a number field


@register.filter
def offset(seconds):
    return format_offset(seconds)


class GradeForm:
    """One grading form: a scorecard's criteria with the score each starts at."""

    def __init__(self, scorecard, *, replaces=None, previous=None, comment="", form_id=""):
        self.scorecard, self.replaces, self.comment, self.form_id = scorecard, replaces, comment, form_id
        previous = previous or {}
        self.radios = scorecard.scale_max <= RADIO_SCALE_MAX
        self.criteria = [
            {"criterion": criterion, "selected": str(previous.get(str(criterion.pk), "")),
             "choices": [str(value) for value in range(scorecard.scale_max + 1)]}
            for criterion in scorecard.criteria.all()
        ]


def _restored(request):
    """What the last refused form held (the views keep it in the session for one page)."""
    session = getattr(request, "session", None)
    return session.pop("coaching_form", None) if session is not None else None


@register.inclusion_tag("coaching/_section.html", takes_context=True)
def coaching_call_section(context, trainee, call_uniqueid, heading_level=2):
    request = context["request"]
    data = service.call_coaching(request.user, trainee, call_uniqueid) if trainee is not None else None
    restored = _restored(request) or {}
    restored_scores = {key[len("score_"):]: value for key, value in restored.items() if key.startswith("score_")}
    grade_forms, corrections = [], {}
    if data is not None and data.can_grade:
        current = next((version for version in data.versions if version.is_current), None)
        for card in data.scorecards:
            mine = restored.get("scorecard") == str(card.pk) and not restored.get("replaces")
            grade_forms.append(GradeForm(card, previous=restored_scores if mine else {},
                                         comment=restored.get("comment", "") if mine else "", form_id=f"grade-{card.pk}"))
        if current is not None and current.scorecard is not None and current.scorecard.criteria.exists():
            if restored.get("replaces") == str(current.pk):
                previous, comment = restored_scores, restored.get("comment", "")
            else:
                previous = {str(score.criterion_id): score.score for score in current.score_list if score.criterion_id}
                comment = current.comment
            corrections[current.pk] = GradeForm(current.scorecard, replaces=current, previous=previous,
                                                comment=comment, form_id=f"correct-{current.pk}")
    if data is not None:
        for version in data.versions:
            version.correction_form = corrections.get(version.pk)
    return {
        "coaching": data, "grade_forms": grade_forms, "restored": restored, "messages": context.get("messages"),
        "next": request.get_full_path(), "csrf_token": get_token(request), "h": heading_level,
        "h_sub": heading_level + 1,
        "evaluate_url": reverse("coaching:evaluate", args=[trainee.pk, call_uniqueid]) if data else "",
        "note_url": reverse("coaching:note", args=[trainee.pk, call_uniqueid]) if data else "",
    }


@register.simple_tag(takes_context=True)
def coaching_unacknowledged(context):
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return 0
    return service.unacknowledged_count(request.user)


@register.simple_tag(takes_context=True)
def coaching_dashboard_config(context):
    """The live panel's settings and words, or None for a user who does not grade."""
    request = context["request"]
    if not policy.is_grader(policy.fresh_user(request.user)):
        return None
    return {
        "urls": {"scorecards": reverse("coaching:api_scorecards"), "call": reverse("coaching:api_call"),
                 "evaluate": reverse("coaching:api_evaluate"), "note": reverse("coaching:api_note")},
        "csrf": get_token(request),
        "radio_scale_max": RADIO_SCALE_MAX,
        "labels": {
            "panel": _("Grade this call"),
            "panel_of": _("Grading %(name)s's call"),
            "scorecard": _("Scorecard"),
            "no_scorecards": _("No scorecard yet: add one on the Scorecards page."),
            "comment": _("Comment"),
            "submit": _("Submit grade"),
            "submit_correction": _("Submit correction"),
            "correct": _("Correct this grade"),
            "weight": _("weight %(weight)s"),
            "critical": _("critical"),
            "score_of": _("%(name)s: score"),
            "saved": _("Graded %(percent)s%% (%(band)s) as version %(version)s."),
            "critical_failed": _("failed on a critical criterion"),
            "notes": _("Coaching notes"),
            "note": _("Note at %(time)s"),
            "add_note": _("Add note"),
            "note_saved": _("Note saved at %(time)s."),
            "restamp": _("Now"),
            "restamp_title": _("Stamp the note with this moment of the call"),
            "close": _("Close"),
            "ended": _("You are no longer on this call; finish the grade here."),
            "open_page": _("Open the call's page"),
            "already": _("Graded already: %(percent)s%% (%(band)s), version %(version)s."),
            "error": _("Not saved: %(message)s"),
            "offline": _("The server did not answer; nothing was saved. Try again."),
        },
    }
