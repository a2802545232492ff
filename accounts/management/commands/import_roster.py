"""`manage.py import_roster FILE.csv [--dry-run]`: the roster from a CSV file, all or nothing."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.roster_import import RosterImportError, import_roster


class Command(BaseCommand):
    help = "Import users and extensions from a CSV file (columns: see docs/roster-import.md). All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, UTF-8, one row per extension")
        parser.add_argument("--dry-run", action="store_true", help="Check everything, save nothing.")

    def handle(self, *args, file, dry_run=False, **options):
        path = Path(file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from None
        try:
            report = import_roster(data, dry_run=dry_run)
        except RosterImportError as exc:
            for error in exc.errors:
                self.stderr.write(f"{path.name}: {error}")
            count = len(exc.errors)
            raise CommandError(
                f"{path.name}: {count} problem{'s' if count != 1 else ''} found; nothing was changed."
            ) from None
        self.stdout.write(self.style.SUCCESS(report.summary()))
