"""What the progress pages show, in the page's language: the charts' geometry and words built from
progress.stats (the views stay thin, the templates only lay things out)."""

import datetime

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy

from progress import charts, stats

# The team table's columns: (sort key, heading, what the number covers).
TEAM_COLUMNS = [
    ("name", pgettext_lazy("progress", "Trainee"), ""),
    ("attention", pgettext_lazy("progress", "Needs attention"), ""),
    ("calls", pgettext_lazy("progress", "Calls"), pgettext_lazy("progress", "last 7 days")),
    ("talk", pgettext_lazy("progress", "Talk time"), pgettext_lazy("progress", "last 30 days")),
    ("ring", pgettext_lazy("progress", "Average ring"), pgettext_lazy("progress", "last 30 days")),
    ("monitored", pgettext_lazy("progress", "Monitored"), pgettext_lazy("progress", "share of calls, 30 days")),
    ("evaluated", pgettext_lazy("progress", "Evaluated"), pgettext_lazy("progress", "share of calls, 30 days")),
    ("result", pgettext_lazy("progress", "Average result"), pgettext_lazy("progress", "evaluations, 30 days")),
    ("help", pgettext_lazy("progress", "Help requests"), pgettext_lazy("progress", "open / 30 days")),
    ("last_evaluated", pgettext_lazy("progress", "Last evaluated"), ""),
]

MIN_SCORE_SPAN_DAYS = 14

ATTENTION_WORDS = {
    "open_help": gettext_lazy("has an open help request"),
    "below_standard": gettext_lazy("half the grades or more below standard"),
    "not_evaluated": gettext_lazy("no evaluation in 30 days"),
    "asks_often": gettext_lazy("asks for help often"),
    "not_monitored": gettext_lazy("not listened to in 30 days"),
}


def duration(seconds):
    """1:05 (minutes:seconds) or 2:03:07; "—" for nothing to show."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def number(value):
    """A number for people in the page's language: 4,5 in Russian; 3 rather than 3.0."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return formats.number_format(value)


def percent(value):
    return "—" if value is None else f"{value:.0f}%"


def axis_date(day):
    return formats.date_format(day, pgettext("date format on a chart's axis (Django date format)", "M j"))


def full_date(day):
    return formats.date_format(day, "SHORT_DATE_FORMAT")


def _when(moment):
    return formats.date_format(timezone.localtime(moment), "SHORT_DATE_FORMAT")


def _figures_row(label, figures):
    return {
        "label": label, "calls": figures.calls, "answered": figures.answered,
        "average_ring": duration(figures.average_ring), "talk": duration(figures.talk_seconds),
        "monitored": percent(figures.monitored_share), "evaluated": percent(figures.evaluated_share),
    }


def trainee_page(progress):
    """The trainee page's context from a stats.TraineeProgress."""
    days, weeks = progress.days, progress.weeks
    per_day = [
        {"id": "chart-calls-day", "title": pgettext("progress", "Calls per day"),
         "description": _("Calls each day over the last %(days)d days, as bars.") % {"days": len(days)},
         "chart": charts.bar_chart([(full_date(day), figures.calls, axis_date(day)) for day, figures in days],
                                   label_every=3, number=number)},
        {"id": "chart-talk-day", "title": _("Talk time per day, minutes"),
         "description": _("Minutes spent talking each day over the last %(days)d days, as bars.") % {"days": len(days)},
         "chart": charts.bar_chart([(full_date(day), round(figures.talk_seconds / 60, 1), axis_date(day))
                                    for day, figures in days], label_every=3, number=number)},
        {"id": "chart-ring-day", "title": _("Average ring time per day, seconds"),
         "description": _("How long calls rang before an answer, on average, each day over the last %(days)d "
                          "days, as bars.") % {"days": len(days)},
         "chart": charts.bar_chart([(full_date(day), round(figures.average_ring or 0, 1), axis_date(day))
                                    for day, figures in days], label_every=3, number=number)},
        {"id": "chart-calls-week", "title": pgettext("progress", "Calls per week"),
         "description": _("Calls each week over the last %(weeks)d weeks, as bars.") % {"weeks": len(weeks)},
         "chart": charts.bar_chart([(_("week of %(day)s") % {"day": full_date(monday)}, figures.calls,
                                     axis_date(monday)) for monday, figures in weeks], label_every=2, number=number)},
    ]
    # The time axis spans the evaluations shown (at least two weeks), not the whole window: a
    # trainee graded only lately would otherwise have his dots squeezed into the right edge.
    now = timezone.now()
    first = min((point.when for point in progress.results), default=now)
    start = min(first, now - datetime.timedelta(days=MIN_SCORE_SPAN_DAYS))
    latest = progress.latest_evaluations[0] if progress.latest_evaluations else None
    guides = (latest.pass_threshold, latest.good_threshold) if latest is not None else ()
    score_charts = []
    if progress.results:
        score_charts.append({
            "id": "chart-result", "title": _("Result of each evaluation"),
            "description": _("The result of each evaluation over the last %(days)d days, in percent, as dots "
                             "joined by a line.") % {"days": stats.SCORE_DAYS},
            "chart": charts.line_chart(progress.results, start=start, end=now, when_label=_when,
                                       value_label=lambda point: percent(point.value), guides=guides),
            "points": [(_when(point.when), percent(point.value)) for point in progress.results],
        })
    for index, (name, points) in enumerate(progress.criteria):
        score_charts.append({
            "id": f"chart-criterion-{index}", "title": name, "criterion": True,
            "description": _("The score of “%(criterion)s” in each evaluation over the last %(days)d days, as a "
                             "share of the scale.") % {"criterion": name, "days": stats.SCORE_DAYS},
            "chart": charts.line_chart(points, start=start, end=now, when_label=_when,
                                       value_label=lambda point: point.label),
            "points": [(_when(point.when), point.label) for point in points],
        })
    return {
        "trainee": progress.trainee,
        "total": _figures_row("", progress.total),
        "weeks_count": len(weeks), "days_count": len(days), "score_days": stats.SCORE_DAYS,
        "per_day": per_day,
        "day_word": pgettext("progress", "Day"), "week_word": pgettext("progress", "Week"),
        "day_rows": [_figures_row(full_date(day), figures) for day, figures in reversed(days)],
        "week_rows": [_figures_row(_("week of %(day)s") % {"day": full_date(monday)}, figures)
                      for monday, figures in reversed(weeks)],
        "score_charts": score_charts,
        "latest_evaluations": progress.latest_evaluations,
        "latest_notes": progress.latest_notes,
        "open_help": progress.open_help,
    }


def team_page(rows, *, sort, order, show_curator):
    """The team page's context: rows as words, and each column's sort link and state."""
    columns = []
    for key, heading, covers in TEAM_COLUMNS:
        active = key == sort
        # A first click sorts names A-Z, numbers most first; a second click turns it round.
        next_order = ("desc" if order == "asc" else "asc") if active else ("asc" if key == "name" else "desc")
        columns.append({"key": key, "heading": heading, "covers": covers, "active": active,
                        "aria_sort": ("ascending" if order == "asc" else "descending") if active else None,
                        "query": f"sort={key}&order={next_order}"})
        if key == "name" and show_curator:
            columns.append({"key": None, "heading": pgettext_lazy("progress", "Curator"), "covers": "",
                            "active": False})
    shown = []
    for row in rows:
        shown.append({
            "trainee": row.trainee,
            "attention": [str(ATTENTION_WORDS[code]) for code in row.attention],
            "attention_codes": " ".join(row.attention),
            "calls": row.week.calls,
            "talk": duration(row.month.talk_seconds),
            "ring": duration(row.month.average_ring),
            "monitored": percent(row.month.monitored_share),
            "evaluated": percent(row.month.evaluated_share),
            "result": percent(row.average_result),
            "evaluations": row.evaluations,
            "open_help": row.open_help,
            "help_requests": row.help_requests,
            "last_evaluated": _when(row.last_evaluated) if row.last_evaluated else "—",
        })
    return {"columns": columns, "rows": shown, "sort": sort, "order": order, "show_curator": show_curator}
