"""The simulator's command line, shared by `python -m fakepbx` (no Django at all) and
`manage.py fakepbx` (which adds the dashboard's roster and AMI user)."""

import argparse
import asyncio
import signal

from .engine import BEHAVIOURS
from .flavours import FLAVOURS
from .pickup import PICKUP_RACE_MODES
from .server import FakePBX

DEFAULT_USER = ("dashboard", "dashboard-demo")
# The phones of the demo roster (accounts/demo.py), for a simulator started without one.
DEFAULT_RESOURCES = ("101", "102", "103", "104", "105", "200", "201", "202")


def default_devices(flavour):
    technology = FLAVOURS[flavour].phone_technology
    return [f"{technology}/{resource}" for resource in DEFAULT_RESOURCES]


def add_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--flavour", choices=sorted(FLAVOURS), default="asterisk20",
                        help="which PBX to play: asterisk20 (chan_sip, the default) or asterisk22 (PJSIP)")
    parser.add_argument("--manager-conf", help="Asterisk-format manager.conf with the AMI users")
    parser.add_argument("--scenario", choices=["idle", "demo"], default="idle")
    parser.add_argument("--devices", help="comma-separated phones (SIP/104,PJSIP/105)")
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
    parser.add_argument("--missing-sound", action="append", default=[], metavar="NAME",
                        help="a sound file this PBX lacks (repeatable); `beep` makes a spy without q end at once")
    parser.add_argument("--monitor-dir", metavar="FOLDER",
                        help="the PBX's monitor folder: MixMonitor writes its WAV files there (a relative File goes "
                             "there too); without it recordings make their events but no files")
    parser.add_argument("--dialplan-records", action="append", default=[], metavar="DEVICE",
                        help="a phone whose calls the site's own dialplan records with MixMonitor (repeatable)")
    parser.add_argument("--pickup-race", choices=PICKUP_RACE_MODES,
                        help="chan_sip: the order of the picker's OriginateResponse and Pickup (default "
                             "response-first-ringing-leg; random: any row of the captured races)")


def build(options, *, users=None):
    """A FakePBX from parsed options (a dict), with its phones set."""
    pbx = FakePBX(
        host=options["host"], port=options["port"], users=users, manager_conf=options["manager_conf"],
        scenario=options["scenario"], seed=options["seed"], transmit_silence=not options["no_transmit_silence"],
        flavour=options["flavour"], missing_sounds=set(options["missing_sound"]), pickup_race=options["pickup_race"],
        monitor_dir=options.get("monitor_dir"), dialplan_recorded=options.get("dialplan_records") or (),
        demo_options={
            "interval": options["interval"], "talk_min": options["talk_min"], "talk_max": options["talk_max"],
            "calls_per_second": options["calls_per_second"], "concurrent": options["concurrent"],
        },
    )
    for device in options["device_list"]:
        pbx.set_phone(device, options["behaviour"], ring_seconds=options["ring_seconds"])
    return pbx


def parse_devices(text):
    return [device.strip() for device in (text or "").split(",") if device.strip()]


async def serve(pbx, devices, write):
    """Listen until SIGINT/SIGTERM, then shut down like Asterisk on SIGTERM."""
    await pbx.start()
    write(
        f"Simulated Asterisk {pbx.flavour.asterisk_version} AMI on {pbx.host}:{pbx.port}, scenario {pbx.scenario}, "
        f"users {', '.join(sorted(pbx.users))}, phones {', '.join(devices) or 'none'}"
    )
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await pbx.shutdown()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fakepbx", description="A simulated Asterisk Manager Interface.")
    add_arguments(parser)
    parser.add_argument("--user", default=":".join(DEFAULT_USER),
                        help="USERNAME:SECRET with read=all write=all when there is no --manager-conf "
                             "(default dashboard:dashboard-demo)")
    options = vars(parser.parse_args(argv))
    options["device_list"] = parse_devices(options["devices"]) or default_devices(options["flavour"])
    users = None
    if not options["manager_conf"]:
        username, _, secret = options["user"].partition(":")
        users = {username: secret}
    try:
        pbx = build(options, users=users)
        asyncio.run(serve(pbx, options["device_list"], lambda text: print(text, flush=True)))
    except (OSError, ValueError) as exc:
        parser.exit(1, f"fakepbx: {exc}\n")
