"""progress.stats: a trainee's figures per day and week, the score per criterion over time and
the team table, from ORM aggregates in a fixed number of queries (no query per call, day or
trainee); the policy of who sees whose page."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import Role, User
from coaching.models import Evaluation
from progress import charts, stats
from tests.progress_seed import seed_trainee

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    admin = User.objects.create_user("boss", password=None, role=Role.ADMIN, first_name="Boss")
    olga = User.objects.create_user("olga", password=None, role=Role.CURATOR, first_name="Olga")
    ivan = User.objects.create_user("ivan", password=None, role=Role.CURATOR, first_name="Ivan")
    anna = User.objects.create_user("anna", password=None, role=Role.TRAINEE, curator=olga, first_name="Anna")
    boris = User.objects.create_user("boris", password=None, role=Role.TRAINEE, curator=olga, first_name="Boris")
    vera = User.objects.create_user("vera", password=None, role=Role.TRAINEE, curator=ivan, first_name="Vera")
    return {u.username: u for u in (admin, olga, ivan, anna, boris, vera)}


def test_who_sees_whose_page(team):
    anna = team["anna"]
    assert stats.may_view(anna, anna) and stats.may_view(team["olga"], anna) and stats.may_view(team["boss"], anna)
    assert not stats.may_view(team["ivan"], anna)  # another team's curator
    assert not stats.may_view(team["boris"], anna)  # a teammate
    assert stats.viewable_trainee(team["olga"], team["olga"].pk) is None  # a curator has no trainee page
    team["olga"].is_active = False
    assert not stats.may_view(team["olga"], anna)


def test_a_trainees_figures_per_day_week_and_in_total(team):
    now = timezone.now()
    seed_trainee(team["anna"], grader=team["olga"], now=now, calls_per_day=(3, 0, 2), notes=2, open_help=1,
                 evaluations=((0, [5] * 6), (2, [4] * 6)))
    seed_trainee(team["vera"], grader=team["ivan"], now=now, calls_per_day=(5,))  # someone else's: not counted

    progress = stats.trainee_progress(team["anna"], today=timezone.localdate(now))

    assert len(progress.days) == stats.DAYS and len(progress.weeks) == stats.WEEKS
    today, two_days_ago = progress.days[-1][1], progress.days[-3][1]
    assert (today.calls, progress.days[-2][1].calls, two_days_ago.calls) == (3, 0, 2)
    assert (today.ring_seconds, today.talk_seconds, today.average_ring, today.average_talk) == (15.0, 180.0, 5.0, 60.0)
    assert (today.monitored, today.evaluated) == (2, 1)  # calls 0 and 2 monitored; one graded today
    total = progress.total
    assert (total.calls, total.answered, total.monitored, total.evaluated) == (5, 5, 3, 2)
    assert total.monitored_share == 60.0 and total.evaluated_share == 40.0
    assert sum(figures.calls for _monday, figures in progress.weeks) == 5
    assert len(progress.latest_notes) == 2 and len(progress.open_help) == 1
    assert [e.call_uniqueid for e in progress.latest_evaluations] == ["anna-0-0", "anna-2-0"]


def test_scores_per_criterion_over_time_count_the_current_version_only(team):
    now = timezone.now()
    seed_trainee(team["anna"], grader=team["olga"], now=now, calls_per_day=(1, 1, 1),
                 evaluations=((2, [5, 5, 5, 5, 5, 5]), (1, [0, 1, 2, 3, 4, 5])))
    first = Evaluation.objects.get(call_uniqueid="anna-2-0")
    # A correction replaces the first grade: only the corrected scores count.
    Evaluation.submit(trainee=team["anna"], call_uniqueid="anna-2-0", evaluator=team["olga"],
                      scorecard=first.scorecard, replaces=first,
                      scores={c.pk: 4 for c in first.scorecard.criteria.all()})

    progress = stats.trainee_progress(team["anna"])

    names = [name for name, _points in progress.criteria]
    assert names == ["Greeting", "Verifies the customer", "Understands the question", "Solves or routes it",
                     "Courtesy and tone", "Closing"]
    greeting = dict(progress.criteria)["Greeting"]
    assert [point.value for point in greeting] == [0.0, 80.0]  # yesterday's 0/5, then the correction's 4/5
    assert [point.label for point in greeting] == ["0/5", "4/5"]
    assert len(progress.results) == 2 and progress.total.evaluated == 2


def test_the_trainee_page_costs_the_same_queries_for_one_call_or_many(team, django_assert_num_queries):
    seed_trainee(team["anna"], grader=team["olga"], calls_per_day=(1,), evaluations=((0, [5] * 6),))
    with django_assert_num_queries(6) as few:
        stats.trainee_progress(team["anna"])
    seed_trainee(team["boris"], grader=team["olga"], calls_per_day=(9, 8, 7, 6, 5), notes=5, open_help=3,
                 evaluations=tuple((day, [day % 6] * 6) for day in range(5)))
    with django_assert_num_queries(len(few.captured_queries)):
        stats.trainee_progress(team["boris"])


def test_the_team_table_side_by_side_in_four_queries(team, django_assert_num_queries):
    now = timezone.now()
    seed_trainee(team["anna"], grader=team["olga"], now=now, calls_per_day=(2, 1), open_help=1,
                 evaluations=((0, [1, 1, 1, 1, 1, 1]),))
    seed_trainee(team["boris"], grader=team["olga"], now=now, calls_per_day=(1,), open_help=0,
                 evaluations=((0, [5, 5, 5, 5, 5, 5]),), notes=0)
    seed_trainee(team["vera"], grader=team["ivan"], now=now, calls_per_day=(4,))

    with django_assert_num_queries(4):
        rows = stats.team_rows(stats.team_trainees(team["olga"]))

    by_name = {row.trainee.username: row for row in rows}
    assert set(by_name) == {"anna", "boris"}
    anna, boris = by_name["anna"], by_name["boris"]
    assert (anna.week.calls, anna.month.calls, anna.month.monitored, anna.month.evaluated) == (3, 3, 2, 1)
    assert anna.average_result == 20.0 and anna.below_standard == 1 and anna.open_help == 1
    assert anna.attention == ["open_help", "below_standard"]
    assert boris.average_result == 100.0 and boris.attention == []
    ordered, key, order = stats.sort_rows(rows, "attention", "desc")
    assert [row.trainee.username for row in ordered] == ["anna", "boris"]
    ordered, _key, _order = stats.sort_rows(rows, "result", "desc")
    assert [row.trainee.username for row in ordered] == ["boris", "anna"]
    ordered, key, order = stats.sort_rows(rows, "'; drop table", "sideways")
    assert (key, order) == stats.DEFAULT_SORT
    assert {row.trainee.username for row in stats.team_rows(stats.team_trainees(team["boss"]))} == {"anna", "boris", "vera"}
    assert stats.team_rows(stats.team_trainees(team["anna"])) == []


def test_no_value_sorts_last_either_way(team):
    rows = stats.team_rows(stats.team_trainees(team["olga"]))
    rows[0].average_result = 50.0
    for order in ("asc", "desc"):
        ordered, _key, _order = stats.sort_rows(rows, "result", order)
        assert ordered[-1].average_result is None


def test_chart_geometry():
    chart = charts.bar_chart([("a", 0, "a"), ("b", 3, "b"), ("c", 6, "c")])
    assert charts.nice_top(6) == 10 and charts.nice_top(0) == 1 and charts.nice_top(230) == 250
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == 0 and heights[2] == 2 * heights[1]
    assert [tick.label for tick in chart.ticks] == ["0", "5", "10"]
    start = timezone.now() - datetime.timedelta(days=10)
    points = [stats.Point(start + datetime.timedelta(days=5), 50.0), stats.Point(start + datetime.timedelta(days=10), 100.0)]
    line = charts.line_chart(points, start=start, end=start + datetime.timedelta(days=10), when_label=str,
                             value_label=lambda p: str(p.value), guides=(70,))
    middle = charts.LEFT + (charts.WIDTH - charts.LEFT - charts.RIGHT) / 2
    assert abs(line.dots[0].x - middle) < 0.01 and line.dots[1].y == charts.TOP
    assert line.path == f"{line.dots[0].x},{line.dots[0].y} {line.dots[1].x},{line.dots[1].y}"
