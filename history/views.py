"""Call history pages (filled in below)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404

from history.models import CallRecord


@login_required
def call_list(request):
    return HttpResponse(str(CallRecord.objects.visible_to(request.user).count()))


@login_required
def call_csv(request):
    return HttpResponse("", content_type="text/csv; charset=utf-8")


@login_required
def call_detail(request, pk):
    call = get_object_or_404(CallRecord.objects.visible_to(request.user), pk=pk)
    return HttpResponse(str(call))
