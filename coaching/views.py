"""Coaching pages and the live panel's JSON endpoints. Thin: the rules are in coaching.policy, the
work in coaching.service. Every POST is checked on the server whatever the page offered."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from coaching import policy, service
from coaching.forms import CriterionFormSet, ScorecardForm, ScoreListFilter
from coaching.models import CoachingNote, Evaluation, Scorecard
from coaching.service import CoachingError

PAGE_SIZE = 50
MAX_JSON_BYTES = 64 * 1024


# --- JSON (the dashboard's live panel) -----------------------------------------------------------


def _json_error(error):
    return JsonResponse({"ok": False, "code": error.code, "message": error.message, "field": error.field},
                        status=error.status)


def _json_body(request):
    if len(request.body) > MAX_JSON_BYTES:
        raise CoachingError(_("That is too much at once."), status=413, code="too_large")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise CoachingError(_("The request was not understood."), code="bad_json") from None
    if not isinstance(body, dict):
        raise CoachingError(_("The request was not understood."), code="bad_json")
    return body


def _api(view):
    """Logged in (else 403 in JSON, not a redirect to the login page), CoachingError as JSON."""
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"ok": False, "code": "login", "message": _("Log in again.")}, status=403)
        try:
            return view(request, *args, **kwargs)
        except CoachingError as error:
            return _json_error(error)
    wrapper.__name__ = view.__name__
    return wrapper


@require_GET
@_api
def api_scorecards(request):
    if not policy.is_grader(policy.fresh_user(request.user)):
        raise CoachingError(_("You do not have the right to grade calls."), status=403, code="no_permission")
    cards = Scorecard.objects.usable_by(request.user).prefetch_related("criteria")
    return JsonResponse({"ok": True, "scorecards": [card.as_json() for card in cards if card.criteria.all()]})


@require_GET
@_api
def api_call(request):
    """What this call already has: evaluations (every version) and notes."""
    uniqueid = service.check_uniqueid(request.GET.get("call"))
    trainee = service.trainee_for(request.user, request.GET.get("trainee"), decide=policy.may_view)
    data = service.call_coaching(request.user, trainee, uniqueid)
    return JsonResponse({
        "ok": True,
        "evaluations": [service.evaluation_json(version) for version in data.versions],
        "current": next((version.pk for version in data.versions if version.is_current), None),
        "notes": [service.note_json(note) for note in data.notes],
        "page": service.call_page_url(trainee.pk, uniqueid),
        "can_grade": data.can_grade,
    })


@require_POST
@_api
def api_evaluate(request):
    body = _json_body(request)
    evaluation = service.submit_evaluation(
        request.user, trainee_id=body.get("trainee"), call_uniqueid=body.get("call"),
        scorecard_id=body.get("scorecard"), scores=body.get("scores"), comment=body.get("comment"),
        replaces_id=body.get("replaces"), live=bool(body.get("live")),
    )
    return JsonResponse({"ok": True, "evaluation": service.evaluation_json(evaluation)}, status=201)


@require_POST
@_api
def api_note(request):
    body = _json_body(request)
    note = service.add_note(request.user, trainee_id=body.get("trainee"), call_uniqueid=body.get("call"),
                            offset=body.get("offset"), text=body.get("text"), live=bool(body.get("live")))
    return JsonResponse({"ok": True, "note": service.note_json(note)}, status=201)


# --- pages ------------------------------------------------------------------------------------


def _back(request, fallback):
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


@login_required
def index(request):
    """A trainee's "My evaluations"; a grader's evaluations of his trainees (unacknowledged first)."""
    user = policy.fresh_user(request.user)
    grader = policy.is_grader(user)
    trainees = policy.visible_trainees(user)
    form = ScoreListFilter(request.GET or None, trainees=trainees if grader else None)
    evaluations = service.evaluations_with_details().filter(trainee__in=trainees).select_related("trainee")
    show = "all"
    if form.is_valid():
        if form.cleaned_data.get("trainee"):
            evaluations = evaluations.filter(trainee=form.cleaned_data["trainee"])
        show = form.cleaned_data.get("show") or "all"
    if show == "unacknowledged":
        evaluations = evaluations.current().acknowledged(False)
    elif show == "current":
        evaluations = evaluations.current()
    page = Paginator(evaluations, PAGE_SIZE).get_page(request.GET.get("page"))
    corrected = set(Evaluation.objects.filter(replaces__in=[e.pk for e in page]).values_list("replaces_id", flat=True))
    for evaluation in page:
        evaluation.is_current = evaluation.pk not in corrected
        evaluation.ack = getattr(evaluation, "acknowledgement_row", None)
        evaluation.page_url = service.call_page_url(evaluation.trainee_id, evaluation.call_uniqueid)
    notes = None
    if not grader:
        notes = list(CoachingNote.objects.filter(trainee=user).select_related("acknowledgement_row")
                     .order_by("-created_at")[:PAGE_SIZE])
        for note in notes:
            note.ack = getattr(note, "acknowledgement_row", None)
            note.page_url = service.call_page_url(note.trainee_id, note.call_uniqueid)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "coaching/index.html", {
        "page": page, "form": form, "grader": grader, "notes": notes, "query": query.urlencode(),
        "unacknowledged": service.unacknowledged_count(user),
    })


@login_required
def call(request, trainee_id, call_uniqueid):
    """One call's coaching: for a call not (yet) in the history, or when the history is not installed."""
    trainee = User.objects.filter(pk=trainee_id).first()
    try:
        service.check_uniqueid(call_uniqueid)
    except CoachingError:
        raise Http404 from None
    if trainee is None:
        raise Http404
    data = service.call_coaching(request.user, trainee, call_uniqueid)
    if data is None:
        raise PermissionDenied(_("%(name)s is not in your team.") % {"name": trainee})
    page = service.call_page_url(trainee.pk, call_uniqueid)
    if page != request.path:
        return redirect(page)  # the call has ended and is in the history now: its page there
    return render(request, "coaching/call.html", {"coaching": data, "trainee": trainee,
                                                  "call_uniqueid": call_uniqueid})


def _scores_from_post(post):
    return {key[len("score_"):]: value for key, value in post.items() if key.startswith("score_")}


@login_required
@require_POST
def evaluate(request, trainee_id, call_uniqueid):
    fallback = service.call_page_url(trainee_id, call_uniqueid)
    try:
        evaluation = service.submit_evaluation(
            request.user, trainee_id=trainee_id, call_uniqueid=call_uniqueid,
            scorecard_id=request.POST.get("scorecard"), scores=_scores_from_post(request.POST),
            comment=request.POST.get("comment", ""), replaces_id=request.POST.get("replaces") or None,
        )
    except CoachingError as error:
        if error.status == 403:
            raise PermissionDenied(error.message) from None
        # Nothing is lost: the form comes back with what was chosen (the page reads it from the session).
        request.session["coaching_form"] = {key: value for key, value in request.POST.items()
                                            if key != "csrfmiddlewaretoken"}
        messages.error(request, error.message)
        return _back(request, fallback)
    if evaluation.replaces_id:
        messages.success(request, _("Correction saved as version %(version)s: %(percent)s%%.")
                         % {"version": evaluation.version, "percent": evaluation.percent})
    else:
        messages.success(request, _("Grade saved: %(percent)s%%.") % {"percent": evaluation.percent})
    return _back(request, fallback)


@login_required
@require_POST
def note(request, trainee_id, call_uniqueid):
    fallback = service.call_page_url(trainee_id, call_uniqueid)
    try:
        service.add_note(request.user, trainee_id=trainee_id, call_uniqueid=call_uniqueid,
                         offset=request.POST.get("offset", ""), text=request.POST.get("text", ""))
    except CoachingError as error:
        if error.status == 403:
            raise PermissionDenied(error.message) from None
        request.session["coaching_form"] = {"note_offset": request.POST.get("offset", ""),
                                            "note_text": request.POST.get("text", "")}
        messages.error(request, error.message)
        return _back(request, fallback)
    messages.success(request, _("Note added."))
    return _back(request, fallback)


@login_required
@require_POST
def acknowledge(request, kind, pk):
    if kind not in ("evaluation", "note"):
        raise Http404
    model = Evaluation if kind == "evaluation" else CoachingNote
    item = get_object_or_404(model, pk=pk)
    try:
        service.acknowledge(request.user, item, comment=request.POST.get("comment", ""),
                            disputed=request.POST.get("disputed") == "1")
    except CoachingError as error:
        if error.status == 403:
            raise PermissionDenied(error.message) from None
        messages.error(request, error.message)
        return _back(request, service.call_page_url(item.trainee_id, item.call_uniqueid))
    messages.success(request, _("Acknowledged."))
    return _back(request, service.call_page_url(item.trainee_id, item.call_uniqueid))


# --- scorecards (curators keep their own here; admins also in the Django admin) --------------------


@login_required
def scorecards(request):
    decision = policy.may_manage_scorecard(request.user)
    if not decision:
        raise PermissionDenied(decision.message)
    user = policy.fresh_user(request.user)
    own = Scorecard.objects.managed_by(user).prefetch_related("criteria").select_related("owner")
    shared = Scorecard.objects.usable_by(user).exclude(pk__in=own.values("pk")).prefetch_related("criteria")
    return render(request, "coaching/scorecards.html", {"own": own, "shared": shared})


@login_required
def scorecard_edit(request, pk=None):
    scorecard = get_object_or_404(Scorecard, pk=pk) if pk is not None else None
    decision = policy.may_manage_scorecard(request.user, scorecard)
    if not decision:
        raise PermissionDenied(decision.message)
    user = policy.fresh_user(request.user)
    if scorecard is None:
        scorecard = Scorecard(owner=user if user.role == "curator" else None)
    form = ScorecardForm(request.POST or None, instance=scorecard)
    formset = CriterionFormSet(request.POST or None, instance=scorecard, prefix="criteria")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        saved = form.save()
        formset.instance = saved
        formset.save()
        messages.success(request, _("Scorecard “%(name)s” saved.") % {"name": saved.name})
        return redirect("coaching:scorecards")
    return render(request, "coaching/scorecard_form.html", {"form": form, "formset": formset, "scorecard": scorecard})
