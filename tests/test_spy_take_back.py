"""A restarted bridge and the spy legs the PBX kept: taken back under their session (Stop works
again), hung up when no session owns them, their rows ended when the leg is gone. Over TCP with the
simulated PBX, as in `asterisk20-spy-leg-coreshowchannels` and `asterisk22-pjsip-coreshowchannels`
(the leg is found by `Application: ChanSpy`, its name and its uniqueid)."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from fakepbx import FakePBX
from supervision import actions
from supervision.bridge_host import build_bridge
from supervision.models import MonitoringSession, Outcome
from tests.conftest import FAKEPBX_FAST, _fakepbx_phones
from tests.live_stack import WAIT, Inbox, bridge, press, roster, rows, until  # noqa: F401
from tests.test_spy_pbx_ends import RESTRICTED, ROUTES, fakepbx, pbx_options, route, spying  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def spy_legs(pbx):
    return {name: channel for name, channel in pbx.channels.items() if channel.application == "ChanSpy"}


async def restarted_bridge(old, port, **login):
    """The bridge process started again: a new bridge on the same channel layer and PBX."""
    new = build_bridge(old.layer, host="127.0.0.1", port=port, username=login.get("username", "dashboard"),
                       secret=login.get("secret", "dashboard-demo"))
    await new.spy_monitor.startup
    await new.start()
    await new.client.wait_until("up", timeout=WAIT)
    return new


@sync_to_async
def stale_row(user):
    """A row whose spy leg the PBX no longer has."""
    return MonitoringSession.objects.create(user=user, mode="listen", outcome=Outcome.SPYING,
                                            spy_channel="SIP/104-000000ff", spy_uniqueid="1796096285.255").pk


@pytest.mark.parametrize("route", ROUTES)
async def test_a_restarted_bridge_takes_its_spy_back_and_stop_works(fakepbx, bridge, roster, route):
    people, phones = roster
    curator = people["petrova"]
    inbox, _watched, agent, leg_prefix = await spying(fakepbx, bridge, roster, route)
    await inbox.next(state="spying")
    [row] = await rows()
    leg, uniqueid = row["spy_channel"], row["spy_uniqueid"]
    assert leg.startswith(leg_prefix) and uniqueid == fakepbx.channels[leg].uniqueid
    # A spy leg of ours that no session owns (smirnov's phone, `Spy-105`), and someone else's ChanSpy.
    await bridge.client.send("Originate", actions.spy_originate(phones["smirnov"], agent, "listen", allow_switch=False))
    await bridge.client.send("Originate", [("Channel", "SIP/106"), ("Application", "ChanSpy"), ("Data", f"{agent},q"),
                                           ("CallerID", "Coach <106>"), ("Async", "true")])
    await until(lambda: len(spy_legs(fakepbx)) == 3)
    orphan = next(name for name in spy_legs(fakepbx) if name.startswith("SIP/107-"))
    foreign = next(name for name in spy_legs(fakepbx) if name.startswith("SIP/106-"))
    stale = await stale_row(curator)

    await bridge.stop()  # the bridge process goes away; the PBX keeps every call
    [row] = await rows(pk=row["id"])
    assert row["outcome"] == Outcome.SPYING and row["ended_at"] is None  # not "interrupted" while it goes on

    again = await restarted_bridge(bridge, fakepbx.port)
    try:
        taken = await inbox.next(reason="taken_back")
        assert taken == {"type": "spy.status", "state": "spying", "reason": "taken_back", "text": "Listening to Anna",
                         "session": row["id"], "target": phones["anna"].pk, "mode": "listen"}
        live = again.spy_monitor.by_user[curator.pk]
        assert (live.spy_channel, live.spy_uniqueid, live.session_id) == (leg, uniqueid, row["id"])
        await until(lambda: orphan not in fakepbx.channels)  # ours, no session: hung up
        assert foreign in fakepbx.channels  # not ours: left alone
        [stale] = await rows(pk=stale)
        assert stale["outcome"] == Outcome.INTERRUPTED
        told = await inbox.next(session=stale["id"])
        assert (told["state"], told["reason"]) == ("interrupted", "bridge_restarted")

        await press(again, curator, {"type": "spy.stop"})
        ended = await inbox.next(state="ended")
    finally:
        await again.stop()

    assert ended["text"] == "Stopped monitoring Anna."
    assert leg not in fakepbx.channels
    [row] = await rows(pk=row["id"])
    assert row["outcome"] == Outcome.ENDED and row["ended_at"]
    hangups = [a["Channel"] for a in fakepbx.actions if a.get("Action") == "Hangup"]
    assert sorted(hangups) == sorted([orphan, leg])


@pytest.mark.parametrize("route", ROUTES)
async def test_after_a_pbx_restart_the_same_channel_name_is_another_call_and_is_not_taken_back(
        fakepbx, bridge, roster, route):
    """Asterisk's channel counters start again at 00000000 after a restart: the same leg name can
    come back for another call. Only the uniqueid tells them apart."""
    people, phones = roster
    inbox, _watched, agent, _prefix = await spying(fakepbx, bridge, roster, route)
    await inbox.next(state="spying")
    [row] = await rows()
    await bridge.stop()
    port = fakepbx.port
    await fakepbx.stop()

    pbx = _fakepbx_phones(FakePBX(port=port, flavour=fakepbx.flavour.name, **FAKEPBX_FAST))
    for device in ("PJSIP/104", "PJSIP/105"):
        pbx.set_phone(device, "answer", ring_seconds=0)
    pbx.switch.ids.clock = lambda: time.time() + 3600  # it came back later: other uniqueids
    await pbx.start()
    try:
        same_agent = await pbx.inbound_call(agent.rsplit("-", 1)[0])
        assert same_agent == agent
        probe = build_bridge(bridge.layer, host="127.0.0.1", port=port, command_modules=())
        await probe.start()
        await probe.client.wait_until("up", timeout=WAIT)
        petrova = await sync_to_async(type(phones["petrova"]).objects.get)(pk=phones["petrova"].pk)
        await probe.client.send("Originate", actions.spy_originate(petrova, agent, "listen", allow_switch=True))
        await until(lambda: row["spy_channel"] in spy_legs(pbx))
        await probe.stop()
        assert pbx.channels[row["spy_channel"]].uniqueid != row["spy_uniqueid"]

        again = await restarted_bridge(bridge, port)
        try:
            [after] = await rows(pk=row["id"])
            assert after["outcome"] == Outcome.INTERRUPTED
            assert again.spy_monitor.by_user == {}
            await until(lambda: row["spy_channel"] not in pbx.channels)  # looks like ours, no session: hung up
        finally:
            await again.stop()
        assert [m for m in inbox.messages if m.get("reason") == "taken_back"] == []
    finally:
        await pbx.stop()


@pytest.mark.parametrize("pbx_options", [{"users": RESTRICTED}])
async def test_when_the_pbx_will_not_list_its_channels_the_rows_end_and_say_why(fakepbx, bridge, roster):
    people, _phones = roster
    stale = await stale_row(people["petrova"])
    await bridge.stop()

    again = await restarted_bridge(bridge, fakepbx.port)
    await again.stop()

    [row] = await rows(pk=stale)
    assert row["outcome"] == Outcome.INTERRUPTED
    assert row["outcome_detail"] == (
        "The bridge restarted and the PBX would not list its channels (Permission denied), so this spy "
        "could not be taken back; it may go on until the phone hangs up.")


class Relay:
    """A TCP relay on the way from the bridge to the PBX: `cut()` drops the connections through it
    (a network cut: the PBX keeps its calls), and the bridge's reconnection goes through it again."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.writers = set()

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, upstream_writer}
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer),
                             return_exceptions=True)

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def cut(self):
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def stop(self):
        self.cut()
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.parametrize("route", ROUTES)
async def test_a_network_cut_holds_the_spy_and_the_next_login_takes_it_back(fakepbx, bridge, roster, route):
    """The link drops but the PBX keeps the call: the page is told the spy may go on, and once the
    bridge is logged in again it finds the leg (name and uniqueid) and Stop works."""
    people, phones = roster
    curator = people["petrova"]
    await bridge.stop()  # this test's bridge reaches the PBX through the relay
    relay = await Relay(fakepbx.port).start()
    via = build_bridge(bridge.layer, host="127.0.0.1", port=relay.port, username="dashboard", secret="dashboard-demo")
    await via.spy_monitor.startup
    await via.start()
    try:
        await via.client.wait_until("up", timeout=WAIT)
        inbox, watched, _agent, _prefix = await spying(fakepbx, via, roster, route)
        await inbox.next(state="spying")
        [row] = await rows()

        relay.cut()
        held = await inbox.next(reason="link_down")
        taken = await inbox.next(reason="taken_back")

        assert (held["state"], held["session"]) == ("spying", row["id"])
        assert (taken["state"], taken["session"], taken["text"]) == ("spying", row["id"], "Listening to Anna")
        assert via.spy_monitor.by_user[curator.pk].spy_channel == row["spy_channel"]
        assert [m for m in watched.messages if m.get("active") is False] == []
        await press(via, curator, {"type": "spy.stop"})
        ended = await inbox.next(state="ended")
    finally:
        await via.stop()
        await relay.stop()
    assert ended["text"] == "Stopped monitoring Anna."
    assert row["spy_channel"] not in fakepbx.channels
    [row] = await rows()
    assert row["outcome"] == Outcome.ENDED
