"""The page a throttled login gets (django-axes calls `locked_out` instead of checking the password)."""

from django.conf import settings
from django.shortcuts import render


def locked_out(request, original_response=None, credentials=None):
    return render(request, "registration/locked_out.html", {
        "limit": settings.AXES_FAILURE_LIMIT,
        "minutes": settings.LOGIN_LOCKOUT_MINUTES,
    }, status=429)
