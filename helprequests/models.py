"""One row per help request a trainee raised during a call, written by the bridge
(`helprequests.live`): when it was raised, whom it reached, how it ended and how long the answer took.

A call is named as everywhere in the product: (person, the call's uniqueid from the board)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class EndReason(models.TextChoices):
    JOINED = "joined", _("someone joined the call")
    CANCELLED = "cancelled", _("cancelled by the trainee")
    CALL_ENDED = "call_ended", _("the call ended")
    INTERRUPTED = "interrupted", _("interrupted (the server restarted or lost the PBX)")


class Audience(models.TextChoices):
    CURATOR = "curator", _("the curator")
    ADMINS = "admins", _("the admins (the curator was not online)")
    NOBODY = "nobody", _("nobody was online")


class HelpRequestQuerySet(models.QuerySet):
    def open(self):
        return self.filter(ended_at__isnull=True)

    def visible_to(self, user):
        """Admins see every request; a curator his trainees' and those he answered; a trainee his own."""
        role = getattr(user, "role", None)
        if role == "admin" or user.is_superuser:
            return self.all()
        if role == "curator":
            return self.filter(Q(curator=user) | Q(responder=user) | Q(trainee__curator=user))
        return self.filter(trainee=user)

    def for_call(self, person, uniqueid):
        """The requests a person raised during one call (the history's call page)."""
        return self.filter(trainee=person, call_uniqueid=uniqueid).order_by("raised_at")


class HelpRequest(models.Model):
    trainee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("trainee"), null=True,
                                on_delete=models.SET_NULL, related_name="help_requests")
    trainee_label = models.CharField(_("trainee (name)"), max_length=160, blank=True)
    curator = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("curator"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+")
    curator_label = models.CharField(_("curator (name)"), max_length=160, blank=True)
    extension = models.ForeignKey("accounts.Extension", verbose_name=_("phone"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    device = models.CharField(_("device"), max_length=128, blank=True)
    call_uniqueid = models.CharField(_("call uniqueid"), max_length=64, db_index=True)
    call_channel = models.CharField(_("call channel"), max_length=200, blank=True)
    raised_at = models.DateTimeField(_("raised"), db_index=True)
    audience = models.CharField(_("first told"), max_length=16, choices=Audience.choices, default=Audience.CURATOR)
    escalated_at = models.DateTimeField(_("shown to the admins"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(_("how it ended"), max_length=16, choices=EndReason.choices, blank=True)
    responder = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("joined by"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    responder_label = models.CharField(_("joined by (name)"), max_length=160, blank=True)
    mode = models.CharField(_("joined as"), max_length=16, blank=True)
    response_seconds = models.FloatField(_("response time (s)"), null=True, blank=True)

    objects = HelpRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-raised_at", "-pk"]
        verbose_name = _("help request")
        verbose_name_plural = _("help requests")

    def __str__(self):
        return f"{self.trainee_label} ({self.raised_at:%Y-%m-%d %H:%M:%S}, {self.end_reason or 'open'})"
