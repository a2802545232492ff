"""The roster: who is who (admin, curator, trainee), who coaches whom, and which phones they own."""

from django.contrib.auth.models import AbstractUser, Group, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .validators import validate_context, validate_display_text, validate_resource


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    CURATOR = "curator", _("Curator")
    TRAINEE = "trainee", _("Trainee")


# Default groups; each user is kept in the one matching his role (see User.save).
ROLE_GROUPS = {Role.ADMIN: "Admins", Role.CURATOR: "Curators", Role.TRAINEE: "Trainees"}


class RosterUserManager(UserManager):
    def create_superuser(self, username, email=None, password=None, **extra_fields):
        # `createsuperuser` makes the person who keeps the roster, not a trainee without a curator.
        extra_fields.setdefault("role", Role.ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.TRAINEE)
    curator = models.ForeignKey(
        "self",
        verbose_name=_("curator"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="trainees",
        limit_choices_to={"role": Role.CURATOR},
    )

    objects = RosterUserManager()

    class Meta:
        ordering = ["username"]
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=~Q(role="trainee") | Q(curator__isnull=False),
                name="trainee_has_curator",
                violation_error_message=_("A trainee must have a curator."),
            ),
            models.CheckConstraint(
                condition=Q(role="trainee") | Q(curator__isnull=True),
                name="only_trainees_have_curator",
                violation_error_message=_("Only trainees have a curator."),
            ),
        ]

    def __str__(self):
        return self.get_full_name() or self.username

    @property
    def is_admin(self):
        return self.role == Role.ADMIN

    @property
    def is_curator(self):
        return self.role == Role.CURATOR

    @property
    def is_trainee(self):
        return self.role == Role.TRAINEE

    def clean(self):
        super().clean()
        validate_display_text(self.first_name)
        validate_display_text(self.last_name)
        if self.role == Role.TRAINEE:
            if self.curator_id is None:
                raise ValidationError({"curator": _("A trainee must have a curator.")})
            if self.curator_id == self.pk:
                raise ValidationError({"curator": _("A trainee cannot be his own curator.")})
            if self.curator.role != Role.CURATOR:
                raise ValidationError({"curator": _("The curator must have the curator role.")})
        elif self.curator_id is not None:
            raise ValidationError({"curator": _("Only trainees have a curator.")})
        if self.pk and self.role != Role.CURATOR and self.trainees.exists():
            raise ValidationError({"role": _("Reassign this curator's trainees before changing the role.")})

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        self.sync_role_group()

    def sync_role_group(self):
        """Keep the user in exactly the default group of his role (the groups hold the permissions)."""
        wanted = ROLE_GROUPS[Role(self.role)]
        role_groups = Group.objects.filter(name__in=ROLE_GROUPS.values())
        current = set(self.groups.filter(pk__in=role_groups).values_list("name", flat=True))
        if current != {wanted}:
            self.groups.remove(*role_groups)
            if not Group.objects.filter(name=wanted).exists():
                # Created with its default permissions, not empty (roles.py grants them on creation only).
                from .roles import ensure_default_groups

                ensure_default_groups()
            self.groups.add(Group.objects.get(name=wanted))

    def monitored_users(self):
        """People whose cards this user sees: himself first, then his team (admins: everyone)."""
        if self.role == Role.ADMIN:
            return User.objects.filter(is_active=True).exclude(pk=self.pk)
        if self.role == Role.CURATOR:
            return User.objects.filter(is_active=True, curator=self)
        if self.curator_id:
            return User.objects.filter(is_active=True, pk=self.curator_id)
        return User.objects.none()


class Technology(models.TextChoices):
    SIP = "SIP", "SIP (chan_sip)"
    PJSIP = "PJSIP", "PJSIP"
    IAX2 = "IAX2", "IAX2"
    DAHDI = "DAHDI", "DAHDI"
    LOCAL = "Local", "Local"


class PhonePreset(models.TextChoices):
    CALL_INFO = "call-info", _("Cisco / Linksys / Yealink / Grandstream (Call-Info: answer-after=0)")
    ALERT_INFO = "alert-info", _("Polycom (Alert-Info: Ring Answer)")
    NONE = "none", _("No auto-answer")


# What chan_sip needs in Variable: to make the phone answer by itself (the AMI variable parser
# drops the quotes and backslash: the phone receives `Call-Info: ;answer-after=0`).
SIP_AUTOANSWER = {
    PhonePreset.CALL_INFO: 'SIPADDHEADER="Call-Info:\\;answer-after=0"',
    PhonePreset.ALERT_INFO: 'SIPADDHEADER="Alert-Info: Ring Answer"',
}
# Through a Local channel the header is added by the documented dialplan context, which reads this.
LOCAL_AUTOANSWER = {
    PhonePreset.CALL_INFO: "AUTOANSWER=call-info",
    PhonePreset.ALERT_INFO: "AUTOANSWER=alert-info",
}


class Extension(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="extensions", verbose_name=_("owner"))
    technology = models.CharField(_("technology"), max_length=8, choices=Technology.choices, default=Technology.SIP)
    resource = models.CharField(_("resource"), max_length=40, validators=[validate_resource], help_text=_("e.g. 104"))
    display_name = models.CharField(_("display name"), max_length=80, blank=True, validators=[validate_display_text])
    phone_preset = models.CharField(
        _("phone preset"), max_length=16, choices=PhonePreset.choices, default=PhonePreset.CALL_INFO
    )
    originate_context = models.CharField(
        _("originate via Local channel into context"),
        max_length=80,
        blank=True,
        validators=[validate_context],
        help_text=_("PJSIP sites: ring the phone as Local/<resource>@<context> so the dialplan adds the auto-answer header. Local extensions: their context."),
    )
    monitorable = models.BooleanField(
        _("may be monitored"), default=True, help_text=_("Untick to forbid listen/whisper/barge on this extension.")
    )
    record_calls = models.BooleanField(
        _("record calls"), default=False,
        help_text=_("The dashboard starts MixMonitor on this phone's answered calls (the PBX's AMI user needs write=system)."),
    )

    class Meta:
        ordering = ["technology", "resource"]
        verbose_name = _("extension")
        verbose_name_plural = _("extensions")
        constraints = [
            # Two rules because a Local device includes its context and the others do not
            # (SIP/104 is the same phone whatever context it is originated through).
            models.UniqueConstraint(
                fields=["technology", "resource"],
                condition=~Q(technology="Local"),
                name="unique_device",
                violation_error_message=_("This device already belongs to another extension."),
            ),
            models.UniqueConstraint(
                fields=["resource", "originate_context"],
                condition=Q(technology="Local"),
                name="unique_local_device",
                violation_error_message=_("This device already belongs to another extension."),
            ),
        ]

    def __str__(self):
        label = self.display_name or str(self.user)
        return f"{self.device} ({label})"

    def clean(self):
        super().clean()
        if self.technology == Technology.LOCAL and not self.originate_context:
            raise ValidationError({"originate_context": _("A Local extension needs its context.")})

    def validate_unique(self, exclude=None):
        """The same phone may not belong to two extensions. Checked here, not in clean(), because
        full_clean() leaves out the fields that already failed validation: a resource holding a NUL
        byte must never reach a query (PostgreSQL refuses such a literal outright)."""
        super().validate_unique(exclude=exclude)
        if exclude and {"technology", "resource", "originate_context"} & set(exclude):
            return
        owner = self.device_owner()
        if owner is not None:
            raise ValidationError(
                {"resource": _("%(device)s already belongs to %(owner)s.") % {"device": self.device, "owner": owner}}
            )

    def same_device(self):
        """Other extensions naming the same phone (the database constraints, as a query)."""
        if self.technology == Technology.LOCAL:
            found = Extension.objects.filter(
                technology=Technology.LOCAL, resource=self.resource, originate_context=self.originate_context
            )
        else:
            found = Extension.objects.filter(technology=self.technology, resource=self.resource)
        return found.exclude(pk=self.pk) if self.pk else found

    def device_owner(self):
        """The user who already owns this device on another extension, or None."""
        other = self.same_device().select_related("user").first()
        return other.user if other else None

    @property
    def device(self):
        """How Asterisk names this phone's channels, minus the `-xxxxxxxx` suffix (`SIP/104`)."""
        if self.technology == Technology.LOCAL:
            return f"Local/{self.resource}@{self.originate_context}"
        return f"{self.technology}/{self.resource}"

    @property
    def dial_string(self):
        """What Originate's Channel: gets to ring this phone."""
        if self.originate_context:
            return f"Local/{self.resource}@{self.originate_context}"
        return self.device

    def autoanswer_variables(self):
        """`Variable:` values that make this phone answer an originated call by itself."""
        if self.phone_preset == PhonePreset.NONE:
            return []
        table = LOCAL_AUTOANSWER if self.originate_context else SIP_AUTOANSWER
        if not self.originate_context and self.technology != Technology.SIP:
            return []  # only chan_sip reads SIPADDHEADER; other technologies go through Local.
        return [table[PhonePreset(self.phone_preset)]]
