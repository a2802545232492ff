"""`manage.py ami_bridge`: the one AMI connection in its own process.

Run it beside daphne with AMI_BRIDGE=external and REDIS_URL set, so every daphne process's
dashboards are fed by this single bridge (one AMI session whatever the number of browsers).
"""

import asyncio
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from supervision.bridge_host import build_bridge, run_forever


class Command(BaseCommand):
    help = "Run the bridge between the PBX (AMI) and the dashboards (channel layer) in this process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None, help="AMI host (default: AMI_HOST)")
        parser.add_argument("--port", type=int, default=None, help="AMI port (default: AMI_PORT)")

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            self.stderr.write(
                "REDIS_URL is not set: with the in-memory channel layer no web server can reach this "
                "process. Set REDIS_URL here and in the web servers (and AMI_BRIDGE=external there)."
            )
        if settings.AMI_BRIDGE == "embedded":
            self.stderr.write(
                "AMI_BRIDGE=embedded: web servers started with this setting run their own bridge too; "
                "start them with AMI_BRIDGE=external."
            )
        logging.getLogger("supervision").setLevel(logging.INFO)
        bridge = build_bridge(host=options["host"], port=options["port"])
        self.stdout.write(f"AMI bridge to {bridge.client.where}; Ctrl+C stops it")
        try:
            asyncio.run(run_forever(bridge))
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            raise CommandError(str(exc)) from exc
