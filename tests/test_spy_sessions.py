"""A page that connects gets its user's sessions in flight: a reloaded page, or a second tab, keeps
Stop and Switch. The bridge answers (`bridge.sessions`), not the socket's memory, so it holds in
the production shape too: web servers and the bridge in separate processes, Redis between them."""

import asyncio

import pytest

from supervision.models import Outcome
from tests.live_stack import (  # noqa: F401
    channel_layer,
    open_dashboard,
    receive_until,
    roster,
    rows,
    started_bridge,
    until,
)
from tests.production_stack import Page, WebSocketClient, deployment, log_in, production_pbx, wait_until

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
async def site_bridge(channel_layer, fakepbx, roster):
    """The bridge with every command module on the layer the dashboard sockets use."""
    async with started_bridge(fakepbx, channel_layer) as bridge:
        yield bridge


def is_status(**match):
    return lambda frame: frame.get("type") == "spy.status" and all(frame.get(k) == v for k, v in match.items())


@pytest.mark.django_db(transaction=True)
async def test_a_second_tab_gets_the_live_session_and_stops_it(fakepbx, site_bridge, roster):
    people, phones = roster
    agent = await fakepbx.inbound_call("SIP/105")
    await until(lambda: (site_bridge.board.channel(agent) or {}).get("state") == "up")
    first = await open_dashboard(people["petrova"])
    await receive_until(first, lambda f: f["type"] == "snapshot")
    await first.send_json_to({"type": "spy", "target": phones["anna"].pk, "mode": "listen"})
    spying = (await receive_until(first, is_status(state="spying")))[-1]

    second = await open_dashboard(people["petrova"])  # a reload, or another tab
    frames = await receive_until(second, is_status())
    watched = await open_dashboard(people["anna"])
    watched_frames = await receive_until(watched, lambda f: f["type"] == "monitored")

    assert [f["type"] for f in frames if f["type"] != "heartbeat"][0] == "snapshot"
    assert frames[-1] == {"type": "spy.status", "state": "spying", "reason": "live", "text": "Listening to Anna",
                          "session": spying["session"], "target": phones["anna"].pk, "mode": "listen"}
    assert watched_frames[-1] == {"type": "monitored", "by": "Olga", "mode": "listen", "active": True}

    await second.send_json_to({"type": "spy.stop", "session": frames[-1]["session"]})
    for socket in (first, second):
        ended = (await receive_until(socket, is_status(state="ended")))[-1]
        assert ended["text"] == "Stopped monitoring Anna."
    [row] = await rows()
    assert row["outcome"] == Outcome.ENDED

    # Nothing in flight any more: a page that connects now gets no session.
    assert site_bridge.spy_monitor.sessions_of(people["petrova"].pk) == []
    for socket in (first, second, watched):
        await socket.disconnect()


# --- the production shape -------------------------------------------------------------------------


@pytest.fixture
def pbx():
    with production_pbx() as runner:
        yield runner


@pytest.fixture
def stack(tmp_path, redis_url, pbx):
    with deployment(tmp_path, redis_url, pbx.port, BRIDGE_HEARTBEAT_SECONDS=1) as processes:
        yield processes


def statuses(page, **match):
    return [f for f in page.frames if is_status(**match)(f)]


async def test_across_web_servers_and_a_bridge_restart_the_session_keeps_its_stop(stack, pbx):
    """Two web servers, one `ami_bridge`: a tab opened on the other server gets the session; the
    bridge process is killed and started again: it takes the spy back, and Stop from that tab
    ends it at the PBX."""
    web_a, web_b = stack.start_web(), stack.start_web()
    stack.start_bridge()
    try:
        await wait_until(lambda: pbx.call(lambda p: p.sessions) == 1)
        cookie = await asyncio.to_thread(log_in, web_a, "petrova", "demo-petrova")
        page_a = Page(await WebSocketClient.connect(web_a, cookie))
        await page_a.until(lambda p: p.snapshot is not None and p.link_state() == "up")
        agent = await asyncio.to_thread(pbx.call, lambda p: p.inbound_call("SIP/101", caller_num="5550199"))
        await page_a.until(lambda p: any(c["name"] == agent and c["state"] == "up" for c in p.channels.values()))
        target = page_a.extension_id("SIP/101")
        await page_a.socket.send_json({"type": "spy", "target": target, "mode": "listen"})
        await page_a.until(lambda p: statuses(p, state="spying"))
        session = statuses(page_a, state="spying")[0]["session"]
        legs = pbx.call(lambda p: [n for n, c in p.channels.items() if c.application == "ChanSpy"])

        page_b = Page(await WebSocketClient.connect(web_b, cookie))
        await page_b.until(lambda p: statuses(p, reason="live"))
        assert statuses(page_b, reason="live")[0]["session"] == session

        stack.kill_bridge()
        stack.start_bridge()
        await page_b.until(lambda p: statuses(p, reason="taken_back"))
        assert statuses(page_b, reason="taken_back")[0]["session"] == session
        assert pbx.call(lambda p: [n for n, c in p.channels.items() if c.application == "ChanSpy"]) == legs

        await page_b.socket.send_json({"type": "spy.stop", "session": session})
        for page in (page_a, page_b):
            await page.until(lambda p: statuses(p, state="ended"))
        assert statuses(page_a, state="ended")[0]["text"] == "Stopped monitoring Dmitry Ivanov."
        hangups = pbx.call(lambda p: [m["Channel"] for m in p.actions if m.get("Action") == "Hangup"])
        assert hangups == legs
        assert pbx.call(lambda p: [n for n, c in p.channels.items() if c.application == "ChanSpy"]) == []
        page_a.socket.close()
        page_b.socket.close()
    except BaseException:
        print(stack.logs())
        raise
