"""The audit trail of every monitoring attempt (and the permissions that gate each mode)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class MonitoringSession(models.Model):
    """One row per press, written before anything is sent to the PBX."""

    class Meta:
        ordering = ["-requested_at"]
        permissions = [
            ("listen", "Can listen to a call (ChanSpy, silent)"),
            ("whisper", "Can whisper to the agent (ChanSpy w)"),
            ("barge", "Can barge into a call (ChanSpy B)"),
            ("pickup", "Can answer a ringing call from the web (PickupChan)"),
            ("dial", "Can place a call from the web (click-to-call)"),
            ("playback", "Can play a training recording to his phone"),
        ]

    requested_at = models.DateTimeField(_("requested"), auto_now_add=True, db_index=True)
