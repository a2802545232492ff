"""Faults on loopback, in the production shape (daphne + `ami_bridge` + Redis, see
tests/production_stack.py), seen from a logged-in WebSocket client like the page's:

- the PBX dies mid-call and comes back: the page says the link is down, a press meanwhile is
  refused in words and audited, the board is rebuilt (no ghost call, none missing);
- the bridge process is SIGKILLed: the page says the bridge is gone; a new one restores the board;
- Redis restarts: the page recovers without a reload;
- a browser that stops reading never holds up the others, and the server lets it go.

Waits are generous (a loaded 2-core machine); how fast things happen is for bench/, not here.
"""

import asyncio
import csv
import io
import signal
import socket
import subprocess

import pytest
import redis

from tests.production_stack import (
    Page,
    WebSocketClient,
    WebSocketClosed,
    deployment,
    fetch,
    free_port,
    log_in,
    production_pbx,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)
HEARTBEAT = 0.5  # BRIDGE_HEARTBEAT_SECONDS of the servers under test: a dead bridge is noticed in 1.5 s


@pytest.fixture
def pbx():
    with production_pbx() as runner:
        yield runner


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test alone (it gets killed), on a free loopback port."""
    port = free_port()

    def start():
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=port, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                return process
            except redis.ConnectionError:
                if process.poll() is not None:
                    pytest.skip("redis-server could not start")
                subprocess.run(["sleep", "0.05"])
        raise RuntimeError("redis-server did not answer")

    class OwnRedis:
        url = f"redis://127.0.0.1:{port}/0"

        def __init__(self):
            self.process = start()

        def kill_and_restart(self):
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = start()

    try:
        server = OwnRedis()
    except FileNotFoundError:
        pytest.skip("redis-server is not installed")
    yield server
    server.process.kill()
    server.process.wait(10)


@pytest.fixture
def stack(tmp_path, redis_url, pbx):
    with deployment(tmp_path, redis_url, pbx.port, BRIDGE_HEARTBEAT_SECONDS=HEARTBEAT) as processes:
        yield processes


async def open_page(web, cookie):
    page = Page(await WebSocketClient.connect(web, cookie))
    await page.until(lambda p: p.snapshot is not None and p.link_state() == "up")
    return page


async def start_call(pbx, device, number):
    return await asyncio.to_thread(pbx.call, lambda p: p.inbound_call(device, caller_num=number))


def calls_on(page):
    """device -> caller numbers of the answered calls the page shows."""
    shown = {}
    for channel in page.channels.values():
        if channel["state"] == "up":
            shown.setdefault(channel["device"], set()).add(channel["connected_num"])
    return shown


def originates(pbx):
    return pbx.call(lambda p: sum(1 for m in p.actions if (m.get("Action") or "").lower() == "originate"))


async def test_pbx_killed_and_restarted_mid_call(stack, pbx):
    web = stack.start_web()
    stack.start_bridge()
    try:
        cookie = await asyncio.to_thread(log_in, web, "petrova", "demo-petrova")
        await wait_until(lambda: pbx.call(lambda p: p.sessions) == 1)
        page = await open_page(web, cookie)
        await start_call(pbx, "SIP/101", "5550101")
        await start_call(pbx, "SIP/102", "5550102")
        await page.until(lambda p: calls_on(p).get("SIP/101") and calls_on(p).get("SIP/102"))

        await asyncio.to_thread(pbx.call, lambda p: p.stop())  # like SIGKILL: sockets closed, calls gone
        await page.until(lambda p: p.link_state() in ("down", "connecting"), timeout=10)
        assert page.link["since"]

        # A press while the PBX is away: refused in words, written to the audit trail, nothing sent.
        before = originates(pbx)
        await page.socket.send_json({"type": "spy", "target": page.extension_id("SIP/101"), "mode": "listen"})
        await page.until(lambda p: any(f["type"] == "spy.status" and f["state"] == "denied" for f in p.frames))
        refusal = [f for f in page.frames if f["type"] == "spy.status"][-1]
        assert refusal["reason"] == "pbx_down"
        assert "PBX link" in refusal["text"]
        assert originates(pbx) == before
        audit = list(csv.DictReader(io.StringIO(await asyncio.to_thread(fetch, web, cookie, "/audit.csv"))))
        assert any(row["decision"] == "pbx_down" and row["outcome"] == "denied" for row in audit), audit

        # Asterisk is back (its calls died with it); a new call starts before the bridge is in again.
        await asyncio.to_thread(pbx.call, lambda p: p.start())
        await start_call(pbx, "SIP/103", "5550103")
        await page.until(lambda p: p.link_state() == "up" and "SIP/103" in calls_on(p), timeout=30)
        await page.until(lambda p: p.link["resync"] == "done")
        assert calls_on(page) == {"SIP/103": {"5550103"}}  # no ghost of 101/102, 103 not missing
        # The bridge after the restart serves presses again: exactly one more Originate.
        await page.socket.send_json({"type": "spy", "target": page.extension_id("SIP/103"), "mode": "listen"})
        await page.until(lambda p: any(f["type"] == "spy.status" and f["state"] == "spying" for f in p.frames))
        assert originates(pbx) == before + 1
        page.socket.close()
    except BaseException:
        print(stack.logs())
        raise


async def test_bridge_process_killed_then_restarted(stack, pbx):
    web = stack.start_web()
    stack.start_bridge()
    try:
        cookie = await asyncio.to_thread(log_in, web, "petrova", "demo-petrova")
        await wait_until(lambda: pbx.call(lambda p: p.sessions) == 1)
        page = await open_page(web, cookie)
        await start_call(pbx, "SIP/101", "5550101")
        await page.until(lambda p: "SIP/101" in calls_on(p))

        stack.kill_bridge()
        await page.until(lambda p: p.link_state() == "no_bridge")
        await start_call(pbx, "SIP/102", "5550102")  # while no bridge watches

        stack.start_bridge()
        await page.until(lambda p: p.link_state() == "up" and "SIP/102" in calls_on(p), timeout=30)
        assert calls_on(page) == {"SIP/101": {"5550101"}, "SIP/102": {"5550102"}}
        page.socket.close()
    except BaseException:
        print(stack.logs())
        raise


async def test_redis_restart_is_survived_without_a_reload(tmp_path, own_redis, pbx):
    with deployment(tmp_path, own_redis.url, pbx.port, BRIDGE_HEARTBEAT_SECONDS=HEARTBEAT) as stack:
        try:
            web = stack.start_web()
            stack.start_bridge()
            cookie = await asyncio.to_thread(log_in, web, "petrova", "demo-petrova")
            await wait_until(lambda: pbx.call(lambda p: p.sessions) == 1)
            page = await open_page(web, cookie)
            page.reconnect_to = (web, cookie)
            await start_call(pbx, "SIP/101", "5550101")
            await page.until(lambda p: "SIP/101" in calls_on(p))

            await asyncio.to_thread(own_redis.kill_and_restart)  # empty: groups and queues are gone
            await start_call(pbx, "SIP/102", "5550102")
            # The page (no reload; its script reopens a socket the server closed) shows the call that
            # started across the restart, and the next one.
            await page.until(lambda p: "SIP/102" in calls_on(p), timeout=40)
            await start_call(pbx, "SIP/103", "5550103")
            await page.until(lambda p: "SIP/103" in calls_on(p), timeout=20)
            assert page.link_state() == "up"
            page.socket.close()
        except BaseException:
            print(stack.logs())
            raise


async def test_a_stuck_browser_holds_up_nobody_and_is_let_go(stack, pbx):
    # daphne drops a socket that answers no WebSocket ping within ping-timeout.
    web = stack.start_web("--ping-interval", "1", "--ping-timeout", "2")
    stack.start_bridge()
    try:
        cookie = await asyncio.to_thread(log_in, web, "petrova", "demo-petrova")
        await wait_until(lambda: pbx.call(lambda p: p.sessions) == 1)
        page = await open_page(web, cookie)

        # The stuck page: a tiny receive buffer, and it never reads (nor answers pings).
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", stack.web_ports[0]))
        reader, writer = await asyncio.open_connection(sock=raw)
        writer.write(
            (f"GET /ws/dashboard/ HTTP/1.1\r\nHost: 127.0.0.1:{stack.web_ports[0]}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
             f"Origin: {web}\r\nCookie: {cookie}\r\n\r\n").encode()
        )
        stuck = WebSocketClient(reader, writer)

        # Plenty of traffic for both: every call shows on the reading page, one after the other.
        for number in range(40):
            device = ("SIP/101", "SIP/102", "SIP/103")[number % 3]
            name = await start_call(pbx, device, f"55502{number:02d}")
            await page.until(lambda p, name=name: p.channels.get(name, {}).get("state") == "up")
            await asyncio.to_thread(pbx.call, lambda p, name=name: p.hangup(name))
            await page.until(lambda p, name=name: name not in p.channels)

        # The stuck one was let go by the server: reading what it left ends in a close or EOF.
        with pytest.raises(WebSocketClosed):
            while True:
                await stuck.receive_json(timeout=30)
        page.socket.close()
    except BaseException:
        print(stack.logs())
        raise
