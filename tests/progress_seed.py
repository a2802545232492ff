"""Rows for the progress pages' tests: calls of the history, evaluations (through the coaching
app's own submit), notes and help requests of a trainee, spread over the last days. Used in the
test database and, through `python -m tests.progress_seed <username>...`, in a server's."""

import datetime
import sys

from django.db import models
from django.utils import timezone


def backdate(model, pk, **fields):
    """Move a row's timestamps into the past (an evaluation refuses every update on purpose; this
    is the test's seeding, not the product's)."""
    models.QuerySet.update(model.objects.filter(pk=pk), **fields)


def seed_trainee(trainee, *, grader, now=None, calls_per_day=(3, 0, 2, 1), evaluations=((2, [5, 4, 3, 5, 4, 5]),
                                                                                          (1, [3, 2, 2, 3, 5, 4])),
                 notes=1, open_help=1):
    """Calls on the last days (`calls_per_day[n]` calls n days ago, each answered after 5 s and
    talking 60 s; every other one monitored), `evaluations` as (days ago, scores of the demo
    scorecard's criteria) each on one of those calls, `notes` notes, `open_help` open help
    requests. Returns the calls' uniqueids, newest day first."""
    from coaching.demo import seed_demo_scorecard
    from coaching.models import CoachingNote, Evaluation
    from helprequests.models import HelpRequest
    from history.models import CallRecord

    now = now or timezone.now()
    scorecard = seed_demo_scorecard()
    criteria = list(scorecard.criteria.all())
    uniqueids = []
    for days_ago, count in enumerate(calls_per_day):
        for n in range(count):
            started = now - datetime.timedelta(days=days_ago, minutes=10 * (n + 1))
            uniqueid = f"{trainee.username}-{days_ago}-{n}"
            CallRecord.objects.create(
                uniqueid=uniqueid, linkedid=uniqueid, channel=f"SIP/1{trainee.pk:02d}-0000{n}", device="SIP/1",
                person=trainee, person_label=str(trainee), direction="in", other_number="5551234",
                ring_started_at=started, answered_at=started + datetime.timedelta(seconds=5),
                ended_at=started + datetime.timedelta(seconds=65), ring_seconds=5.0, talk_seconds=60.0,
                monitored=n % 2 == 0, monitor_modes="listen" if n % 2 == 0 else "")
            uniqueids.append((days_ago, uniqueid))
    for index, (days_ago, scores) in enumerate(evaluations):
        call = next((uid for ago, uid in uniqueids if ago == days_ago), f"{trainee.username}-x-{index}")
        evaluation = Evaluation.submit(trainee=trainee, call_uniqueid=call, evaluator=grader, scorecard=scorecard,
                                       scores={c.pk: score for c, score in zip(criteria, scores)})
        backdate(Evaluation, evaluation.pk, created_at=now - datetime.timedelta(days=days_ago))
    for n in range(notes):
        note = CoachingNote.objects.create(trainee=trainee, call_uniqueid=uniqueids[0][1] if uniqueids else "x",
                                           author=grader, author_label=str(grader), offset_seconds=42,
                                           text=f"Note {n + 1}: greet the caller by name.")
        backdate(CoachingNote, note.pk, created_at=now - datetime.timedelta(hours=n + 1))
    for n in range(open_help):
        HelpRequest.objects.create(trainee=trainee, trainee_label=str(trainee), curator=trainee.curator,
                                   device="SIP/1", call_uniqueid=f"{trainee.username}-help-{n}",
                                   raised_at=now - datetime.timedelta(minutes=n + 1))
    return [uid for _ago, uid in uniqueids]


def main(usernames):
    from accounts.models import User

    for username in usernames:
        trainee = User.objects.get(username=username)
        seed_trainee(trainee, grader=trainee.curator)


if __name__ == "__main__":
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
    django.setup()
    main(sys.argv[1:])
