"""A simulated Asterisk Manager Interface: a real asyncio TCP server that speaks like the Asterisk
20 (chan_sip) and Asterisk 22 (PJSIP) captures in ../shared/ami-captures, for the dashboard's tests,
its demo and its benchmarks. A product of its own: it knows nothing of the dashboard's roster or
database, and runs alone with `python -m fakepbx --port 5038`.

    pbx = FakePBX(port=0, phones={"SIP/105": "answer"})
    await pbx.start(); ...; await pbx.stop()

server (sessions, actions, users), engine (the call engine: Originate and the applications),
channels (channel state and the event shapes), manager_conf (users and rights), scenarios (demo
day, load).
"""

from .server import FakePBX, FakePBXThread

__all__ = ["FakePBX", "FakePBXThread"]
