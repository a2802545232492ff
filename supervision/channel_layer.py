"""The in-memory channel layer of the embedded (one process) setup, with a cheaper sweep.

Channels' InMemoryChannelLayer sweeps for expired messages and group memberships on every send to
a group and every receive, walking every group each time. With one group per phone (see
`bridge.device_group`) a thousand phones made that sweep cost more than the fan-out itself
(bench/fanout.py: 1.5 ms per event, seconds of backlog at 500 events/s). Sweeping at most once a
second changes nothing a dashboard can notice: a message expires up to a second later.
"""

import time

from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    sweep_interval = 1.0  # seconds

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last_sweep = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now - self._last_sweep < self.sweep_interval:
            return
        self._last_sweep = now
        super()._clean_expired()
