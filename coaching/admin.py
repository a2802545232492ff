"""Scorecards (criteria inline) for the admins; evaluations, notes and acknowledgements read-only.

Who may edit a scorecard here is coaching.policy's answer (admins: every scorecard), not the
model permissions of the admin's groups: the same rule as the curators' scorecards page."""

from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from accounts.admin import LabelledRows
from accounts.admin_titles import SentenceTitles
from coaching import policy
from coaching.models import Acknowledgement, CoachingNote, Criterion, Evaluation, EvaluationScore, Scorecard


class LabelledCriteria(LabelledRows, BaseInlineFormSet):
    pass


class CriterionInline(admin.TabularInline):
    model = Criterion
    formset = LabelledCriteria
    extra = 1
    fields = ["position", "name", "description", "weight", "critical"]


class PolicyGated:
    """Admins (by role) with the evaluate permission see and edit these; nobody else."""

    def _allowed(self, request, obj=None):
        if not request.user.is_authenticated:
            return False  # the admin's own login page asks too, before anyone has signed in
        return bool(policy.may_manage_scorecard(request.user, obj)) and policy.is_grader(request.user) \
            and (request.user.is_superuser or request.user.role == "admin")

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)


@admin.register(Scorecard)
class ScorecardAdmin(PolicyGated, SentenceTitles, admin.ModelAdmin):
    list_title = _("Choose a scorecard to change")
    add_title = _("Add a scorecard")
    change_title = _("Change the scorecard")
    view_title = _("The scorecard")

    list_display = ["name", "owner", "scale_max", "pass_threshold", "good_threshold", "active"]
    list_filter = ["active", "owner"]
    search_fields = ["name", "description"]
    raw_id_fields = ["owner"]
    inlines = [CriterionInline]

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)


class ReadOnly(PolicyGated):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScoreInline(admin.TabularInline):
    model = EvaluationScore
    fields = ["criterion_name", "weight", "critical", "score"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnly, SentenceTitles, admin.ModelAdmin):
    """Submitted evaluations are never changed: a correction is a new version (from the call page)."""

    list_title = _("Evaluations: choose one to view")
    view_title = _("An evaluation")
    list_display = ["created_at", "trainee", "call_uniqueid", "version", "scorecard_name", "percent", "band",
                    "evaluator_label"]
    list_filter = ["band", "live", "critical_failed"]
    search_fields = ["call_uniqueid", "trainee__username", "trainee__last_name", "evaluator_label", "scorecard_name"]
    inlines = [ScoreInline]


@admin.register(CoachingNote)
class CoachingNoteAdmin(ReadOnly, SentenceTitles, admin.ModelAdmin):
    list_title = _("Coaching notes: choose one to view")
    view_title = _("A coaching note")
    list_display = ["created_at", "trainee", "call_uniqueid", "at", "text", "author_label"]

    @admin.display(description=_("at"), ordering="offset_seconds")
    def at(self, note):
        return note.offset_label
    search_fields = ["call_uniqueid", "trainee__username", "text", "author_label"]


@admin.register(Acknowledgement)
class AcknowledgementAdmin(ReadOnly, SentenceTitles, admin.ModelAdmin):
    list_title = _("Acknowledgements: choose one to view")
    view_title = _("An acknowledgement")
    list_display = ["created_at", "trainee", "evaluation", "note", "disputed", "comment"]
