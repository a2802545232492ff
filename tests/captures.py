"""Reading the real Asterisk 20 captures in ../shared/ami-captures as parsed messages."""

from pathlib import Path

from supervision.ami.protocol import Parser

CAPTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "ami-captures"


def capture_bytes(name, *, sent=False):
    """Raw bytes of `<name>.txt` (what the server sent) or `<name>.sent.txt` (what the client sent)."""
    return (CAPTURES / f"{name}{'.sent' if sent else ''}.txt").read_bytes()


def capture_messages(name):
    """(banner, messages) the server sent on that connection."""
    parser = Parser()
    messages = parser.feed(capture_bytes(name))
    return parser.banner, messages


def sent_messages(name):
    """The actions the client sent on that connection."""
    return Parser(expect_banner=False).feed(capture_bytes(name, sent=True))


def server_capture_names():
    return sorted(
        path.stem
        for path in CAPTURES.glob("asterisk2*.txt")
        if not path.name.endswith(".sent.txt") and "sip-invite" not in path.name
    )
