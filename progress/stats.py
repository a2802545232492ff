"""A trainee's progress in numbers, and a curator's team side by side: plain functions over the
call history (history.CallRecord), the coaching app's evaluations and notes and the help requests.

Every figure comes from ORM aggregates, a fixed number of queries whatever the number of calls,
days or trainees (tests/test_progress_stats.py counts them). Days and weeks are the site's time
zone's (TIME_ZONE). An evaluation counts in its current version only: a corrected grade counts
once, as corrected. A call counts as evaluated when its (person, uniqueid) has an evaluation.
"""

import datetime
from dataclasses import dataclass, field

from django.db.models import Avg, Count, Exists, Max, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Role, User
from coaching.models import CoachingNote, Evaluation, EvaluationScore
from helprequests.models import HelpRequest
from history.models import CallRecord

DAYS = 14  # the per-day charts
WEEKS = 8  # the per-week table and chart
SCORE_DAYS = 90  # the score charts
TEAM_DAYS = 30  # the team table's window ("last 30 days"); calls also over the last 7
LATEST = 5  # latest notes and evaluations shown


def may_view(viewer, trainee):
    """The trainee himself, his curator, admins. Anyone else gets a 404 (the page does not say
    whether the person exists)."""
    if viewer is None or not viewer.is_authenticated or not viewer.is_active or trainee is None:
        return False
    if viewer.is_superuser or viewer.role == Role.ADMIN:
        return True
    return viewer.pk == trainee.pk or (trainee.curator_id is not None and trainee.curator_id == viewer.pk)


def viewable_trainee(viewer, pk):
    """The trainee `pk` if `viewer` may see his page, else None."""
    trainee = User.objects.filter(pk=pk, role=Role.TRAINEE).select_related("curator").first()
    return trainee if may_view(viewer, trainee) else None


def _evaluated():
    """An Exists() true for a call row that has a (current) evaluation."""
    return Exists(Evaluation.objects.filter(trainee_id=OuterRef("person_id"), call_uniqueid=OuterRef("uniqueid"),
                                            replaced_by__isnull=True))


FIGURES = ("calls", "answered", "ring_seconds", "talk_seconds", "monitored", "evaluated")


def _call_figures(prefix, within=None):
    """The aggregate expressions of a group of calls, named `<prefix><figure>` (an annotation may
    not take a field's own name), over the calls matching `within` (a Q) or all of them."""
    within = within if within is not None else Q()
    return {
        f"{prefix}calls": Count("pk", filter=within),
        f"{prefix}answered": Count("pk", filter=within & Q(answered_at__isnull=False)),
        f"{prefix}ring_seconds": Sum("ring_seconds", filter=within),
        f"{prefix}talk_seconds": Sum("talk_seconds", filter=within),
        f"{prefix}monitored": Count("pk", filter=within & Q(monitored=True)),
        f"{prefix}evaluated": Count("pk", filter=within & Q(is_evaluated=True)),
    }


@dataclass
class Figures:
    """The numbers of a group of calls (a day, a week, a trainee's window)."""

    calls: int = 0
    answered: int = 0
    ring_seconds: float = 0.0
    talk_seconds: float = 0.0
    monitored: int = 0
    evaluated: int = 0

    @classmethod
    def of(cls, row, prefix):
        return cls(**{name: row.get(prefix + name) or 0 for name in FIGURES})

    def __add__(self, other):
        return Figures(**{name: getattr(self, name) + getattr(other, name) for name in self.__dataclass_fields__})

    @property
    def average_ring(self):
        """Seconds a call rang before it was answered or given up, on average (None without calls)."""
        return self.ring_seconds / self.calls if self.calls else None

    @property
    def average_talk(self):
        return self.talk_seconds / self.answered if self.answered else None

    @property
    def monitored_share(self):
        return share(self.monitored, self.calls)

    @property
    def evaluated_share(self):
        return share(self.evaluated, self.calls)


def share(part, whole):
    """Percent (0-100, a float) or None when there is nothing to divide."""
    return 100.0 * part / whole if whole else None


@dataclass
class Point:
    """One value on a chart's time axis: `when` a date (or datetime), `value` a number."""

    when: object
    value: float
    label: str = ""


@dataclass
class TraineeProgress:
    trainee: object
    days: list  # [(date, Figures)], oldest first, every day of the window
    weeks: list  # [(monday, Figures)], oldest first, every week of the window
    total: Figures  # over the weeks' window
    results: list  # [Point(created_at, percent)] of current evaluations, oldest first
    criteria: list  # [(criterion name, [Point(created_at, percent of the scale)])], in scorecard order
    latest_evaluations: list
    latest_notes: list
    open_help: list
    day_start: datetime.date = None
    week_start: datetime.date = None


def _local_midnight(day):
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=timezone.get_current_timezone())


def trainee_progress(trainee, *, today=None):
    """Everything the trainee's page shows, in six queries."""
    today = today or timezone.localdate()
    zone = timezone.get_current_timezone()
    day_start = today - datetime.timedelta(days=DAYS - 1)
    week_start = today - datetime.timedelta(days=today.weekday()) - datetime.timedelta(weeks=WEEKS - 1)
    since = _local_midnight(min(day_start, week_start))
    calls = CallRecord.objects.filter(person=trainee, ring_started_at__gte=since).annotate(is_evaluated=_evaluated())

    # 1. One row per local day of the window (the weeks are summed from the days, no second query).
    by_day = {row["day"]: Figures.of(row, "n_") for row in
              calls.annotate(day=TruncDate("ring_started_at", tzinfo=zone)).values("day")
              .annotate(**_call_figures("n_")).order_by("day")}
    every_day = [min(day_start, week_start) + datetime.timedelta(days=n)
                 for n in range((today - min(day_start, week_start)).days + 1)]
    days = [(day, by_day.get(day, Figures())) for day in every_day if day >= day_start]
    weeks = []
    for n in range(WEEKS):
        monday = week_start + datetime.timedelta(weeks=n)
        figures = Figures()
        for offset in range(7):
            figures = figures + by_day.get(monday + datetime.timedelta(days=offset), Figures())
        weeks.append((monday, figures))
    total = Figures()
    for _monday, figures in weeks:
        total = total + figures

    # 2. The result of each current evaluation; 3. each criterion's score in them.
    score_since = _local_midnight(today - datetime.timedelta(days=SCORE_DAYS - 1))
    current = Evaluation.objects.current().filter(trainee=trainee)
    results = [Point(row["created_at"], float(row["percent"]))
               for row in current.filter(created_at__gte=score_since).order_by("created_at", "pk")
               .values("created_at", "percent")]
    criteria = {}
    scores = (EvaluationScore.objects
              .filter(evaluation__trainee=trainee, evaluation__replaced_by__isnull=True,
                      evaluation__created_at__gte=score_since)
              .order_by("evaluation__created_at", "evaluation_id", "position")
              .values("criterion_name", "score", "evaluation__scale_max", "evaluation__created_at", "position"))
    order = {}
    for row in scores:
        name = row["criterion_name"]
        order.setdefault(name, (row["position"], len(order)))
        scale = row["evaluation__scale_max"] or 1
        criteria.setdefault(name, []).append(Point(row["evaluation__created_at"], 100.0 * row["score"] / scale,
                                                   f"{row['score']}/{scale}"))
    criteria = sorted(criteria.items(), key=lambda item: order[item[0]])

    # 4. Latest evaluations, 5. latest notes, 6. open help requests.
    latest_evaluations = list(current.order_by("-created_at", "-pk")[:LATEST])
    latest_notes = list(CoachingNote.objects.filter(trainee=trainee).order_by("-created_at", "-pk")[:LATEST])
    open_help = list(HelpRequest.objects.open().filter(trainee=trainee).order_by("-raised_at"))
    return TraineeProgress(trainee=trainee, days=days, weeks=weeks, total=total, results=results,
                           criteria=criteria, latest_evaluations=latest_evaluations, latest_notes=latest_notes,
                           open_help=open_help, day_start=day_start, week_start=week_start)


# --- the team table ------------------------------------------------------------------------------


@dataclass
class TeamRow:
    trainee: object
    week: Figures = field(default_factory=Figures)  # the last 7 days
    month: Figures = field(default_factory=Figures)  # the last TEAM_DAYS days
    average_result: float | None = None  # mean percent of the current evaluations of the window
    evaluations: int = 0
    below_standard: int = 0  # of those, how many in the "fail" band
    last_evaluated: datetime.datetime | None = None  # ever
    open_help: int = 0
    help_requests: int = 0  # raised in the window

    @property
    def attention(self):
        """Why this trainee may need his curator now, most pressing first: a list of codes
        (the page words them). Empty when nothing stands out."""
        reasons = []
        if self.open_help:
            reasons.append("open_help")
        if self.average_result is not None and self.below_standard * 2 >= self.evaluations:
            reasons.append("below_standard")
        if self.month.calls and not self.evaluations:
            reasons.append("not_evaluated")
        if self.help_requests >= 3:
            reasons.append("asks_often")
        if self.month.calls and not self.month.monitored:
            reasons.append("not_monitored")
        return reasons

    @property
    def attention_rank(self):
        """A number to sort by: the more pressing the reasons, the higher."""
        weights = {"open_help": 1000, "below_standard": 100, "asks_often": 30, "not_evaluated": 20,
                   "not_monitored": 10}
        rank = sum(weights[reason] for reason in self.attention)
        if self.average_result is not None:
            rank += (100 - self.average_result) / 10  # the lower the result, the more he needs help
        return rank


def team_trainees(viewer):
    """The trainees a team page lists: a curator's own; for admins every trainee."""
    trainees = User.objects.filter(role=Role.TRAINEE, is_active=True).select_related("curator")
    if viewer.is_superuser or viewer.role == Role.ADMIN:
        return trainees
    if viewer.role == Role.CURATOR:
        return trainees.filter(curator=viewer)
    return trainees.none()


def team_rows(trainees, *, now=None):
    """One TeamRow per trainee of the queryset `trainees`, in four queries however many they are."""
    now = now or timezone.now()
    month_start = _local_midnight(timezone.localdate(now) - datetime.timedelta(days=TEAM_DAYS - 1))
    week_start = _local_midnight(timezone.localdate(now) - datetime.timedelta(days=6))
    rows = {trainee.pk: TeamRow(trainee) for trainee in trainees.order_by("first_name", "last_name", "username")}
    if not rows:
        return []
    ids = list(rows)

    calls = (CallRecord.objects.filter(person_id__in=ids, ring_started_at__gte=month_start)
             .annotate(is_evaluated=_evaluated()).values("person_id"))
    figures = {**_call_figures("m_"), **_call_figures("w_", Q(ring_started_at__gte=week_start))}
    for row in calls.annotate(**figures).order_by():
        team_row = rows[row["person_id"]]
        team_row.month, team_row.week = Figures.of(row, "m_"), Figures.of(row, "w_")

    in_window = Q(created_at__gte=month_start)
    for row in (Evaluation.objects.current().filter(trainee_id__in=ids).values("trainee_id")
                .annotate(average=Avg("percent", filter=in_window), count=Count("pk", filter=in_window),
                          fails=Count("pk", filter=in_window & Q(band="fail")), last=Max("created_at"))
                .order_by()):
        team_row = rows[row["trainee_id"]]
        team_row.average_result = float(row["average"]) if row["average"] is not None else None
        team_row.evaluations, team_row.below_standard, team_row.last_evaluated = row["count"], row["fails"], row["last"]

    for row in (HelpRequest.objects.filter(trainee_id__in=ids)
                .filter(Q(ended_at__isnull=True) | Q(raised_at__gte=month_start)).values("trainee_id")
                .annotate(open=Count("pk", filter=Q(ended_at__isnull=True)),
                          raised=Count("pk", filter=Q(raised_at__gte=month_start)))
                .order_by()):
        team_row = rows[row["trainee_id"]]
        team_row.open_help, team_row.help_requests = row["open"], row["raised"]
    return list(rows.values())


def _none_last(value, descending):
    """A sort key that puts "no value" after every value, whichever the direction."""
    if value is None:
        return (1, 0)
    return (0, -value if descending else value)


SORT_KEYS = {
    "attention": lambda row: row.attention_rank,
    "name": None,  # by name (text): handled apart
    "calls": lambda row: row.week.calls,
    "talk": lambda row: row.month.talk_seconds,
    "ring": lambda row: row.month.average_ring,
    "monitored": lambda row: row.month.monitored_share,
    "evaluated": lambda row: row.month.evaluated_share,
    "result": lambda row: row.average_result,
    "help": lambda row: row.open_help * 1000 + row.help_requests,
    "last_evaluated": lambda row: row.last_evaluated.timestamp() if row.last_evaluated else None,
}
DEFAULT_SORT = ("attention", "desc")


def sort_rows(rows, key, order):
    """The rows sorted by a column (SORT_KEYS) ascending or descending; ties by name. An unknown
    key or order falls back to the default (most in need first)."""
    if key not in SORT_KEYS or order not in ("asc", "desc"):
        key, order = DEFAULT_SORT
    by_name = sorted(rows, key=lambda row: (str(row.trainee).casefold(), row.trainee.pk))
    if key == "name":
        return (list(reversed(by_name)) if order == "desc" else by_name), key, order
    value = SORT_KEYS[key]
    return sorted(by_name, key=lambda row: _none_last(value(row), order == "desc")), key, order
