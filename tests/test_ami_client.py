"""The asyncio AMI client over real TCP, against small scripted servers: well-behaved ones that replay
the bytes of the Asterisk 20 captures, and hostile ones (garbage, silence, closing mid-frame, refusing
the login). Tests against the simulated Asterisk are at the end."""

import asyncio
import collections
import hashlib
import logging
import socket

import pytest

from supervision.ami.client import (
    ActionError,
    ActionTimeout,
    AMIClient,
    ConnectionLost,
    NotConnected,
)
from supervision.ami.link import Backoff
from supervision.ami.protocol import InjectionError, Message, Parser, banner, encode_message
from tests.captures import capture_bytes, sent_messages

FAST = dict(action_timeout=1.0, ping_interval=0.2, reconnect_max=0.5, reconnect_min=0.05)
EVENTUALLY = 10.0  # generous bound for "this happens eventually"; never a speed assertion


# -- a scripted AMI server ---------------------------------------------------------------------


class Peer:
    """One accepted connection as the scripted server sees it."""

    def __init__(self, server, reader, writer, index):
        self.server, self.reader, self.writer, self.index = server, reader, writer, index
        self.parser = Parser(expect_banner=False)
        self.inbox = collections.deque()

    async def recv(self):
        """The next action the client sent, or None at EOF."""
        while not self.inbox:
            data = await self.reader.read(65536)
            if not data:
                return None
            self.inbox.extend(self.parser.feed(data))
        msg = self.inbox.popleft()
        self.server.actions.append(msg)
        return msg

    def send(self, *items):
        for item in items:
            self.writer.write(item if isinstance(item, bytes) else encode_message(item))

    async def close(self):
        self.writer.close()


class ScriptedPBX:
    """A TCP server running `scripts[i](peer)` on its i-th connection (the last one repeats)."""

    def __init__(self, *scripts):
        self.scripts = scripts
        self.peers = []
        self.actions = []
        self.errors = []
        self.connected = asyncio.Event()
        self._server = None

    async def start(self, port=0):
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader, writer):
        peer = Peer(self, reader, writer, len(self.peers))
        self.peers.append(peer)
        self.connected.set()
        script = self.scripts[min(peer.index, len(self.scripts) - 1)]
        try:
            await script(peer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as exc:  # noqa: BLE001 - reported by the fixture at teardown
            self.errors.append(exc)
        finally:
            writer.close()

    def named(self, action):
        return [msg for msg in self.actions if msg.get("Action") == action]

    async def stop(self):
        self._server.close()
        for peer in self.peers:
            peer.writer.close()


def reply(action_msg, response="Success", *pairs, **fields):
    return Message([("Response", response), ("ActionID", action_msg.action_id), *pairs, *fields.items()])


async def greet_and_login(peer):
    peer.send(banner())
    login = await peer.recv()
    assert login is not None and login["Action"] == "Login", login
    peer.send(reply(login, Message="Authentication accepted"))
    return login


async def answer(peer, handlers=None):
    """Answer actions until EOF: Ping -> Pong, Logoff -> Goodbye, `handlers[action](peer, msg)`."""
    handlers = handlers or {}
    while (msg := await peer.recv()) is not None:
        action = msg.get("Action")
        if action in handlers:
            if await handlers[action](peer, msg) == "close":
                return
        elif action == "Ping":
            peer.send(reply(msg, Ping="Pong", Timestamp="1795687491.440868"))
        elif action == "Logoff":
            peer.send(reply(msg, "Goodbye", Message="Thanks for all the fish."))
            return
        else:
            peer.send(reply(msg, Message="ok"))


async def well_behaved(peer):
    await greet_and_login(peer)
    await answer(peer)


def capture_frames(name):
    """(banner bytes, [raw frame bytes]) of what the server sent on a captured connection."""
    raw = capture_bytes(name)
    end = raw.index(b"\r\n") + 2
    return raw[:end], [frame + b"\r\n\r\n" for frame in raw[end:].split(b"\r\n\r\n") if frame]


def frame_response_id(frame):
    msg = Parser(expect_banner=False).feed(frame)[0]
    return msg.action_id if msg.event is None else None


def replayer(name):
    """A script that replays a capture's server bytes, byte for byte except the ActionIDs.

    Each action the client sends is matched to the next captured action with the same name; the
    captured frames up to its response are sent (with the client's ActionID substituted), then the
    events that followed it. Actions the capture does not have get a generic answer. When the
    capture's actions run out, the connection closes, as it did in the capture.
    """

    async def script(peer):
        banner_bytes, frames = capture_frames(name)
        captured = list(sent_messages(name))
        ids = {}
        cursor = 0
        peer.send(banner_bytes)

        def send_until_next_response():
            nonlocal cursor
            while cursor < len(frames) and frame_response_id(frames[cursor]) is None:
                peer.send(substitute(frames[cursor]))
                cursor += 1

        def substitute(frame):
            for old, new in ids.items():
                frame = frame.replace(f"ActionID: {old}\r\n".encode(), f"ActionID: {new}\r\n".encode())
            return frame

        while captured:
            msg = await peer.recv()
            if msg is None:
                return
            match = next((i for i, c in enumerate(captured) if c.get("Action") == msg.get("Action")), None)
            if match is None:
                await answer_one(peer, msg)
                continue
            skipped, wanted = captured[:match], captured[match]
            del captured[: match + 1]
            skipped_ids = {c.action_id for c in skipped}
            ids[wanted.action_id] = msg.action_id
            while cursor < len(frames):
                frame_id = frame_response_id(frames[cursor])
                if frame_id not in skipped_ids:
                    peer.send(substitute(frames[cursor]))
                cursor += 1
                if frame_id == wanted.action_id:
                    break
            send_until_next_response()
        while cursor < len(frames):
            peer.send(frames[cursor])
            cursor += 1
        await peer.writer.drain()

    return script


async def answer_one(peer, msg):
    if msg.get("Action") == "Ping":
        peer.send(reply(msg, Ping="Pong", Timestamp="1795687491.440868"))
    else:
        peer.send(reply(msg, "Error", Message="not in this capture"))


async def eventually(predicate, timeout=EVENTUALLY):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
async def scripted():
    servers = []

    async def make(*scripts, port=0):
        server = await ScriptedPBX(*scripts).start(port)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()
    for server in servers:
        assert not server.errors, server.errors


@pytest.fixture
async def make_client():
    clients = []

    def make(port, username="admin", secret="adminsecret", **options):
        client = AMIClient("127.0.0.1", port, username, secret, **{**FAST, "name": "test", **options})
        client.events = []
        client.on_event(client.events.append)
        client.history = []
        client.on_link(client.history.append)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.stop()


def states(client):
    return [state.state for state in client.history]


# -- login -------------------------------------------------------------------------------------


async def test_plain_login_against_the_banner_login_ping_capture(scripted, make_client):
    server = await scripted(replayer("asterisk20-banner-login-ping"))
    client = make_client(server.port)
    await client.start()
    link = await client.wait_until("up", timeout=EVENTUALLY)

    assert link.banner == "Asterisk Call Manager/9.0.0"
    assert link.ami_version == "9.0.0"
    login = server.named("Login")[0]
    assert (login["Username"], login["Secret"]) == ("admin", "adminsecret")
    assert [msg.event for msg in client.events][:2] == ["FullyBooted", "SuccessfulAuth"]
    pong = await client.send("Ping")
    assert pong["Ping"] == "Pong"


async def test_md5_challenge_login_sends_the_key_asterisk_accepted(scripted, make_client):
    server = await scripted(replayer("asterisk20-login-md5-challenge"))
    client = make_client(server.port, auth="md5")
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    challenge, login = server.actions[:2]
    assert challenge.pairs == [("Action", "Challenge"), ("ActionID", challenge.action_id), ("AuthType", "MD5")]
    captured_login = sent_messages("asterisk20-login-md5-challenge")[1]
    assert login["Key"] == captured_login["Key"] == hashlib.md5(b"968246833adminsecret").hexdigest()
    without_id = [pair for pair in login.pairs if pair[0] != "ActionID"]
    assert without_id == [pair for pair in captured_login.pairs if pair[0] != "ActionID"]
    assert "Secret" not in login  # the secret never crosses the wire with MD5


@pytest.mark.parametrize("capture", ["asterisk20-login-failed", "asterisk20-login-failed-unknown-user"])
async def test_wrong_credentials_are_login_refused_and_retried_slowly(scripted, make_client, caplog, capture):
    server = await scripted(replayer(capture), well_behaved)
    client = make_client(server.port, secret="wrongsecret", reconnect_max=0.4)
    caplog.set_level(logging.INFO, logger="supervision.ami")
    await client.start()
    refused = await client.wait_until("login_refused", timeout=EVENTUALLY)

    assert "Authentication failed" in refused.detail
    assert refused.refused_with == "Authentication failed"  # the PBX's own words, for ami_check
    assert refused.retry_in >= 0.4 / 2  # the long delay straight away, not the short first step
    assert any(r.levelno == logging.ERROR and "Authentication failed" in r.getMessage() for r in caplog.records)
    # It does try again (the second connection accepts any secret).
    up = await client.wait_until("up", timeout=EVENTUALLY)
    assert len(server.peers) >= 2
    assert up.refused_with is None


def test_backoff_is_capped_jittered_and_exponential():
    backoff = Backoff(0.5, 30.0)
    delays = [backoff.next_delay() for _ in range(12)]
    assert 0.25 <= delays[0] <= 0.5
    assert 0.5 <= delays[1] <= 1.0
    assert all(15.0 <= d <= 30.0 for d in delays[7:])
    assert 15.0 <= backoff.longest() <= 30.0
    backoff.reset()
    assert backoff.next_delay() <= 0.5


# -- actions -----------------------------------------------------------------------------------


async def test_coreshowchannels_items_are_gathered_not_streamed(scripted, make_client):
    server = await scripted(replayer("asterisk20-coreshowchannels"))
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    items = await client.send_list("CoreShowChannels")

    assert [item.event for item in items] == ["CoreShowChannel"] * 4
    assert [item["Channel"] for item in items] == [
        "Local/105@phones-00000015;2",
        "Local/105@phones-00000015;1",
        "Local/104@phones-00000016;1",
        "Local/104@phones-00000016;2",
    ]
    assert {item.action_id for item in items} == {server.named("CoreShowChannels")[0].action_id}
    streamed = {msg.event for msg in client.events}
    assert "Newchannel" in streamed  # the capture's call events still reach subscribers
    assert not streamed & {"CoreShowChannel", "CoreShowChannelsComplete"}


async def test_list_interleaved_with_unrelated_events(scripted, make_client):
    async def list_with_noise(peer, msg):
        peer.send(reply(msg, EventList="start", Message="Channels will follow"))
        peer.send(Message.of(("Event", "Newchannel"), ("Channel", "SIP/104-00000001")))
        peer.send(Message.of(("Event", "CoreShowChannel"), ("ActionID", msg.action_id), ("Channel", "SIP/105-00000002")))
        peer.send(Message.of(("Event", "Hangup"), ("Channel", "SIP/104-00000001")))
        peer.send(Message.of(("Event", "CoreShowChannelsComplete"), ("ActionID", msg.action_id), ("EventList", "Complete"), ("ListItems", "1")))

    async def script(peer):
        await greet_and_login(peer)
        await answer(peer, {"CoreShowChannels": list_with_noise})

    server = await scripted(script)
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    items = await client.send_list("CoreShowChannels")

    assert [item["Channel"] for item in items] == ["SIP/105-00000002"]
    assert [msg.event for msg in client.events] == ["Newchannel", "Hangup"]


async def test_list_action_refused_raises_action_error_and_the_link_stays_up(scripted, make_client):
    async def refuse(peer, msg):
        peer.send(reply(msg, "Error", Message="Permission denied"))

    async def script(peer):
        await greet_and_login(peer)
        await answer(peer, {"CoreShowChannels": refuse, "Hangup": refuse})

    server = await scripted(script)
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    with pytest.raises(ActionError) as listed:
        await client.send_list("CoreShowChannels")
    assert listed.value.message == "Permission denied"
    with pytest.raises(ActionError) as hung:
        await client.send("Hangup", {"Channel": "SIP/105-00000001"})
    assert hung.value.message == "Permission denied"
    assert client.link.state == "up"
    assert (await client.send("Ping"))["Ping"] == "Pong"


async def test_restricted_user_capture_permission_denied(scripted, make_client):
    server = await scripted(replayer("asterisk20-restricted-1cami"))
    client = make_client(server.port, username="1cami", secret="PASSWORD1cami", ping_interval=30)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    with pytest.raises(ActionError, match="Permission denied"):
        await client.send_list("CoreShowChannels")
    queued = await client.send("Originate", {"Channel": "Local/105@phones", "Application": "Wait", "Data": "600", "Async": "true"})
    assert queued["Message"] == "Originate successfully queued"
    assert client.link.state == "up"


async def test_answers_reach_their_own_futures_whatever_the_order(scripted, make_client):
    held = []

    async def hold(peer, msg):
        held.append(msg)
        if len(held) == 5:
            for waiting in reversed(held):
                peer.send(reply(waiting, Message=waiting["Variable"]))

    async def script(peer):
        await greet_and_login(peer)
        await answer(peer, {"Setvar": hold})

    server = await scripted(script)
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    answers = await asyncio.gather(*(client.send("Setvar", {"Variable": f"v{i}", "Value": "1"}) for i in range(5)))

    assert [a["Message"] for a in answers] == [f"v{i}" for i in range(5)]
    ids = [msg.action_id for msg in server.actions]
    assert len(ids) == len(set(ids))


async def test_originate_response_reaches_on_event_after_the_future_resolved(scripted, make_client):
    async def originate(peer, msg):
        peer.send(reply(msg, Message="Originate successfully queued"))
        peer.send(
            Message.of(
                ("Event", "OriginateResponse"), ("Privilege", "call,all"), ("ActionID", msg.action_id),
                ("Response", "Failure"), ("Channel", "Local/999@nowhere"), ("Reason", "0"),
            )
        )

    async def script(peer):
        await greet_and_login(peer)
        await answer(peer, {"Originate": originate})

    server = await scripted(script)
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    queued = await client.send("Originate", {"Channel": "Local/999@nowhere", "Application": "Wait", "Async": "true"})

    await eventually(lambda: any(msg.event == "OriginateResponse" for msg in client.events))
    outcome = next(msg for msg in client.events if msg.event == "OriginateResponse")
    assert outcome.action_id == queued.action_id
    assert outcome["Reason"] == "0"


async def test_an_unanswered_action_times_out_and_the_link_stays_up(scripted, make_client):
    async def ignore(peer, msg):
        return None

    async def script(peer):
        await greet_and_login(peer)
        await answer(peer, {"Status": ignore})

    server = await scripted(script)
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    with pytest.raises(ActionTimeout):
        await client.send("Status", timeout=0.3)
    assert client.link.state == "up"
    assert (await client.send("Ping"))["Ping"] == "Pong"


async def test_cr_lf_in_a_value_is_refused_before_anything_is_written(scripted, make_client):
    server = await scripted(well_behaved)
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    with pytest.raises(InjectionError):
        await client.send("Originate", {"Channel": "SIP/104\r\nAction: Hangup", "Application": "Wait"})
    with pytest.raises(InjectionError):
        await client.send("Originate", [("Variable", "A=1\nB=2")])
    with pytest.raises(ValueError, match="ActionID"):
        await client.send("Ping", {"ActionID": "mine"})
    assert (await client.send("Ping"))["Ping"] == "Pong"
    assert {msg["Action"] for msg in server.actions} <= {"Login", "Ping"}
    assert not server.named("Hangup")


async def test_sending_while_not_logged_in_raises_not_connected(make_client):
    client = make_client(free_port(), reconnect_min=30, reconnect_max=30)  # stays down while we look
    with pytest.raises(NotConnected):
        await client.send("Ping")
    await client.start()
    await client.wait_until("down", timeout=EVENTUALLY)
    with pytest.raises(NotConnected, match="refused"):
        await client.send("Ping")


async def test_stop_logs_off(scripted, make_client):
    server = await scripted(well_behaved)
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    await client.stop()

    assert server.actions[-1]["Action"] == "Logoff"
    assert client.link.state == "down" and client.link.detail == "stopped"


# -- losing the link ---------------------------------------------------------------------------


async def test_in_flight_originate_fails_and_is_never_resent(scripted, make_client):
    async def drop_on_originate(peer):
        await greet_and_login(peer)
        await answer(peer, {"Originate": lambda peer, msg: _close(peer)})

    server = await scripted(drop_on_originate, well_behaved)
    client = make_client(server.port)
    logins = []

    async def count_login():
        logins.append(client.link.state)

    client.on_login(count_login)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    with pytest.raises(ConnectionLost):
        await client.send("Originate", {"Channel": "Local/104@phones", "Application": "Wait", "Async": "true"})
    await eventually(lambda: len(logins) == 2 and client.link.state == "up")
    # A re-sent Originate would have been written before this Ping: TCP keeps the order.
    assert (await client.send("Ping"))["Ping"] == "Pong"

    assert len(server.named("Originate")) == 1
    assert len(server.peers) >= 2


async def _close(peer):
    await peer.close()
    return "close"


@pytest.mark.parametrize(
    "kind, detail",
    [
        ("sigterm", "Asterisk is shutting down (Shutdown: Cleanly, Restart: False); connection closed"),
        ("sigkill", "closed the connection"),
    ],
)
async def test_asterisk_restart_captures_reconnect_and_rebuild(scripted, make_client, kind, detail):
    server = await scripted(
        replayer(f"asterisk20-restart-{kind}-admin"), replayer(f"asterisk20-restart-{kind}-reconnect")
    )
    client = make_client(server.port, ping_interval=30)
    rebuilds = []

    async def rebuild():
        rebuilds.append(await client.send("Ping"))

    client.on_login(rebuild)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    await client.send("Originate", {"Channel": "Local/105@phones", "Application": "Wait", "Data": "600", "Async": "true"})

    await eventually(lambda: len(rebuilds) == 2 and client.link.state == "up")
    downs = [state for state in client.history if state.state == "down"]
    assert detail in downs[-1].detail
    if kind == "sigterm":
        assert "Shutdown" in [msg.event for msg in client.events]
        assert any(s.detail.startswith("Asterisk is shutting down") and s.retry_in is None for s in downs)
    assert [msg.event for msg in client.events].count("FullyBooted") == 2  # one per login


async def test_core_restart_now_fails_the_in_flight_command_once(scripted, make_client):
    server = await scripted(
        replayer("asterisk20-restart-core-restart-now-admin"),
        replayer("asterisk20-restart-core-restart-now-reconnect"),
    )
    client = make_client(server.port, ping_interval=30)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)
    await client.send("Originate", {"Channel": "Local/105@phones", "Application": "Wait", "Data": "600", "Async": "true"})

    with pytest.raises(ConnectionLost):
        await client.send("Command", {"Command": "core restart now"})

    await eventually(lambda: len(server.peers) >= 2 and client.link.state == "up")
    assert (await client.send("Ping"))["Ping"] == "Pong"
    assert len(server.named("Command")) == 1


async def test_connection_refused_then_the_pbx_comes_up(scripted, make_client):
    port = free_port()
    client = make_client(port)
    await client.start()
    down = await client.wait_until("down", timeout=EVENTUALLY)
    assert "refused" in down.detail
    assert down.retry_in is not None

    await scripted(well_behaved, port=port)
    await client.wait_until("up", timeout=EVENTUALLY)


async def test_garbage_bytes_are_a_protocol_error_then_reconnect(scripted, make_client, caplog):
    async def garbage(peer):
        await greet_and_login(peer)
        peer.send(b"\x00\xff\xfe this is not AMI at all\r\n\r\n")
        await answer(peer)

    server = await scripted(garbage, well_behaved)
    client = make_client(server.port)
    caplog.set_level(logging.INFO, logger="supervision.ami")
    await client.start()

    await eventually(lambda: len(server.peers) >= 2 and client.link.state == "up")
    protocol_downs = [s for s in client.history if s.state == "down" and "protocol error" in s.detail]
    assert protocol_downs and "malformed line" in protocol_downs[0].detail
    assert any(r.levelno == logging.ERROR and "protocol error" in r.getMessage() for r in caplog.records)


async def test_an_endless_line_is_a_protocol_error(scripted, make_client):
    async def flood(peer):
        await greet_and_login(peer)
        peer.send(b"X" * 20000)
        await answer(peer)

    server = await scripted(flood, well_behaved)
    client = make_client(server.port)
    await client.start()

    await eventually(lambda: len(server.peers) >= 2 and client.link.state == "up")
    assert any("longer than" in s.detail for s in client.history if s.state == "down")


async def test_not_an_ami_server(scripted, make_client):
    async def ssh(peer):
        peer.send(b"SSH-2.0-OpenSSH_9.6\r\n")
        await peer.recv()

    server = await scripted(ssh)
    client = make_client(server.port)
    await client.start()
    down = await client.wait_until("down", timeout=EVENTUALLY)
    assert "not an AMI server" in down.detail and "SSH-2.0" in down.detail


async def test_peer_closing_mid_frame_fails_the_action_in_flight(scripted, make_client):
    async def half_answer(peer, msg):
        peer.send(f"Response: Success\r\nActionID: {msg.action_id}\r\nEventList: st".encode())
        await peer.writer.drain()
        return await _close(peer)

    async def script(peer):
        await greet_and_login(peer)
        await answer(peer, {"CoreShowChannels": half_answer})

    server = await scripted(script, well_behaved)
    client = make_client(server.port)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    with pytest.raises(ConnectionLost, match="middle of a message"):
        await client.send_list("CoreShowChannels")
    await eventually(lambda: len(server.peers) >= 2 and client.link.state == "up")
    assert len(server.named("CoreShowChannels")) == 1


async def test_silent_peer_without_banner(scripted, make_client):
    async def silent(peer):
        await peer.recv()

    server = await scripted(silent, well_behaved)
    client = make_client(server.port, action_timeout=0.3)
    await client.start()

    await eventually(lambda: len(server.peers) >= 2 and client.link.state == "up")
    assert any("no AMI banner" in s.detail for s in client.history if s.state == "down")


async def test_peer_that_stops_answering_ping_is_dropped(scripted, make_client, caplog):
    async def deaf(peer):
        await greet_and_login(peer)
        while await peer.recv() is not None:
            pass  # reads everything, answers nothing

    server = await scripted(deaf, well_behaved)
    client = make_client(server.port, pong_timeout=0.3)
    caplog.set_level(logging.INFO, logger="supervision.ami")
    await client.start()

    await eventually(lambda: len(server.peers) >= 2 and client.link.state == "up")
    assert any("no answer to Ping" in s.detail for s in client.history if s.state == "down")
    assert any("stopped answering Ping" in r.getMessage() for r in caplog.records)


async def test_login_unanswered_then_reconnect(scripted, make_client):
    async def mute_after_banner(peer):
        peer.send(banner())
        await peer.recv()
        await peer.recv()

    server = await scripted(mute_after_banner, well_behaved)
    client = make_client(server.port, action_timeout=0.3)
    await client.start()

    await eventually(lambda: len(server.peers) >= 2 and client.link.state == "up")
    assert any("no answer to the login" in s.detail for s in client.history if s.state == "down")


async def test_on_event_and_on_link_callbacks_that_raise_do_not_break_the_link(scripted, make_client):
    async def chatty(peer):
        await greet_and_login(peer)
        peer.send(Message.of(("Event", "Newchannel"), ("Channel", "SIP/104-00000001")))
        await answer(peer)

    server = await scripted(chatty)
    client = make_client(server.port)

    def broken(_arg):
        raise RuntimeError("subscriber bug")

    client.on_event(broken)
    client.on_link(broken)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)
    await eventually(lambda: client.events)
    assert (await client.send("Ping"))["Ping"] == "Pong"
    assert states(client)[-1] == "up"


# -- against the simulated Asterisk --------------------------------------------------------------


async def _fakepbx_on(port, **options):
    from fakepbx import FakePBX
    from tests.conftest import FAKEPBX_FAST, _fakepbx_phones

    return await _fakepbx_phones(FakePBX(port=port, **{**FAKEPBX_FAST, **options})).start()


async def test_fakepbx_originate_outcome_and_board_list(fakepbx, make_client):
    client = make_client(fakepbx.port, "dashboard", "dashboard-demo")
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    queued = await client.send("Originate", {"Channel": "SIP/105", "Application": "Wait", "Data": "600", "Async": "true"})
    await eventually(lambda: any(m.event == "OriginateResponse" for m in client.events))
    outcome = next(m for m in client.events if m.event == "OriginateResponse")
    assert (outcome.action_id, outcome["Response"]) == (queued.action_id, "Success")

    items = await client.send_list("CoreShowChannels")
    assert [item["Channel"] for item in items] == [outcome["Channel"]]
    assert not any(m.event in ("CoreShowChannel", "CoreShowChannelsComplete") for m in client.events)


async def test_fakepbx_md5_login_and_permission_denied(make_client):
    pbx = await _fakepbx_on(0, users={"1cami": {"secret": "PASSWORD1cami", "read": "call", "write": "originate"}})
    try:
        client = make_client(pbx.port, "1cami", "PASSWORD1cami", auth="md5")
        await client.start()
        await client.wait_until("up", timeout=EVENTUALLY)
        with pytest.raises(ActionError) as denied:
            await client.send("Hangup", {"Channel": "SIP/105-00000001"})
        assert denied.value.message == "Permission denied"
        assert client.link.state == "up"
        assert [m["Action"] for m in pbx.actions][:2] == ["Challenge", "Login"]
    finally:
        await client.stop()
        await pbx.stop()


async def test_fakepbx_wrong_secret_is_login_refused(fakepbx, make_client):
    client = make_client(fakepbx.port, "dashboard", "not-the-secret")
    await client.start()
    refused = await client.wait_until("login_refused", timeout=EVENTUALLY)
    assert "Authentication failed" in refused.detail


async def test_fakepbx_killed_in_flight_originate_fails_once_then_rebuild(make_client):
    pbx = await _fakepbx_on(0)
    port = pbx.port
    pbx.set_phone("SIP/106", "answer", ring_seconds=60)  # rings on: a synchronous Originate stays in flight
    client = make_client(port, "dashboard", "dashboard-demo")
    rebuilt = []

    async def rebuild():
        rebuilt.append(await client.send_list("CoreShowChannels"))

    client.on_login(rebuild)
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    originate = asyncio.create_task(
        client.send("Originate", {"Channel": "SIP/106", "Application": "Wait", "Data": "600"}, timeout=30)
    )
    await eventually(lambda: any(m.get("Action") == "Originate" for m in pbx.actions))
    await pbx.stop()  # like SIGKILL
    with pytest.raises(ConnectionLost):
        await originate
    await client.wait_until("down", timeout=EVENTUALLY)

    restarted = await _fakepbx_on(port)
    try:
        await eventually(lambda: len(rebuilt) == 2 and client.link.state == "up")
        assert (await client.send("Ping"))["Ping"] == "Pong"
        originates = [m for p in (pbx, restarted) for m in p.actions if m.get("Action") == "Originate"]
        assert len(originates) == 1
        assert rebuilt[1] == []  # the restarted PBX has no calls: the board is rebuilt empty
    finally:
        await client.stop()
        await restarted.stop()


async def test_fakepbx_clean_shutdown_is_reported(make_client):
    pbx = await _fakepbx_on(0)
    client = make_client(pbx.port, "dashboard", "dashboard-demo")
    await client.start()
    await client.wait_until("up", timeout=EVENTUALLY)

    await pbx.shutdown()

    down = await client.wait_until("down", timeout=EVENTUALLY)
    assert down.detail.startswith("Asterisk is shutting down (Shutdown: Cleanly")
    await client.stop()


async def test_down_since_is_when_the_link_went_down_whatever_the_retries(make_client):
    """"PBX link down since ..." names the moment the link was lost: every retry goes connecting,
    then down again, and none of them moves `since`; the link coming back up does."""
    pbx = await _fakepbx_on(0)
    client = make_client(pbx.port, "dashboard", "dashboard-demo", reconnect_max=0.05)
    await client.start()
    up = await client.wait_until("up", timeout=EVENTUALLY)

    await pbx.stop()  # like SIGKILL: nothing listens on the port any more
    went_down = await client.wait_until("down", timeout=EVENTUALLY)
    history_start = len(client.history)
    await eventually(lambda: states(client)[history_start:].count("down") >= 3)

    retries = client.history[history_start:]
    assert {"connecting", "down"} <= {state.state for state in retries}
    assert went_down.since > up.since
    assert {state.since for state in retries} == {went_down.since}

    restarted = await _fakepbx_on(pbx.port)
    try:
        back = await client.wait_until("up", timeout=EVENTUALLY)
        assert back.since > went_down.since
    finally:
        await client.stop()
        await restarted.stop()
