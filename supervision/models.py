"""The audit trail of every monitoring attempt (and the permissions that gate each mode), and the
training library played to phones."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from supervision.reasons import render, row_fields


class Kind(models.TextChoices):
    SPY = "spy", _("Listen / whisper / barge")
    PICKUP = "pickup", _("Pickup")
    DIAL = "dial", _("Call")
    PLAYBACK = "playback", _("Playback")


class Mode(models.TextChoices):
    LISTEN = "listen", _("listen")
    WHISPER = "whisper", _("whisper")
    BARGE = "barge", _("barge")


class Outcome(models.TextChoices):
    REQUESTED = "requested", _("requested")  # row written, action not yet accepted by the PBX
    DENIED = "denied", _("denied")  # refused before anything was sent
    QUEUED = "queued", _("queued")  # "Originate successfully queued"
    FAILED = "failed", _("failed")  # refused by the PBX, or the phone did not answer
    ANSWERED = "answered", _("answered")  # the user's phone picked up
    SPYING = "spying", _("spying")  # ChanSpyStart seen
    ENDED = "ended", _("ended")
    INTERRUPTED = "interrupted", _("interrupted")  # the bridge or the PBX link went away midway


LIVE_OUTCOMES = (Outcome.REQUESTED, Outcome.QUEUED, Outcome.ANSWERED, Outcome.SPYING)


class MonitoringSessionQuerySet(models.QuerySet):
    def live(self):
        return self.filter(outcome__in=LIVE_OUTCOMES)

    def interrupt_open(self, reason):
        """Close every row still in flight (bridge start, PBX link lost): nothing stays open forever.
        `reason` is a supervision.reasons.Why (or, for a PBX's own words, text)."""
        return self.live().update(outcome=Outcome.INTERRUPTED, ended_at=timezone.now(), **row_fields(reason))

    def visible_to(self, user):
        """Admins see every row; everyone else the rows of his own presses."""
        if getattr(user, "role", None) == "admin" or user.is_superuser:
            return self.all()
        return self.filter(user=user)


class MonitoringSession(models.Model):
    """One row per press, written before anything is sent to the PBX (denied presses included).

    Names and devices are copied into the row so it still reads right after the roster changes."""

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.SPY)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("who"), null=True, on_delete=models.SET_NULL,
        related_name="monitoring_sessions",
    )
    user_label = models.CharField(_("who (name)"), max_length=160, blank=True)
    from_extension = models.ForeignKey(
        "accounts.Extension", verbose_name=_("from phone"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    from_device = models.CharField(_("from device"), max_length=128, blank=True)
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("monitored person"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="monitored_sessions",
    )
    target_label = models.CharField(_("monitored person (name)"), max_length=160, blank=True)
    target_extension = models.ForeignKey(
        "accounts.Extension", verbose_name=_("target phone"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    target_device = models.CharField(_("target device"), max_length=128, blank=True)
    target_channel = models.CharField(_("target channel"), max_length=200, blank=True)
    target_uniqueid = models.CharField(_("target channel uniqueid"), max_length=64, blank=True)
    mode = models.CharField(_("mode"), max_length=16, blank=True, db_index=True)
    modes = models.CharField(_("modes used"), max_length=200, blank=True, help_text=_("in order, comma separated"))
    reason = models.CharField(_("decision"), max_length=32, blank=True)
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True, db_index=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)
    spying_started_at = models.DateTimeField(_("spying from"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    action_id = models.CharField(_("ActionID"), max_length=64, blank=True, db_index=True)
    spy_channel = models.CharField(_("spy channel"), max_length=200, blank=True)
    # Channel names start again at 00000000 after an Asterisk restart: the uniqueid tells which
    # call the name meant (the audit trail, and a restarted bridge taking its spy legs back).
    spy_uniqueid = models.CharField(_("spy channel uniqueid"), max_length=64, blank=True)
    allow_switch = models.BooleanField(_("keypad switch (d)"), default=False)
    outcome = models.CharField(
        _("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.REQUESTED, db_index=True
    )
    # Why, as a reason code and its arguments (supervision.reasons), put in words in the language of
    # whoever reads the row; `outcome_detail` is the text as the presser read it, shown for rows
    # without a code (older rows, a PBX's own words).
    outcome_code = models.CharField(_("why (code)"), max_length=40, blank=True)
    outcome_args = models.JSONField(_("why (arguments)"), default=dict, blank=True)
    outcome_detail = models.CharField(_("why"), max_length=255, blank=True)
    client_address = models.CharField(_("client address"), max_length=64, blank=True)

    objects = MonitoringSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-pk"]
        verbose_name = _("monitoring session")
        verbose_name_plural = _("monitoring sessions")
        permissions = [
            ("listen", "Can listen to a call (ChanSpy, silent)"),
            ("whisper", "Can whisper to the agent (ChanSpy w)"),
            ("barge", "Can barge into a call (ChanSpy B)"),
            ("pickup", "Can answer a ringing call from the web (PickupChan)"),
            ("dial", "Can place a call from the web (click-to-call)"),
            ("playback", "Can play a training recording to his phone"),
            ("evaluate", "Can grade calls and write coaching notes"),
        ]

    def __str__(self):
        return f"{self.user_label} → {self.target_label or self.target_device} ({self.mode or self.kind}, {self.outcome})"

    def why(self):
        """Why the row ended as it did, in the active language (the stored text when there is no
        code, or its words do not fit)."""
        return render(self.outcome_code, self.outcome_args) or self.outcome_detail

    why.short_description = _("why")


# --- the training library --------------------------------------------------------------------

RECORDING_PATH_CHARS = re.compile(r"[A-Za-z0-9_/-]+")


def validate_recording_path(value):
    """A sound file as Asterisk's Playback sees it: an absolute path strictly under
    settings.RECORDINGS_ROOT, without the extension, made of letters, digits, `_`, `-` and `/`.
    Each refusal says why; the Originate builder checks the same again before sending."""
    root = settings.RECORDINGS_ROOT.rstrip("/")
    if ".." in value:
        raise ValidationError(_("“..” is not allowed in a recording's path."), code="parent")
    if not RECORDING_PATH_CHARS.fullmatch(value):
        raise ValidationError(
            _("Only letters, digits, _ - and / are allowed (no spaces, dots or file extension: Playback adds it)."),
            code="chars",
        )
    if not value.startswith(root + "/") or value.endswith("/") or "//" in value:
        raise ValidationError(
            _("The file must be under %(root)s/, e.g. %(root)s/lesson-1.") % {"root": root}, code="outside_root"
        )


class Sharing(models.TextChoices):
    PRIVATE = "private", _("only me")
    TRAINEES = "trainees", _("my trainees")
    EVERYONE = "everyone", _("everyone")


class RecordingQuerySet(models.QuerySet):
    def playable_by(self, user):
        """What `user` may play to his phone: his own, his curator's shared with trainees, and
        everything shared with everyone (admins: all)."""
        if user is None or not user.is_active:
            return self.none()
        if user.role == "admin" or user.is_superuser:
            return self.all()
        shared = models.Q(owner=user) | models.Q(sharing=Sharing.EVERYONE)
        if user.curator_id:
            shared |= models.Q(owner_id=user.curator_id, sharing=Sharing.TRAINEES)
        return self.filter(shared)


class Recording(models.Model):
    """A training recording a curator shares: played to a phone with the article's Playback."""

    title = models.CharField(_("title"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    path = models.CharField(
        _("sound file"), max_length=200, validators=[validate_recording_path],
        help_text=_("as Asterisk sees it, without the extension, e.g. /var/lib/asterisk/sounds/training/lesson-1"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.CASCADE, related_name="recordings",
    )
    sharing = models.CharField(_("shared with"), max_length=16, choices=Sharing.choices, default=Sharing.TRAINEES)
    created_at = models.DateTimeField(_("added"), auto_now_add=True)

    objects = RecordingQuerySet.as_manager()

    class Meta:
        ordering = ["title", "pk"]
        verbose_name = _("training recording")
        verbose_name_plural = _("training recordings")

    def __str__(self):
        return self.title

    def clean(self):
        super().clean()
        if self.owner_id is not None and self.owner.role not in ("curator", "admin"):
            raise ValidationError({"owner": _("Only curators and admins add recordings.")})

    def playable_by(self, user):
        return Recording.objects.playable_by(user).filter(pk=self.pk).exists()
