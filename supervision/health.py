"""What a load balancer asks: can this web server work, and is the PBX link up?

`check()` looks at three things, each with a short timeout:
- the database (`SELECT 1`);
- the channel layer (a message to itself and back: with Redis, a round trip through Redis);
- the PBX link, as the bridge sees it: the in-process bridge (AMI_BRIDGE=embedded), or the
  `ami_bridge` process asked over the channel layer (`bridge.ping` -> `bridge.pong`, external).

The web tier is healthy when the database and the channel layer are: the pages, the roster and
the audit work without the PBX, so a PBX outage is "degraded" (HTTP 200) and must not take every
web server out of the pool at once. A broken database or channel layer is "down" (HTTP 503).
Nothing secret is said: states and times only, no hosts, users or error texts.
"""

import asyncio
import time

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection

from supervision.bridge import BRIDGE_CHANNEL

TIMEOUT_SECONDS = 1.0
# The link fields a load balancer may see (the `detail` text may name hosts: left out).
PUBLIC_LINK_FIELDS = ("state", "since", "resync")


def _database_ok():
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    finally:
        close_old_connections()


async def check_database():
    try:
        ok = await asyncio.wait_for(sync_to_async(_database_ok, thread_sensitive=True)(), TIMEOUT_SECONDS * 3)
    except Exception as exc:  # noqa: BLE001 - any failure is "not ok"; the class name says which kind
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": ok}


async def check_channel_layer(layer):
    if layer is None:
        return {"ok": False, "error": "not_configured"}
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.echo"})
        message = await asyncio.wait_for(layer.receive(channel), TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - Redis away, timeout, full: all "not ok"
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": message.get("type") == "health.echo"}


def public_link(link):
    return {key: link.get(key) for key in PUBLIC_LINK_FIELDS}


def no_link(state):
    """The PBX link as reported when there is no bridge link to show ("off", "no_bridge", ...)."""
    return public_link({"state": state})


async def pbx_link(layer):
    """The bridge's link state, or why there is none ("off", "no_bridge")."""
    mode = settings.AMI_BRIDGE
    if mode == "off":
        return no_link("off")
    if mode == "embedded":
        from supervision.bridge_host import embedded_bridge

        bridge = embedded_bridge()
        if bridge is None:
            return no_link("no_bridge")
        return public_link(bridge.link_state())
    try:
        channel = await layer.new_channel()
        await layer.send(BRIDGE_CHANNEL, {"type": "bridge.ping", "reply_to": channel})
        async with asyncio.timeout(TIMEOUT_SECONDS):
            while (message := await layer.receive(channel)).get("type") != "bridge.pong":
                pass
    except Exception:  # noqa: BLE001 - no answer in time, or no layer: the bridge is not reachable
        return no_link("no_bridge")
    return public_link(message["link"])


async def check():
    """(HTTP status, JSON body)."""
    layer = get_channel_layer()
    database, channel_layer = await asyncio.gather(check_database(), check_channel_layer(layer))
    pbx = await pbx_link(layer) if channel_layer["ok"] else no_link("unknown")
    if not (database["ok"] and channel_layer["ok"]):
        status = "down"
    elif pbx["state"] == "up":
        status = "ok"
    else:
        status = "degraded"
    body = {
        "status": status,
        "database": database,
        "channel_layer": channel_layer,
        "pbx": pbx,
        "bridge": settings.AMI_BRIDGE,
        "time": time.time(),
    }
    return (503 if status == "down" else 200), body
