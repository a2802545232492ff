"""Call history: one row per ended conversation of a roster phone, written by the bridge.

A call is identified everywhere by (person, uniqueid of the phone's channel): evaluations, notes and
help requests live in their own apps keyed that way, so a grade given during the call needs no row yet.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Direction(models.TextChoices):
    IN = "in", pgettext_lazy("call direction", "in")
    OUT = "out", pgettext_lazy("call direction", "out")
    INTERNAL = "internal", pgettext_lazy("call direction", "internal")


class CallRecordQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The person himself, his curator, and admins (everything)."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if getattr(user, "role", None) == "admin" or user.is_superuser:
            return self.all()
        if getattr(user, "role", None) == "curator":
            return self.filter(Q(person=user) | Q(person__curator=user))
        return self.filter(person=user)


class CallRecord(models.Model):
    uniqueid = models.CharField(_("uniqueid"), max_length=64, db_index=True)
    linkedid = models.CharField(_("linkedid"), max_length=64, blank=True)
    channel = models.CharField(_("channel"), max_length=200, blank=True)
    device = models.CharField(_("device"), max_length=128, blank=True)
    extension = models.ForeignKey(
        "accounts.Extension", verbose_name=_("extension"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="call_records",
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("person"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="call_records",
    )
    # Copied so the row still reads right after the roster changes (like the audit rows).
    person_label = models.CharField(_("person (name)"), max_length=160, blank=True)
    direction = models.CharField(_("direction"), max_length=16, choices=Direction.choices, db_index=True)
    other_number = models.CharField(_("other party's number"), max_length=80, blank=True)
    other_name = models.CharField(_("other party's name"), max_length=160, blank=True)
    ring_started_at = models.DateTimeField(_("ring started"), db_index=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"))
    ring_seconds = models.FloatField(_("ring time, s"), default=0)
    talk_seconds = models.FloatField(_("talk time, s"), default=0)
    hangup_cause = models.IntegerField(_("hang-up cause"), null=True, blank=True)
    monitored = models.BooleanField(_("monitored"), default=False, db_index=True)
    monitor_modes = models.CharField(_("monitor modes"), max_length=200, blank=True, help_text=_("comma separated"))
    recording_file = models.CharField(
        _("recording"), max_length=255, blank=True, help_text=_("relative to CALL_RECORDINGS_ROOT")
    )

    objects = CallRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-ring_started_at", "-pk"]
        verbose_name = _("call record")
        verbose_name_plural = _("call records")
        indexes = [models.Index(fields=["person", "-ring_started_at"], name="history_person_started")]

    def __str__(self):
        return f"{self.person_label or self.device} {self.direction} {self.other_number} ({self.ring_started_at:%Y-%m-%d %H:%M})"

    @property
    def answered(self):
        return self.answered_at is not None

    def hangup_cause_text(self):
        from history.causes import cause_text

        return cause_text(self.hangup_cause)

    def monitor_mode_list(self):
        return [mode for mode in self.monitor_modes.split(",") if mode]

    def monitor_modes_text(self):
        """The modes in the page's language, in the order used (`listen → barge`)."""
        from supervision.models import Mode

        words = dict(Mode.choices)
        return " → ".join(str(words.get(mode, mode)) for mode in self.monitor_mode_list())
