"""The help requests section of a call's page (history's call page includes it): the requests the
trainee raised during that call, as far as the reader may see them, with how each ended and the
response time; nothing when there were none."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from helprequests.models import EndReason, HelpRequest

pytestmark = pytest.mark.django_db

SECTION = Template("{% load helprequests %}{% help_call_section trainee uniqueid %}")


def render(user, trainee, uniqueid):
    request = RequestFactory().get("/history/call/1/")
    request.user = user
    return SECTION.render(Context({"request": request, "trainee": trainee, "uniqueid": uniqueid}))


def test_the_calls_requests_with_who_joined_and_the_response_time(demo_roster):
    ivanov, petrova = demo_roster.users["ivanov"], demo_roster.users["petrova"]
    raised = timezone.now()
    HelpRequest.objects.create(trainee=ivanov, trainee_label="Dmitry Ivanov", curator=petrova, call_uniqueid="1795.20",
                               raised_at=raised, ended_at=raised + timedelta(seconds=75), end_reason=EndReason.JOINED,
                               responder=petrova, responder_label="Anna Petrova", mode="whisper", response_seconds=75.2)
    HelpRequest.objects.create(trainee=ivanov, trainee_label="Dmitry Ivanov", curator=petrova, call_uniqueid="1795.99",
                               raised_at=raised, ended_at=raised, end_reason=EndReason.CANCELLED)

    html = render(petrova, ivanov, "1795.20")

    assert "Help requests" in html and "Anna Petrova" in html and "1:15" in html and "whisper" in html
    assert "someone joined the call" in html and "cancelled" not in html  # the other call's request is not here
    assert "Anna Petrova" in render(ivanov, ivanov, "1795.20")  # the trainee himself
    assert "Anna Petrova" in render(demo_roster.admin, ivanov, "1795.20")
    assert render(demo_roster.users["smirnov"], ivanov, "1795.20").strip() == ""  # another team's curator
    assert render(petrova, ivanov, "no-such-call").strip() == ""
