"""`manage.py import_roster FILE.csv [--dry-run] [--language ru]`: the roster from a CSV file, all or
nothing. It speaks settings.LANGUAGE_CODE, or the language given."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.roster_import import RosterImportError, import_roster


class Command(BaseCommand):
    help = "Import users and extensions from a CSV file (columns: see docs/roster-import.md). All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file, UTF-8, one row per extension")
        parser.add_argument("--dry-run", action="store_true", help="Check everything, save nothing.")
        parser.add_argument("--language", choices=[code for code, _name in settings.LANGUAGES],
                            default=settings.LANGUAGE_CODE,
                            help="Language of the problems and the summary (default: LANGUAGE_CODE).")

    def handle(self, *args, file, dry_run=False, language=None, **options):
        with translation.override(language or settings.LANGUAGE_CODE):
            self._import(Path(file), dry_run)

    def _import(self, path, dry_run):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(_("cannot read %(file)s: %(why)s") % {"file": path, "why": exc.strerror or exc}) from None
        try:
            report = import_roster(data, dry_run=dry_run)
        except RosterImportError as exc:
            for error in exc.errors:
                self.stderr.write(f"{path.name}: {error}")
            count = len(exc.errors)
            raise CommandError(ngettext("%(file)s: %(count)d problem found; nothing was changed.",
                                        "%(file)s: %(count)d problems found; nothing was changed.", count)
                               % {"file": path.name, "count": count}) from None
        self.stdout.write(self.style.SUCCESS(report.summary()))
