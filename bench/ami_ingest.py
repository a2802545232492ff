"""AMI ingest speed: how many messages per second one core turns from bytes into board diffs.

    .venv/bin/python bench/ami_ingest.py [--megabytes 4] [--rounds 15]

The stream is every server capture in ../shared/ami-captures (banners stripped), concatenated and
repeated to a few MB, fed in 4 KiB chunks as a socket would deliver it, to:
  (a) our Parser alone (a message's lines are partitioned when first read),
  (a') our Parser with every message's fields read (`msg.fields`: what panoramisk builds for each),
  (b) our Parser + Board.apply on every message,
  (c) panoramisk 1.4's AMIProtocol.data_received (its own split + Message.from_line path),
  (d) a bare split loop, the floor any pure-Python parser is measured against,
  (e) (b) plus the call history's part in the event loop (history.recorder: its board readers on
      Newchannel and Hangup, which note the board's clock and queue a copy of each ended roster
      call; every phone of the captures is in the roster), dispatched the way the bridge does.
With `--against DIR` (another checkout, e.g. `git archive <commit> | tar -x -C DIR`), that checkout's
Parser and Board run as (a) and (b) too, in the same rounds: on a shared machine only figures taken
side by side like this compare.
Best of `--rounds` runs each, the rounds interleaved. Targets: (a) >= 3x (c); (b) >= 200,000 messages/s
on a quiet machine (bench/parser_instructions.py counts its instructions, which do not move with the
load); (e) within 10% of (b).
"""

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervision.ami.protocol import Parser  # noqa: E402
from supervision.board import Board  # noqa: E402
from tests.captures import capture_bytes, server_capture_names  # noqa: E402

CHUNK = 4096
BANNER_END = b"\r\n"


def build_stream(megabytes):
    body = b""
    for name in server_capture_names():
        data = capture_bytes(name)
        body += data[data.index(BANNER_END) + 2 :]
    repeats = max(1, int(megabytes * 1024 * 1024 / len(body)))
    return b"Asterisk Call Manager/9.0.0\r\n" + body * repeats


def chunks_of(stream):
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]


def run_parser(chunks, parser_class=Parser):
    parser = parser_class()
    count = 0
    for chunk in chunks:
        count += len(parser.feed(chunk))
    return count


def run_parser_and_fields(chunks):
    parser = Parser()
    count = 0
    for chunk in chunks:
        for message in parser.feed(chunk):
            message.fields  # noqa: B018 - reading it builds the message's table
            count += 1
    return count


def run_parser_and_board(chunks, parser_class=Parser, board_class=Board):
    parser = parser_class()
    board = board_class(now=lambda: 0.0)
    apply = board.apply
    count = 0
    for chunk in chunks:
        for message in parser.feed(chunk):
            apply(message)
            count += 1
    return count


ROSTER_RESOURCES = ("104", "105", "106", "107", "108", "1050")


class _BenchBridge:
    """What the recorder reads of a bridge; the writer's tasks never start (no event loop here:
    what the benchmark measures is the part in the loop)."""

    name = "bench"
    layer = None

    def __init__(self, board):
        self.board = board
        self.board_readers = {}

    def add_board_reader(self, event, reader):
        self.board_readers.setdefault(event, []).append(reader)


def run_parser_board_and_history(chunks):
    from history.calls import Roster, RosterPhone
    from history.recorder import CallRecorder

    parser = Parser()
    board = Board(now=lambda: 0.0)
    bridge = _BenchBridge(board)
    recorder = CallRecorder(bridge, delay=2.0, interval=1.0)
    recorder._tasks = [None]  # as if the writer were running
    phones = {f"{technology}/{resource}": RosterPhone(index, index, resource, resource)
              for index, (technology, resource) in enumerate(
                  (t, r) for t in ("SIP", "PJSIP") for r in ROSTER_RESOURCES)}
    recorder.roster = Roster(phones, frozenset(ROSTER_RESOURCES))
    recorder.devices = recorder.roster.devices
    bridge.add_board_reader("Newchannel", recorder.on_newchannel)
    bridge.add_board_reader("Hangup", recorder.on_hangup)
    readers_of = bridge.board_readers.get
    apply = board.apply
    count = 0
    for chunk in chunks:
        for message in parser.feed(chunk):
            readers = readers_of(message.event)
            if readers is not None:
                for reader in readers:
                    reader(message)
            apply(message)
            count += 1
    run_parser_board_and_history.queued = len(recorder.pending)
    return count


def run_panoramisk(chunks):
    from panoramisk.ami_protocol import AMIProtocol

    class Transport:
        def write(self, data):
            pass

        def close(self):
            pass

    class Factory:
        """What the Manager offers its protocol: here it only counts the events."""

        save_stream = None
        count = 0

        def dispatch(self, message):
            self.count += 1

        def connection_lost(self, exc):
            pass  # a captured `Event: Shutdown`; the stream goes on

    protocol = AMIProtocol()
    protocol.connection_made(Transport())
    protocol.factory = Factory()
    # Responses without a pending action are dropped by handle_message: count every message
    # the way data_received builds them by wrapping handle_message.
    counted = [0]
    handle = protocol.handle_message

    def handle_message(message):
        counted[0] += 1
        handle(message)

    protocol.handle_message = handle_message
    for chunk in chunks:
        protocol.closed = False
        protocol.data_received(chunk)
    return counted[0]


def run_bare_split(chunks):
    text = b"".join(chunks).decode("utf-8", "replace")
    text = text[text.index("\r\n") + 2 :]
    count = 0
    for frame in text.split("\r\n\r\n"):
        if frame:
            dict(line.split(": ", 1) for line in frame.split("\r\n"))
            count += 1
    return count


def previous_paths(folder):
    """(a) and (b) with the Parser and Board of another checkout."""
    import importlib.util

    def load(name, path):
        spec = importlib.util.spec_from_file_location(name, Path(folder) / path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    protocol = load("previous_protocol", "supervision/ami/protocol.py")
    board = load("previous_board", "supervision/board.py")

    def run_previous_parser(chunks):
        return run_parser(chunks, protocol.Parser)

    def run_previous_parser_and_board(chunks):
        return run_parser_and_board(chunks, protocol.Parser, board.Board)

    return {"(a) Parser, --against": run_previous_parser,
            "(b) Parser + Board.apply, --against": run_previous_parser_and_board}


def best_rates(functions, chunks, rounds):
    """{function: (messages, best messages/s)}. The rounds are interleaved (each round runs every
    path once) so a noisy stretch of the machine hits all of them, not one path's every run."""
    best, counts = {}, {}
    for _ in range(rounds):
        for function in functions:
            started = time.perf_counter()
            counts[function] = function(chunks)
            elapsed = time.perf_counter() - started
            best[function] = min(best.get(function, elapsed), elapsed)
    return {function: (counts[function], counts[function] / best[function]) for function in functions}


def main():
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--megabytes", type=float, default=4.0)
    options.add_argument("--rounds", type=int, default=15)
    options.add_argument("--against", metavar="DIR", help="another checkout whose Parser and Board run beside ours")
    args = options.parse_args()
    logging.disable(logging.CRITICAL)  # panoramisk logs every message at debug level
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
    import django

    django.setup()  # (e): the recorder's module loads the history models

    stream = build_stream(args.megabytes)
    chunks = chunks_of(stream)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, load {load:.2f}")
    print(f"stream: {len(stream) / 1e6:.1f} MB in {len(chunks)} chunks of {CHUNK} bytes; best of {args.rounds}")
    paths = {
        "(a) Parser": run_parser,
        "(a') Parser + every message's fields": run_parser_and_fields,
        "(b) Parser + Board.apply": run_parser_and_board,
        "(c) panoramisk 1.4 AMIProtocol": run_panoramisk,
        "(d) bare split loop": run_bare_split,
        "(e) Parser + Board + history": run_parser_board_and_history,
    }
    previous = previous_paths(args.against) if args.against else {}
    measured = best_rates(list(paths.values()) + list(previous.values()), chunks, args.rounds)
    results = {}
    for label, function in {**paths, **previous}.items():
        count, rate = measured[function]
        results[label] = rate
        print(f"{label:38} {count:>8} messages  {rate:>12,.0f} messages/s")
    parser, fields, board, panoramisk, bare, history = list(results.values())[:6]
    print()
    verdict = "ok" if parser >= 3 * panoramisk else "BELOW TARGET"
    print(f"Parser / panoramisk       {parser / panoramisk:5.2f}x   (target >= 3x: {verdict}); "
          f"with every message's fields read {fields / panoramisk:5.2f}x")
    print(f"Parser / bare split       {parser / bare:5.2f}x")
    verdict = "ok" if board >= 200_000 else "BELOW TARGET"
    print(f"Parser + Board.apply      {board:,.0f} messages/s   (target >= 200,000/s on a quiet machine: {verdict}; "
          f"load {os.getloadavg()[0]:.2f} now)")
    if previous:
        previous_parser, previous_board = (measured[function][1] for function in previous.values())
        print(f"against {args.against}: Parser {parser / previous_parser:.2f}x, Parser + Board.apply {board / previous_board:.2f}x")
    cost = 1 - history / board
    verdict = "ok" if cost <= 0.10 else "BELOW TARGET"
    print(f"+ call history in loop    {history:,.0f} messages/s, {cost:+.1%} slower than parse + board "
          f"(target <= 10%: {verdict}; {run_parser_board_and_history.queued} calls queued per pass)")


if __name__ == "__main__":
    main()
