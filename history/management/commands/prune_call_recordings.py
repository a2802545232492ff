"""`manage.py prune_call_recordings`: delete the recordings of calls that ended more than
CALL_RECORDING_RETENTION_DAYS ago (history/recordings_prune.py) and say which. Run it daily (cron or
a systemd timer, docs/deployment.md)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from history.recordings_prune import DELETED, FAILED, MISSING, prune


class Command(BaseCommand):
    help = "Delete call recordings older than CALL_RECORDING_RETENTION_DAYS and list what was deleted."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="keep this many days instead of CALL_RECORDING_RETENTION_DAYS")
        parser.add_argument("--dry-run", action="store_true", help="only say what would be deleted")

    def handle(self, *args, **options):
        days = settings.CALL_RECORDING_RETENTION_DAYS if options["days"] is None else options["days"]
        if days < 0:
            raise CommandError("--days must be 0 or more")
        if options["days"] is None and days == 0:
            self.stdout.write("CALL_RECORDING_RETENTION_DAYS=0: recordings are kept for ever; nothing deleted.")
            return
        dry = options["dry_run"]
        done = prune(days, dry_run=dry)
        verb = "would delete" if dry else "deleted"
        for item in done:
            when = item.ended_at.strftime("%Y-%m-%d %H:%M")
            if item.outcome == DELETED:
                self.stdout.write(f"{verb} {item.relative} (call {item.call_id}, ended {when})")
            elif item.outcome == MISSING:
                self.stdout.write(f"already gone: {item.relative} (call {item.call_id}, ended {when})")
            else:
                self.stderr.write(f"not deleted: {item.relative} (call {item.call_id}): {item.detail}")
        deleted = sum(1 for item in done if item.outcome == DELETED)
        self.stdout.write(f"{deleted} recording(s) {verb}, older than {days} day(s) "
                          f"(under {settings.CALL_RECORDINGS_ROOT}).")
        if any(item.outcome == FAILED for item in done):
            raise SystemExit(1)
