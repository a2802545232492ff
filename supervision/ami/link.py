"""What the AMI link is doing, in words a person can act on, and how long to wait before retrying."""

import dataclasses
import random
import time

CONNECTING = "connecting"
UP = "up"
DOWN = "down"
LOGIN_REFUSED = "login_refused"

BANNER_PREFIX = "Asterisk Call Manager/"


@dataclasses.dataclass(frozen=True)
class LinkState:
    state: str
    since: float  # epoch seconds: when the link came up, or when it stopped being up (kept across retries)
    detail: str = ""  # plain words: why it is down, what was refused
    banner: str | None = None  # the greeting line of the last connection
    ami_version: str | None = None  # from the banner: "Asterisk Call Manager/9.0.0" -> "9.0.0"
    retry_in: float | None = None  # seconds until the next attempt, when down or refused
    refused_with: str | None = None  # the PBX's own words for a refused login ("Authentication failed")

    def changed(self, state, detail, **fields):
        """The next state. `since` moves only when the link comes up or stops being up: the
        retries in between (connecting, down, refused, connecting...) keep the time it went down,
        which is what "PBX link down since ..." tells."""
        since = self.since if (state == UP) == (self.state == UP) else time.time()
        return dataclasses.replace(self, state=state, detail=detail, since=since, **fields)


def initial():
    return LinkState(state=DOWN, since=time.time(), detail="not started")


def ami_version(banner):
    """The version after the slash of an AMI banner, None for any other greeting."""
    if banner and banner.startswith(BANNER_PREFIX):
        return banner[len(BANNER_PREFIX) :].strip() or None
    return None


def looks_like_ami(banner):
    # Proxies in front of Asterisk greet as "Asterisk Call Manager Proxy/..."; anything without
    # "Call Manager" (an HTTP or SSH server on the port) is not AMI.
    return "Call Manager" in banner


class Backoff:
    """Capped exponential backoff with jitter: first, minimum * 1, 2, 4, ... up to `maximum`.

    Each delay is drawn between half and all of the nominal one, so many dashboards that lost
    the same PBX do not all knock at the same instant when it comes back.
    """

    def __init__(self, minimum, maximum, *, rng=None):
        self.minimum = min(minimum, maximum)
        self.maximum = maximum
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self):
        nominal = min(self.maximum, self.minimum * (2**self.failures))
        self.failures += 1
        return self._rng.uniform(nominal / 2, nominal)

    def longest(self):
        """The delay after a refused login: retrying sooner cannot help until someone edits config."""
        self.failures += 1
        return self._rng.uniform(self.maximum / 2, self.maximum)

    def reset(self):
        self.failures = 0
