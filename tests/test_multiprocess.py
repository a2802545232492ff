"""Production shape on loopback: two daphne processes (AMI_BRIDGE=external), one `manage.py
ami_bridge`, the real Redis between them, a fresh database (SQLite or PostgreSQL), the simulated
PBX in this process, and real WebSocket clients logged in through the login form.

Both web servers' pages get the same diffs from the one bridge, and a press on one of them is
executed once: the PBX receives exactly one Originate."""

import asyncio

import pytest

from tests.production_stack import Page, WebSocketClient, deployment, log_in, production_pbx, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def pbx():
    with production_pbx() as runner:
        yield runner


@pytest.fixture
def stack(tmp_path, redis_url, pbx):
    with deployment(tmp_path, redis_url, pbx.port, BRIDGE_HEARTBEAT_SECONDS=1) as processes:
        yield processes


def originates(pbx):
    return pbx.call(lambda p: [dict(m.pairs) for m in p.actions if (m.get("Action") or "").lower() == "originate"])


async def test_two_web_servers_one_bridge_same_diffs_and_one_originate_per_press(stack, pbx):
    web_a, web_b = stack.start_web(), stack.start_web()
    stack.start_bridge()
    try:
        await wait_until(lambda: pbx.call(lambda p: p.sessions) == 1)
        cookie = await asyncio.to_thread(log_in, web_a, "petrova", "demo-petrova")
        # The same session works on both servers: one database, one secret key.
        page_a = Page(await WebSocketClient.connect(web_a, cookie))
        page_b = Page(await WebSocketClient.connect(web_b, cookie))
        for page in (page_a, page_b):
            await page.until(lambda p: p.snapshot is not None and p.link_state() == "up")
        assert page_a.snapshot["me"]["name"] == page_b.snapshot["me"]["name"] == "Anna Petrova"

        await asyncio.to_thread(pbx.call, lambda p: p.inbound_call("SIP/101", caller_num="5550199"))

        def in_call(page):
            return any(c["device"] == "SIP/101" and c["state"] == "up" for c in page.channels.values())

        for page in (page_a, page_b):
            await page.until(in_call)
        diffs_a = [f for f in page_a.frames if f["type"] == "diff"]
        diffs_b = [f for f in page_b.frames if f["type"] == "diff"]
        assert diffs_a and diffs_a == diffs_b
        assert page_a.channels == page_b.channels

        target = page_a.extension_id("SIP/101")
        await page_a.socket.send_json({"type": "spy", "target": target, "mode": "listen"})
        # Both of Anna's pages hear how it went (her user group spans both servers).
        for page in (page_a, page_b):
            await page.until(lambda p: any(f["type"] == "spy.status" and f["state"] == "spying" for f in p.frames))
        sent = originates(pbx)
        assert len(sent) == 1, sent
        assert sent[0]["Channel"] == "SIP/201" and sent[0]["Data"].startswith("SIP/101-")
        page_a.socket.close()
        page_b.socket.close()
    except BaseException:
        print(stack.logs())
        raise
