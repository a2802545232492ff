"""Retention of call recordings: the files of calls that ended more than
CALL_RECORDING_RETENTION_DAYS ago are deleted (`manage.py prune_call_recordings`), and their rows
forget the file; the rows themselves stay in the history. Only files the history names are
touched: the PBX's folder may hold other recordings (a site dialplan's for phones outside the
roster), which are not the dashboard's to delete."""

import datetime
import os
from dataclasses import dataclass

from django.utils import timezone

from history import recordings
from history.models import CallRecord

DELETED, MISSING, UNSAFE, FAILED = "deleted", "missing", "unsafe", "failed"


@dataclass
class Pruned:
    call_id: int
    relative: str
    ended_at: datetime.datetime
    outcome: str
    detail: str = ""


def prune(days, *, dry_run=False, now=None):
    """[Pruned] for every call that ended before now - days and still names a file. With
    `dry_run` nothing is deleted or changed (the outcomes say what would happen)."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    done = []
    calls = CallRecord.objects.filter(ended_at__lt=cutoff).exclude(recording_file="").order_by("ended_at", "pk")
    for call in calls.only("pk", "recording_file", "ended_at").iterator():
        path = recordings.local_path(call.recording_file)
        if path is None:
            outcome, detail = UNSAFE, "not a file under CALL_RECORDINGS_ROOT; left alone"
        elif not os.path.isfile(path):
            outcome, detail = MISSING, ""
        elif dry_run:
            outcome, detail = DELETED, ""
        else:
            try:
                os.remove(path)
                outcome, detail = DELETED, ""
            except OSError as exc:
                outcome, detail = FAILED, str(exc)
        done.append(Pruned(call.pk, call.recording_file, call.ended_at, outcome, detail))
        if not dry_run and outcome in (DELETED, MISSING):
            CallRecord.objects.filter(pk=call.pk).update(recording_file="")
    return done
