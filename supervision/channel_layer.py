"""The in-memory channel layer of the embedded (one process) setup, with a cheaper sweep.

Channels' InMemoryChannelLayer sweeps for expired messages and group memberships on every send to
a group and every receive, walking every group each time. With one group per phone (as the
fan-out once had) a thousand phones made that sweep cost more than the fan-out itself
(bench/fanout.py: 1.5 ms per event, seconds of backlog at 500 events/s). Sweeping at most once a
second changes nothing a dashboard can notice: a message expires up to a second later.

Channels also deep-copies every message it queues (standing in for the serialisation of a real
layer). For a 5,000-call snapshot that copy cost 200 ms per socket; `send_owned` skips it for a
message whose sender keeps no reference to anything in it that could change (the bridge's
snapshot: a fresh dict around the board's published, never-changed channel dicts).
"""

import asyncio
import time

from channels.exceptions import ChannelFull
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

    async def group_send_owned(self, group, message):
        """`group_send` without the deep copy per member (the bridge's stream: built once, never
        changed, read by each process's replica)."""
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, {})):
            try:
                await self.send_owned(channel, message)
            except ChannelFull:
                pass  # as group_send: a full member misses it (its replica sees the hole)

    async def send_owned(self, channel, message):
        """`send` without the deep copy: the receiver gets `message` itself (read-only)."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, message))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None
