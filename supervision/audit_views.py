"""The audit trail pages: who monitored whom, how, when and with what outcome.

Admins see every row; curators the rows of their own presses; trainees have no audit page.
The same filters drive the page and the CSV export.
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

from accounts.models import Role
from supervision.models import MonitoringSession, Mode, Outcome

PAGE_SIZE = 100
CSV_COLUMNS = [
    ("requested_at", _("requested")),
    ("user_label", _("who")),
    ("from_device", _("from phone")),
    ("target_label", _("monitored person")),
    ("target_device", _("target phone")),
    ("target_channel", _("target channel")),
    ("kind", _("kind")),
    ("mode", _("mode")),
    ("modes", _("modes used")),
    ("reason", _("decision")),
    ("outcome", _("outcome")),
    ("outcome_detail", _("why")),
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


def _date_field(label):
    return forms.DateField(label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}),
                           validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)])


def may_see_audit(user):
    return user.is_authenticated and user.is_active and (user.is_superuser or user.role in (Role.ADMIN, Role.CURATOR))


class AuditFilter(forms.Form):
    person = forms.CharField(label=_("Person"), required=False, max_length=150,
                             help_text=_("who pressed, or who was monitored (name or login)"))
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


@login_required
def audit(request):
    form, queryset = _filtered(request)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
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
    for row in queryset.values_list(*[field for field, _label in CSV_COLUMNS]).iterator():
        writer.writerow([_cell(value) for value in row])
    return response
