"""Call history pages: the list (a trainee's own calls, a curator's team, an admin's everyone),
its CSV export with the same filters, and one call's page.

Who sees what is `CallRecord.objects.visible_to(user)`, on the server: a call the user may not see
is a 404, whatever its number.
"""

import csv

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _

from history.filters import CallFilter, choosable_people, coaching_installed, evaluated_calls, sees_everyone
from history.models import CallRecord
from supervision.audit_views import _cell, may_see_audit, mode_words
from supervision.models import Kind, MonitoringSession

PAGE_SIZE = 50
CSV_COLUMNS = [
    ("ring_started_at", _("ring started")),
    ("person_label", _("person")),
    ("device", _("phone")),
    ("direction", _("direction")),
    ("other_number", _("other party's number")),
    ("other_name", _("other party's name")),
    ("answered_at", _("answered")),
    ("ended_at", _("ended")),
    ("ring_seconds", _("ring time, s")),
    ("talk_seconds", _("talk time, s")),
    ("hangup_cause", _("hang-up cause")),
    ("monitored", _("monitored")),
    ("monitor_modes", _("monitor modes")),
    ("uniqueid", _("uniqueid")),
    ("linkedid", _("linkedid")),
    ("channel", _("channel")),
]


def _filtered(request):
    form = CallFilter(request.GET or None, user=request.user)
    queryset = CallRecord.objects.visible_to(request.user)
    if form.is_bound and form.is_valid():
        queryset = form.apply(queryset)
    elif form.is_bound:
        queryset = queryset.none()
    if coaching_installed():
        queryset = queryset.annotate(evaluated=evaluated_calls())
    return form, queryset


@login_required
def call_list(request):
    form, queryset = _filtered(request)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "history/list.html", {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "sees_everyone": sees_everyone(request.user),
        "sees_team": choosable_people(request.user) is not None,
        "coaching": coaching_installed(),
    })


@login_required
def call_csv(request):
    form, queryset = _filtered(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="call-history.csv"'
    writer = csv.writer(response)
    fields = [field for field, _label in CSV_COLUMNS]
    header = [str(label) for _field, label in CSV_COLUMNS] + [str(_("hang-up cause in words"))]
    evaluated = coaching_installed()
    if evaluated:
        header.append(str(_("evaluated")))
    writer.writerow(header)
    cause = fields.index("hangup_cause")
    for row in queryset.values_list(*fields, *(["evaluated"] if evaluated else [])).iterator():
        cells = [_cell(value) for value in row[:len(fields)]]
        cells.append(_cell(CallRecord(hangup_cause=row[cause]).hangup_cause_text()))
        if evaluated:
            cells.append(_cell(row[-1]))
        writer.writerow(cells)
    return response


def call_monitors(call):
    """The spy sessions on this call (audit rows of its uniqueid), oldest first, read when shown:
    a session that ended after the call was written is here as it is now."""
    rows = list(MonitoringSession.objects.filter(kind=Kind.SPY, target_uniqueid=call.uniqueid)
                .exclude(target_uniqueid="").order_by("requested_at", "pk"))
    for row in rows:
        row.mode_words = mode_words(row)
    return rows


@login_required
def call_detail(request, pk):
    call = get_object_or_404(CallRecord.objects.visible_to(request.user).select_related("person", "extension"), pk=pk)
    user = request.user
    staff = user.is_superuser or user.role in ("admin", "curator")
    return render(request, "history/call.html", {
        "call": call,
        # Who listened in is for the curators and admins; the trainee sees that and how he was monitored.
        "monitors": call_monitors(call) if staff else [],
        "shows_monitors": staff,
        "audit_link": may_see_audit(user),
        "admin_links": user.is_staff,
    })
