"""`python manage.py fakepbx`: run the simulated Asterisk (AMI on TCP) for demos, development and
benchmarks. Without --manager-conf the user is the settings' AMI_USERNAME/AMI_SECRET with
read=all write=all."""

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fakepbx import FakePBX
from fakepbx.engine import BEHAVIOURS


class Command(BaseCommand):
    help = "Run a simulated Asterisk 20 Manager Interface (AMI) server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=5038)
        parser.add_argument("--manager-conf", help="Asterisk-format manager.conf with the AMI users")
        parser.add_argument("--scenario", choices=["idle", "demo"], default="idle")
        parser.add_argument("--devices", help="comma-separated phones (SIP/104,PJSIP/105); default: the roster's")
        parser.add_argument("--behaviour", choices=BEHAVIOURS, default="autoanswer",
                            help="how the phones answer (default autoanswer: at once when asked to, else after ringing)")
        parser.add_argument("--ring-seconds", type=float, default=2.0)
        parser.add_argument("--interval", type=float, default=4.0, help="demo: mean seconds between new calls")
        parser.add_argument("--talk-min", type=float, default=20.0)
        parser.add_argument("--talk-max", type=float, default=90.0)
        parser.add_argument("--calls-per-second", type=float, help="load mode: arrival rate")
        parser.add_argument("--concurrent", type=int, help="load mode: calls kept up")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--no-transmit-silence", action="store_true",
                            help="like asterisk.conf transmit_silence=no: a stopped spy stays until the spied call ends")

    def handle(self, *args, **options):
        devices = self._devices(options["devices"])
        users = None
        if not options["manager_conf"]:
            users = {settings.AMI_USERNAME: settings.AMI_SECRET}
        try:
            pbx = FakePBX(
                host=options["host"], port=options["port"], users=users, manager_conf=options["manager_conf"],
                scenario=options["scenario"], seed=options["seed"], transmit_silence=not options["no_transmit_silence"],
                demo_options={
                    "interval": options["interval"], "talk_min": options["talk_min"], "talk_max": options["talk_max"],
                    "calls_per_second": options["calls_per_second"], "concurrent": options["concurrent"],
                },
            )
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for device in devices:
            pbx.set_phone(device, options["behaviour"], ring_seconds=options["ring_seconds"])
        asyncio.run(self._serve(pbx, devices))

    def _devices(self, text):
        if text:
            return [d.strip() for d in text.split(",") if d.strip()]
        from accounts.models import Extension

        return [extension.device for extension in Extension.objects.all()]  # technology, resource

    async def _serve(self, pbx, devices):
        try:
            await pbx.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {pbx.host}:{pbx.port}: {exc}") from exc
        self.stdout.write(
            f"Simulated Asterisk AMI on {pbx.host}:{pbx.port}, scenario {pbx.scenario}, "
            f"users {', '.join(sorted(pbx.users))}, phones {', '.join(devices) or 'none'}"
        )
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        await stopped.wait()
        await pbx.shutdown()
