"""Where the bridge runs: inside the ASGI server (embedded, one process) or in its own process
(`manage.py ami_bridge`, shared by several daphne processes through Redis). Same bridge either way.
"""

import asyncio
import gc
import logging
import signal

from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)

_embedded = None  # the bridge started inside this process's ASGI server, if any


def build_bridge(layer=None, *, host=None, port=None, username=None, secret=None, name="pbx", command_modules=None):
    """A Bridge wired to the configured PBX (keyword arguments override the settings, for tests;
    `command_modules=()` leaves the command handlers out)."""
    from supervision.ami.client import AMIClient
    from supervision.board import Board
    from supervision.bridge import Bridge

    client = AMIClient(
        host or settings.AMI_HOST,
        port or settings.AMI_PORT,
        username or settings.AMI_USERNAME,
        secret if secret is not None else settings.AMI_SECRET,
        auth=settings.AMI_AUTH,
        action_timeout=settings.AMI_ACTION_TIMEOUT,
        ping_interval=settings.AMI_PING_INTERVAL,
        reconnect_max=settings.AMI_RECONNECT_MAX,
        name=name,
    )
    bridge = Bridge(client, Board(), layer or get_channel_layer(), name=name)
    bridge.install_command_modules(command_modules)
    return bridge


def embedded_bridge():
    return _embedded


def start_embedded_bridge():
    """Start the bridge once, in the running event loop (the ASGI server's); later calls do nothing."""
    global _embedded
    if _embedded is not None:
        return _embedded
    _embedded = build_bridge()
    task = asyncio.get_running_loop().create_task(_embedded.start(), name="embedded-bridge-start")
    task.add_done_callback(_report_start_failure)
    logger.info("AMI bridge started inside the web server (AMI_BRIDGE=embedded) for %s:%s", settings.AMI_HOST, settings.AMI_PORT)
    return _embedded


def _report_start_failure(task):
    if not task.cancelled() and task.exception() is not None:
        logger.error("the embedded AMI bridge did not start", exc_info=task.exception())


class StartBridgeOnFirstCall:
    """ASGI wrapper: daphne sends no lifespan events, so the embedded bridge starts on the first
    HTTP or WebSocket call, inside the server's own event loop."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if _embedded is None and scope["type"] in ("http", "websocket"):
            start_embedded_bridge()
        return await self.app(scope, receive, send)


def tune_garbage_collector(gen0=None):
    """The bridge process's collector settings (settings.BRIDGE_GC_GEN0): what is loaded by now
    (Django, the modules, the roster caches) is moved to the permanent generation, so a full
    collection no longer walks it, and the youngest generation is collected less often. Reference
    counting frees the parser's and the board's objects as before: none of them is in a cycle."""
    gen0 = settings.BRIDGE_GC_GEN0 if gen0 is None else gen0
    if not gen0:
        return gc.get_threshold()
    gc.collect()
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0, max(gen1, 50), max(gen2, 1000))
    return gc.get_threshold()


async def run_forever(bridge):
    """The `ami_bridge` process: start, then run until SIGINT/SIGTERM, then log off cleanly."""
    tune_garbage_collector()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await bridge.start()
    try:
        await stopping.wait()
    finally:
        await bridge.stop()
