"""Help requests in the production shape: two daphne processes, one `manage.py ami_bridge`, Redis
between them. A trainee's raise on one web server reaches his curator's page on the other; when
her page closes, the bridge (which counts open dashboards across processes) hands the request to
the admin's page."""

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


def helps(page, state):
    return [f for f in page.frames if f["type"] == "help" and f["state"] == state]


async def page_of(web, username):
    cookie = await asyncio.to_thread(log_in, web, username, f"demo-{username}")
    page = Page(await WebSocketClient.connect(web, cookie))
    await page.until(lambda p: p.snapshot is not None and p.link_state() == "up")
    return page


async def test_a_raise_crosses_web_servers_and_goes_to_the_admin_when_the_curators_page_closes(stack, pbx):
    web_a, web_b = stack.start_web(), stack.start_web()
    stack.start_bridge()
    try:
        await wait_until(lambda: pbx.call(lambda p: p.sessions) == 1)
        curator = await page_of(web_a, "petrova")
        trainee = await page_of(web_b, "ivanov")
        admin = await page_of(web_b, "admin")
        await asyncio.to_thread(pbx.call, lambda p: p.inbound_call("SIP/101", caller_num="5550199"))
        await trainee.until(lambda p: any(c["device"] == "SIP/101" and c["state"] == "up" for c in p.channels.values()))

        await trainee.socket.send_json({"type": "help.raise"})

        await curator.until(lambda p: helps(p, "open"))
        await trainee.until(lambda p: helps(p, "open"))
        assert helps(trainee, "open")[0]["notified"] == "curator"
        assert not helps(admin, "open")

        curator.socket.close()

        await admin.until(lambda p: helps(p, "open"))
        await trainee.until(lambda p: any(f["notified"] == "admins" for f in helps(p, "open")))
        trainee.socket.close()
        admin.socket.close()
    except BaseException:
        print(stack.logs())
        raise
