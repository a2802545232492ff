"""`python manage.py fakepbx`: run the simulated Asterisk (AMI on TCP) for demos, development and
benchmarks, with the phones of the dashboard's roster. Without --manager-conf the user is the
settings' AMI_USERNAME/AMI_SECRET with read=all write=all. The same simulator runs without Django
as `python -m fakepbx` (see fakepbx/cli.py)."""

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from fakepbx.cli import add_arguments, build, default_devices, parse_devices, serve


class Command(BaseCommand):
    help = "Run a simulated Asterisk 20 (chan_sip) or 22 (PJSIP) Manager Interface (AMI) server."

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        options["device_list"] = parse_devices(options["devices"]) or self._roster_devices(options["flavour"])
        users = None if options["manager_conf"] else {settings.AMI_USERNAME: settings.AMI_SECRET}
        if not options["monitor_dir"]:
            # The demo PBX records into the folder the dashboard reads (CALL_RECORDINGS_PBX_DIR).
            options["monitor_dir"] = settings.CALL_RECORDINGS_PBX_DIR
        try:
            pbx = build(options, users=users)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        try:
            asyncio.run(serve(pbx, options["device_list"], self.stdout.write))
        except OSError as exc:
            raise CommandError(f"cannot listen on {pbx.host}:{pbx.port}: {exc}") from exc

    def _roster_devices(self, flavour):
        from accounts.models import Extension

        try:
            return [extension.device for extension in Extension.objects.all()]
        except DatabaseError as exc:
            fallback = default_devices(flavour)
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.stderr.write(f"The roster cannot be read ({first_line}); using the demo phones "
                              f"{', '.join(fallback)}.")
            return fallback
