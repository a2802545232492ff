"""Scorecards, evaluations of trainees' calls, coaching notes and the trainee's acknowledgements.

A call is (trainee, call uniqueid) everywhere: no foreign key to the call history, so a grade given
live, before the call has ended and its history row exists, needs no row to point at.

An evaluation is immutable once saved (there are no drafts: saving is submitting). A correction is
a new row with `replaces` pointing at the version it corrects and the next `version` number; both
are kept and shown. The scorecard's name, scale, thresholds and each criterion's name, weight and
critical flag are copied into the evaluation, so editing or deleting a scorecard later never changes
a result already given.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from coaching import scoring

MAX_SCALE = 100
MAX_OFFSET_SECONDS = 24 * 3600  # no call lasts a day: anything beyond is a client's mistake


class ImmutableError(Exception):
    """Raised when code tries to change or delete something already submitted."""


class Band(models.TextChoices):
    FAIL = "fail", _("Below standard")
    PASS = "pass", _("Acceptable")
    GOOD = "good", _("Good")


class ScorecardQuerySet(models.QuerySet):
    def usable_by(self, user):
        """The active scorecards `user` may grade with: admins any; a curator the site-wide ones
        (no owner) and his own."""
        active = self.filter(active=True)
        if user.is_superuser or user.role == "admin":
            return active
        return active.filter(Q(owner__isnull=True) | Q(owner=user))

    def managed_by(self, user):
        """The scorecards `user` may edit: admins all, a curator his own."""
        if user.is_superuser or user.role == "admin":
            return self.all()
        return self.filter(owner=user)


class Scorecard(models.Model):
    name = models.CharField(pgettext_lazy("scorecard", "name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), null=True, blank=True, on_delete=models.CASCADE,
        related_name="scorecards",
        help_text=_("Empty: a site-wide scorecard every curator may use. A curator's own scorecard is his alone."),
    )
    scale_max = models.PositiveSmallIntegerField(
        _("top of the scale"), default=5, help_text=_("Each criterion is scored from 0 to this number."),
    )
    pass_threshold = models.PositiveSmallIntegerField(
        _("acceptable from (%)"), default=70, help_text=_("Below this percentage the result is shown red."),
    )
    good_threshold = models.PositiveSmallIntegerField(
        _("good from (%)"), default=85,
        help_text=_("From this percentage on the result is shown green; in between amber."),
    )
    active = models.BooleanField(_("in use"), default=True, help_text=_("Untick to stop offering it for new grades."))
    created_at = models.DateTimeField(pgettext_lazy("scorecard", "created"), auto_now_add=True)

    objects = ScorecardQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("scorecard")
        verbose_name_plural = _("scorecards")

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if not 1 <= (self.scale_max or 0) <= MAX_SCALE:
            raise ValidationError(
                {"scale_max": _("The scale goes from 0 to a number between 1 and %(max)s.") % {"max": MAX_SCALE}})
        if self.pass_threshold is not None and self.pass_threshold > 100:
            raise ValidationError({"pass_threshold": _("A percentage is at most 100.")})
        if self.good_threshold is not None and self.good_threshold > 100:
            raise ValidationError({"good_threshold": _("A percentage is at most 100.")})
        if (self.pass_threshold is not None and self.good_threshold is not None
                and self.pass_threshold > self.good_threshold):
            raise ValidationError({"good_threshold": _("“Good” cannot start below “acceptable”.")})
        if self.owner_id is not None and self.owner.role == "trainee":
            raise ValidationError({"owner": _("Trainees do not own scorecards.")})

    def scoring_criteria(self, criteria=None):
        criteria = list(self.criteria.all()) if criteria is None else criteria
        return [scoring.Criterion(c.pk, c.weight, c.critical) for c in criteria]

    def as_json(self):
        """What the live panel needs to draw the form."""
        return {
            "id": self.pk, "name": self.name, "description": self.description, "scale_max": self.scale_max,
            "pass_threshold": self.pass_threshold, "good_threshold": self.good_threshold,
            "criteria": [
                {"id": c.pk, "name": c.name, "description": c.description, "weight": c.weight, "critical": c.critical}
                for c in self.criteria.all()
            ],
        }


class Criterion(models.Model):
    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="criteria",
                                  verbose_name=_("scorecard"))
    name = models.CharField(_("criterion"), max_length=160)
    description = models.CharField(_("what to listen for"), max_length=300, blank=True)
    weight = models.PositiveSmallIntegerField(_("weight"), default=1)
    critical = models.BooleanField(
        _("critical"), default=False, help_text=_("Scored 0, it fails the whole call whatever the percentage."),
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("criterion")
        verbose_name_plural = _("criteria")

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if not self.weight or self.weight < 1:
            raise ValidationError({"weight": _("The weight is a whole number from 1.")})


# What deleting a scorecard or a grader's account does to the grades (on_delete=SET_NULL): the link
# goes, the names copied into the grade stay, the grade itself is unchanged.
DETACHABLE = {"evaluator", "scorecard"}


class EvaluationQuerySet(models.QuerySet):
    def update(self, **kwargs):
        if kwargs and set(kwargs) <= DETACHABLE and all(value is None for value in kwargs.values()):
            return super().update(**kwargs)
        raise ImmutableError("a submitted evaluation is never changed")

    def delete(self):
        raise ImmutableError("a submitted evaluation is never deleted")

    def current(self):
        """Versions no correction has replaced (the ones a list shows and the trainee is asked about)."""
        return self.filter(replaced_by__isnull=True)

    def acknowledged(self, value=True):
        found = Exists(Acknowledgement.objects.filter(evaluation=OuterRef("pk")))
        return self.filter(found) if value else self.exclude(found)

    def of_call(self, trainee, call_uniqueid):
        return self.filter(trainee=trainee, call_uniqueid=call_uniqueid)


class Evaluation(models.Model):
    trainee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("trainee"), on_delete=models.PROTECT,
                                related_name="evaluations")
    call_uniqueid = models.CharField(_("call uniqueid"), max_length=64, db_index=True)
    evaluator = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("graded by"), null=True,
                                  on_delete=models.SET_NULL, related_name="evaluations_given")
    evaluator_label = models.CharField(_("graded by (name)"), max_length=160)
    scorecard = models.ForeignKey(Scorecard, verbose_name=_("scorecard"), null=True, on_delete=models.SET_NULL,
                                  related_name="evaluations")
    scorecard_name = models.CharField(_("scorecard (name)"), max_length=120)
    scale_max = models.PositiveSmallIntegerField(_("top of the scale"))
    pass_threshold = models.PositiveSmallIntegerField(_("acceptable from (%)"))
    good_threshold = models.PositiveSmallIntegerField(_("good from (%)"))
    percent = models.DecimalField(_("result (%)"), max_digits=4, decimal_places=1)
    critical_failed = models.BooleanField(_("failed on a critical criterion"), default=False)
    band = models.CharField(_("band"), max_length=8, choices=Band.choices)
    comment = models.TextField(_("comment"), blank=True)
    live = models.BooleanField(_("graded live"), default=False,
                               help_text=_("Graded while listening, whispering or barging, from the dashboard."))
    version = models.PositiveSmallIntegerField(_("version"), default=1)
    replaces = models.OneToOneField("self", verbose_name=_("corrects"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="replaced_by")
    created_at = models.DateTimeField(_("submitted"), auto_now_add=True, db_index=True)

    objects = EvaluationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")
        indexes = [models.Index(fields=["trainee", "call_uniqueid"])]
        # One line of versions per call: two first grades (or two corrections of the same version)
        # submitted at the same moment cannot both be stored.
        constraints = [
            models.UniqueConstraint(fields=["trainee", "call_uniqueid", "version"], name="one_grade_per_call_version"),
        ]

    def __str__(self):
        return f"{self.trainee} · {self.call_uniqueid} · v{self.version} · {self.percent}%"

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise ImmutableError("a submitted evaluation is never changed; submit a correction instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("a submitted evaluation is never deleted")

    @classmethod
    @transaction.atomic
    def submit(cls, *, trainee, call_uniqueid, evaluator, scorecard, scores, comment="", live=False, replaces=None):
        """Grade a call (or correct a grade: `replaces` is the version being corrected, which must be
        the call's current one). `scores` is {criterion id: int}. Raises scoring.ScoreError for
        scores that do not fit the scorecard, ValidationError for anything else wrong."""
        criteria = list(scorecard.criteria.all())
        result = scoring.evaluate(scorecard.scoring_criteria(criteria), scores, scale_max=scorecard.scale_max,
                                  pass_threshold=scorecard.pass_threshold, good_threshold=scorecard.good_threshold)
        version = 1
        if replaces is None and cls.objects.of_call(trainee, call_uniqueid).exists():
            raise ValidationError(_("This call is graded already: correct the newest version."))
        if replaces is not None:
            # Lock the corrected row: two curators correcting at once must not both win.
            replaces = cls.objects.select_for_update().get(pk=replaces.pk)
            if replaces.trainee_id != trainee.pk or replaces.call_uniqueid != call_uniqueid:
                raise ValidationError(_("A correction belongs to the same call as the grade it corrects."))
            if cls.objects.filter(replaces=replaces).exists():
                raise ValidationError(_("That version has already been corrected: correct the newest one."))
            version = replaces.version + 1
        evaluation = cls(
            trainee=trainee, call_uniqueid=call_uniqueid, evaluator=evaluator, evaluator_label=str(evaluator),
            scorecard=scorecard, scorecard_name=scorecard.name, scale_max=scorecard.scale_max,
            pass_threshold=scorecard.pass_threshold, good_threshold=scorecard.good_threshold,
            percent=result.percent, critical_failed=result.critical_failed, band=result.band,
            comment=comment.strip(), live=live, version=version, replaces=replaces,
        )
        evaluation.save()
        EvaluationScore.objects.bulk_create([
            EvaluationScore(evaluation=evaluation, criterion=criterion, criterion_name=criterion.name,
                            weight=criterion.weight, critical=criterion.critical, score=scores[criterion.pk],
                            position=index)
            for index, criterion in enumerate(criteria)
        ])
        return evaluation

    def acknowledgement(self):
        return Acknowledgement.objects.filter(evaluation=self).first()


class EvaluationScore(models.Model):
    """One criterion's score in one evaluation, with the criterion as it was then."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="scores",
                                   verbose_name=_("evaluation"))
    criterion = models.ForeignKey(Criterion, null=True, on_delete=models.SET_NULL, related_name="+",
                                  verbose_name=_("criterion"))
    criterion_name = models.CharField(_("criterion"), max_length=160)
    weight = models.PositiveSmallIntegerField(_("weight"))
    critical = models.BooleanField(_("critical"), default=False)
    score = models.PositiveSmallIntegerField(_("score"))
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("score")
        verbose_name_plural = _("scores")

    def __str__(self):
        return f"{self.criterion_name}: {self.score}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableError("a submitted score is never changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("a submitted score is never deleted")

    @property
    def failed_critical(self):
        return self.critical and self.score == 0


class CoachingNote(models.Model):
    """A note on a trainee's call, stamped with the offset into the call it is about ("0:42")."""

    trainee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("trainee"), on_delete=models.PROTECT,
                                related_name="coaching_notes")
    call_uniqueid = models.CharField(_("call uniqueid"), max_length=64, db_index=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("author"), null=True,
                               on_delete=models.SET_NULL, related_name="coaching_notes_written")
    author_label = models.CharField(_("author (name)"), max_length=160)
    offset_seconds = models.PositiveIntegerField(_("at (seconds into the call)"))
    text = models.TextField(_("note"), max_length=2000)
    live = models.BooleanField(_("written live"), default=False)
    created_at = models.DateTimeField(_("written"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["offset_seconds", "created_at", "pk"]
        verbose_name = _("coaching note")
        verbose_name_plural = _("coaching notes")
        indexes = [models.Index(fields=["trainee", "call_uniqueid"])]

    def __str__(self):
        return f"{format_offset(self.offset_seconds)} — {self.text[:60]}"

    def clean(self):
        super().clean()
        if self.offset_seconds is not None and self.offset_seconds > MAX_OFFSET_SECONDS:
            raise ValidationError({"offset_seconds": _("That is further into the call than any call lasts.")})
        if not (self.text or "").strip():
            raise ValidationError({"text": _("Write the note.")})

    @property
    def offset_label(self):
        return format_offset(self.offset_seconds)


class Acknowledgement(models.Model):
    """The trainee has read an evaluation (or a note), agreeing or disputing it, with a comment."""

    trainee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("trainee"), on_delete=models.PROTECT,
                                related_name="coaching_acknowledgements")
    evaluation = models.OneToOneField(Evaluation, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="acknowledgement_row", verbose_name=_("evaluation"))
    note = models.OneToOneField(CoachingNote, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="acknowledgement_row", verbose_name=_("coaching note"))
    disputed = models.BooleanField(_("disputed"), default=False)
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    created_at = models.DateTimeField(_("acknowledged"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("acknowledgement")
        verbose_name_plural = _("acknowledgements")
        constraints = [
            models.CheckConstraint(
                condition=(Q(evaluation__isnull=False) & Q(note__isnull=True))
                | (Q(evaluation__isnull=True) & Q(note__isnull=False)),
                name="acknowledges_one_thing",
            ),
        ]

    def __str__(self):
        return f"{self.trainee}: {self.evaluation or self.note}"


def format_offset(seconds):
    """0:42, 12:05, 1:02:03."""
    seconds = max(0, int(seconds or 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def parse_offset(text):
    """"42", "0:42", "1:02:03" -> seconds; ValueError for anything else."""
    parts = (text or "").strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(part.isdigit() and part.isascii() for part in parts):
        raise ValueError(text)
    numbers = [int(part) for part in parts]
    if any(number >= 60 for number in numbers[1:]):
        raise ValueError(text)
    seconds = 0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds
