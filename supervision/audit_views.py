"""The audit trail pages: every press (listen, whisper, barge, pickup, click-to-call, playback),
who made it, on whom or what, when and with what outcome.

Admins see every row; curators the rows of their own presses; trainees have no audit page.
The same filters drive the page and the CSV export; the page says kinds, modes, outcomes and
decisions in its own language, the CSV keeps the stable codes. "Why" is put in words from the
row's reason code (supervision.reasons) in the language of the page that reads it, whatever the
presser's was; the CSV is a download of that page, so its headings and its "why" speak the page's
language too, with the reason's code in a column of its own for a spreadsheet to filter on.
"""

import csv
import datetime
import re

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Role
from supervision.models import Kind, MonitoringSession, Mode, Outcome
from supervision.reasons import render as render_why

PAGE_SIZE = 100
CSV_COLUMNS = [
    ("requested_at", _("requested")),
    ("user_label", _("who")),
    ("from_device", _("from phone")),
    ("target_label", _("on whom or what")),  # a person, a number called or a recording
    ("target_device", _("target phone")),
    ("target_channel", _("target channel")),
    ("kind", _("kind")),
    ("mode", _("mode")),
    ("modes", _("modes used")),
    ("reason", _("decision")),
    ("outcome", _("outcome")),
    ("outcome_detail", _("why")),
    ("outcome_code", _("why (code)")),
    ("answered_at", _("answered")),
    ("spying_started_at", _("spying from")),
    ("ended_at", _("ended")),
    ("client_address", _("client address")),
    ("action_id", _("ActionID")),
    ("spy_channel", _("spy channel")),
]


# The audit's dates lie far inside these; a date outside them (9999-12-31, 0001-01-01) would overflow
# when it becomes the end of its day in the site's time zone.
FIRST_DAY, LAST_DAY = datetime.date(2000, 1, 1), datetime.date(9998, 12, 31)


# Not <input type=date>: that one is drawn in the browser's locale (mm/dd/yyyy in an American
# browser on a Russian page). A text field in the page's own format instead: the page language's
# first DATE_INPUT_FORMATS (2026-12-31 in English, 31.12.2026 in Russian); Django accepts ISO in both.
DATE_PLACEHOLDER = pgettext_lazy("date format shown in an empty date field", "YYYY-MM-DD")


def _date_field(label):
    widget = forms.DateInput(attrs={"placeholder": DATE_PLACEHOLDER, "autocomplete": "off",
                                    "size": 10, "maxlength": 10})
    return forms.DateField(label=label, required=False, widget=widget,
                           validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)])


# The decision codes of the audit rows (supervision.policy, presses, monitoring, cti) in words.
REASONS = {
    "ok": _("allowed"),
    "inactive": _("account not active"),
    "not_found": _("no such phone or recording"),
    "not_shared": _("recording not shared"),
    "own_call": _("own call"),
    "not_your_team": _("not in the team"),
    "no_permission": _("no right to it"),
    "not_for_role": _("not allowed for the role"),
    "not_monitorable": _("phone may not be monitored"),
    "unknown_action": _("unknown action"),
    "no_call": _("no call"),
    "not_a_conversation": _("not a conversation"),
    "unsafe_channel": _("channel refused"),
    "not_ringing": _("no longer ringing"),
    "bad_number": _("number refused"),
    "bad_path": _("file path refused"),
    "busy": _("previous press in progress"),
    "pbx_down": _("PBX link down"),
    "no_phone": _("no phone of his own"),
    "rate_limited": _("too many presses"),
    "already_monitoring": _("already monitoring"),
    "spy_not_started": _("listening did not start"),
}


def may_see_audit(user):
    return user.is_authenticated and user.is_active and (user.is_superuser or user.role in (Role.ADMIN, Role.CURATOR))


class AuditFilter(forms.Form):
    person = forms.CharField(label=_("Person"), required=False, max_length=150,
                             help_text=_("who pressed, or whose phone or call it was (name or login)"))
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("any"))] + list(Kind.choices))
    mode = forms.ChoiceField(label=_("Mode"), required=False, choices=[("", _("any"))] + list(Mode.choices))
    outcome = forms.ChoiceField(label=_("Outcome"), required=False, choices=[("", _("any"))] + list(Outcome.choices))
    date_from = _date_field(_("From"))
    date_to = _date_field(_("To"))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("“From” is after “To”."))
        return data

    def apply(self, queryset):
        data = self.cleaned_data
        if data.get("person"):
            text = data["person"]
            queryset = queryset.filter(
                Q(user_label__icontains=text) | Q(user__username__iexact=text)
                | Q(target_label__icontains=text) | Q(target_user__username__iexact=text)
            )
        if data.get("kind"):
            queryset = queryset.filter(kind=data["kind"])
        if data.get("mode"):
            queryset = queryset.filter(Q(mode=data["mode"]) | Q(modes__contains=data["mode"]))
        if data.get("outcome"):
            queryset = queryset.filter(outcome=data["outcome"])
        zone = timezone.get_current_timezone()
        if data.get("date_from"):
            start = datetime.datetime.combine(data["date_from"], datetime.time.min, tzinfo=zone)
            queryset = queryset.filter(requested_at__gte=start)
        if data.get("date_to"):
            end = datetime.datetime.combine(data["date_to"] + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone)
            queryset = queryset.filter(requested_at__lt=end)
        return queryset


def _filtered(request):
    if not may_see_audit(request.user):
        raise PermissionDenied
    form = AuditFilter(request.GET or None)
    queryset = MonitoringSession.objects.visible_to(request.user).select_related("user", "target_user")
    if form.is_bound and form.is_valid():
        queryset = form.apply(queryset)
    elif form.is_bound:
        queryset = queryset.none()
    return form, queryset


MODE_WORDS = dict(Mode.choices)


def mode_words(row):
    """The modes a spy row went through, in the page's language ("listen → barge"); other kinds have none."""
    codes = [code for code in (row.modes or row.mode).split(",") if code]
    return " → ".join(str(MODE_WORDS.get(code, code)) for code in codes)


def reason_words(code):
    return REASONS.get(code, code)


@login_required
def audit(request):
    form, queryset = _filtered(request)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    for row in page:
        row.mode_words = mode_words(row)
        row.reason_words = reason_words(row.reason)
        row.why_words = row.why()
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "supervision/audit.html", {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "sees_everyone": request.user.is_superuser or request.user.role == Role.ADMIN,
    })


# A spreadsheet runs a cell that starts with = + - @ (or a tab or CR before one) as a formula, and
# may split the file at `,`, `;` or tab (Russian-locale Excel splits at `;`): every such piece of
# every cell is guarded, not just the cell's first character.
SEPARATORS = re.compile(r"([,;\t])")
FORMULA_START = re.compile(r"\s*[=+\-@\r]")
PLAIN_NUMBER = re.compile(r"\s*[+-]?[0-9]+(\.[0-9]+)?\s*")


def spreadsheet_safe(text):
    """`text` with a `'` before every piece (split at `,` `;` tab) that a spreadsheet would take
    for a formula; plain numbers (-5, +79161234567) are left as they are."""
    pieces = SEPARATORS.split(text)  # pieces at even places, separators at odd ones
    for index in range(0, len(pieces), 2):
        piece = pieces[index]
        if FORMULA_START.match(piece) and not PLAIN_NUMBER.fullmatch(piece):
            pieces[index] = "'" + piece
    return "".join(pieces)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat(timespec="seconds")
    return spreadsheet_safe(str(value))


@login_required
def audit_csv(request):
    form, queryset = _filtered(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="monitoring-audit.csv"'
    writer = csv.writer(response)
    writer.writerow([str(label) for _field, label in CSV_COLUMNS])
    fields = [field for field, _label in CSV_COLUMNS]
    why_at = fields.index("outcome_detail")
    for row in queryset.values_list(*fields, "outcome_args").iterator():
        values = list(row[:-1])
        values[why_at] = render_why(row[fields.index("outcome_code")], row[-1]) or values[why_at]
        writer.writerow([_cell(value) for value in values])
    return response
