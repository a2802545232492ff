"""Parser instructions per message against panoramisk, counted by valgrind's callgrind.

    .venv/bin/python bench/parser_instructions.py [--megabytes 2] [--read-size 65536] [--gc deployed|default]

Instruction counts do not move with the machine's load, so the ratio holds on a busy machine where
wall-clock rates do not (bench/ami_ingest.py gives those). Each path runs in its own Python under
callgrind twice: once to feed the stream and once doing everything but the feed; the difference is
the path's own cost. The process is set up like the deployed `ami_bridge`: Django loaded, then the
bridge's garbage-collector settings applied (`bridge_host.tune_garbage_collector`, BRIDGE_GC_GEN0);
`--gc default` keeps Python's defaults for both parsers instead.

Paths: (a) our Parser (a message's lines are partitioned when first read), (a') the same with every
message's fields read (what panoramisk builds for each), (b) Parser + Board.apply, (c) panoramisk 1.4's
AMIProtocol.data_received. Targets: (a) uses at most a third of (c)'s instructions (>= 3x); (b) per
message, the load-independent side of bench/ami_ingest.py's 200,000 messages/s.
"""

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = {"parser": "(a) Parser", "fields": "(a') Parser + every message's fields", "board": "(b) Parser + Board.apply",
         "panoramisk": "(c) panoramisk 1.4 AMIProtocol"}


def inside(path, megabytes, read_size, gc_mode, feed):
    """Runs under callgrind: set up like the bridge process, then (if `feed`) one pass of `path`."""
    import logging

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
    import django

    django.setup()
    import ami_ingest

    from supervision.bridge_host import tune_garbage_collector

    logging.disable(logging.CRITICAL)  # panoramisk logs every message at debug level
    if path == "panoramisk":
        import panoramisk.ami_protocol  # noqa: F401 - its import is not the parser's cost
    stream = ami_ingest.build_stream(megabytes)
    chunks = [stream[i : i + read_size] for i in range(0, len(stream), read_size)]
    run = {"parser": ami_ingest.run_parser, "fields": ami_ingest.run_parser_and_fields,
           "board": ami_ingest.run_parser_and_board,
           "panoramisk": ami_ingest.run_panoramisk}[path]
    threshold = tune_garbage_collector() if gc_mode == "deployed" else None
    count = run(chunks) if feed else 0
    print(f"messages={count} bytes={len(stream)} chunks={len(chunks)} threshold={','.join(map(str, threshold)) if threshold else None}")


def instructions(valgrind, path, args, feed):
    with tempfile.TemporaryDirectory() as folder:
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={folder}/out",
            sys.executable, __file__, "--inside", path, "--megabytes", str(args.megabytes),
            "--read-size", str(args.read_size), "--gc", args.gc,
        ] + (["--feed"] if feed else [])
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
    collected = re.search(r"Collected : (\d+)", done.stderr)
    info = dict(part.split("=", 1) for part in done.stdout.split() if "=" in part)
    return int(collected.group(1)), info


def main():
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--megabytes", type=float, default=2.0)
    options.add_argument("--read-size", type=int, default=64 * 1024, help="bytes per read (the client reads 64 KiB)")
    options.add_argument("--gc", choices=["deployed", "default"], default="deployed")
    options.add_argument("--inside", choices=list(PATHS), help=argparse.SUPPRESS)
    options.add_argument("--feed", action="store_true", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.inside:
        inside(args.inside, args.megabytes, args.read_size, args.gc, args.feed)
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind): no instruction counts")

    costs, info = {}, {}
    for path in PATHS:
        with_feed, info = instructions(valgrind, path, args, feed=True)
        without, _ = instructions(valgrind, path, args, feed=False)
        costs[path] = with_feed - without
        messages = int(info["messages"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Python {platform.python_version()} on {platform.machine()}, load {load:.2f} (instruction counts do not depend on it)")
    print(f"stream: {int(info['bytes']) / 1e6:.1f} MB of captured AMI traffic, {messages} messages, "
          f"reads of {args.read_size} bytes ({info['chunks']} reads)")
    collector = f"thresholds {info['threshold']}; gc.freeze() after start-up" if args.gc == "deployed" else "Python's defaults"
    print(f"garbage collector: {args.gc} ({collector})")
    for path, label in PATHS.items():
        print(f"{label:38} {costs[path]:>14,} instructions  {costs[path] / messages:>8,.0f} per message")
    ratio = costs["panoramisk"] / costs["parser"]
    verdict = "ok" if ratio >= 3 else "BELOW TARGET"
    print(f"\npanoramisk / Parser   {ratio:5.2f}x fewer instructions   (target >= 3x: {verdict}); "
          f"with every message's fields read {costs['panoramisk'] / costs['fields']:5.2f}x")
    print(f"Board.apply's share of (b): {(costs['board'] - costs['parser']) / costs['board']:.0%}")


if __name__ == "__main__":
    main()
