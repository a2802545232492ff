"""Across processes, through Redis as in production: a logout on one web server, or a password
changed from a management command, ends the sockets open on another; a roster imported with
`manage.py import_roster` reaches the open dashboards."""

import asyncio
import re
import subprocess
import urllib.parse
import urllib.request

import pytest
from channels_redis.core import RedisChannelLayer

from supervision.bridge import BOARD_GROUP
from tests.production_stack import MANAGE, ROOT, WebSocketClient, WebSocketClosed, deployment, free_port, log_in

pytestmark = [pytest.mark.timeout(120)]

SESSION_ENDED = f"closed by the server: {4401:04x}"


def log_out(base_url, cookie):
    token = re.search(r"csrftoken=([^;]+)", cookie).group(1)
    request = urllib.request.Request(base_url + "/logout/", data=urllib.parse.urlencode({"csrfmiddlewaretoken": token}).encode(),
                                     headers={"Cookie": cookie})
    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(request, timeout=10) as response:
        assert response.status == 302


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

    def http_error_302(self, req, fp, code, msg, headers):
        return fp


async def ended_by_the_server(socket, stack):
    """The socket is closed, by the server, because its session ended. The close frame itself
    (code 4401) may be lost when the server's TCP close overtakes it; the server's log says why."""
    with pytest.raises(WebSocketClosed) as closed:
        while True:
            await socket.receive_json(timeout=20)
    assert str(closed.value) in (SESSION_ENDED, "connection closed"), stack.logs()
    return "closed: its login session ended" in stack.logs()


@pytest.fixture
def stack(tmp_path, redis_url):
    with deployment(tmp_path, redis_url, free_port()) as stack:
        yield stack


async def test_a_logout_on_one_web_server_closes_the_socket_open_on_another(stack):
    first, second = stack.start_web(), stack.start_web()
    cookie = await asyncio.to_thread(log_in, first, "petrova", "demo-petrova")
    socket = await WebSocketClient.connect(first, cookie)
    await asyncio.to_thread(log_out, second, cookie)
    assert await ended_by_the_server(socket, stack), stack.logs()


async def test_a_password_changed_from_a_management_command_closes_the_socket(stack):
    web = stack.start_web()
    cookie = await asyncio.to_thread(log_in, web, "petrova", "demo-petrova")
    socket = await WebSocketClient.connect(web, cookie)
    change = ("from accounts.models import User; u = User.objects.get(username='petrova'); "
              "u.set_password('another-Secret-42'); u.save()")
    await asyncio.to_thread(subprocess.run, [*MANAGE, "shell", "-c", change], env=stack.env, cwd=ROOT, check=True)
    assert await ended_by_the_server(socket, stack), stack.logs()


async def test_import_roster_tells_the_open_dashboards(stack, tmp_path):
    layer = RedisChannelLayer(hosts=[stack.env["REDIS_URL"]], prefix=stack.env["CHANNEL_LAYER_PREFIX"])
    channel = await layer.new_channel()
    await layer.group_add(BOARD_GROUP, channel)
    roster = tmp_path / "roster.csv"
    roster.write_text("username,role,curator\nnewcomer,trainee,petrova\n")
    result = await asyncio.to_thread(subprocess.run, [*MANAGE, "import_roster", str(roster)], env=stack.env, cwd=ROOT,
                                     capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    message = await asyncio.wait_for(layer.receive(channel), 20)
    assert message == {"type": "roster.changed"}
    await layer.flush()
