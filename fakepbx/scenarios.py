"""Scenarios of the simulated PBX.

- `idle`: nothing happens by itself; only what clients originate (and tests inject).
- `demo`: a call-centre day. Customers call the registered phones at random, each call is
  answered, talks for a while and ends. On Asterisk 22 (PJSIP) every other call is placed by the
  phone itself to a customer number, as trainees do (asterisk22-pjsip-call-105-answered). Options (FakePBX(demo_options=...)): `interval`
  (mean seconds between new calls, default 4), `talk_min`/`talk_max` (default 20/90 s).
- load mode (`calls_per_second` and `concurrent` in demo_options): keeps about `concurrent`
  calls up, starting `calls_per_second` new ones per second while below that, on as many
  synthetic devices (`SIP/9xxxx`) as needed. Each call makes about 10 events over its life.
"""

import asyncio


async def run_scenario(pbx, name):
    if name == "demo":
        options = pbx.demo_options
        if options.get("calls_per_second") or options.get("concurrent"):
            await _load(pbx, float(options.get("calls_per_second") or 10), int(options.get("concurrent") or 100))
        else:
            await _demo(pbx, options)
    elif name != "idle":
        raise ValueError(f"unknown scenario {name!r}: idle or demo")


def _busy_devices(pbx):
    return {channel.device for channel in pbx.switch.channels.values() if channel.device}


async def _demo(pbx, options):
    interval = float(options.get("interval", 4.0))
    talk_min = float(options.get("talk_min", 20.0))
    talk_max = float(options.get("talk_max", 90.0))
    rng = pbx.random
    while True:
        await asyncio.sleep(rng.expovariate(1.0 / interval) if interval > 0 else 0)
        busy = _busy_devices(pbx)
        free = [device for device in pbx.switch.phones if device not in busy]
        if not free:
            continue
        device = rng.choice(free)
        talk = rng.uniform(talk_min, talk_max)
        if pbx.flavour.local_phone_route and rng.random() < 0.5:
            await pbx.phone_calls(device, f"555{rng.randrange(10**4):04d}", talk_seconds=talk)
            continue
        number = f"5{rng.randrange(10**9, 10**10)}"
        await pbx.inbound_call(device, caller_num=number, caller_name=f"Customer {number[-4:]}", talk_seconds=talk)


async def _load(pbx, calls_per_second, concurrent):
    rng = pbx.random
    talk = concurrent / calls_per_second  # Little's law: that many calls stay up on average
    for index in range(concurrent):
        device = f"SIP/9{index:04d}"
        if device not in pbx.switch.phones:
            pbx.set_phone(device, "answer", ring_seconds=0.5)
    next_device = 0
    while True:
        await asyncio.sleep(1.0 / calls_per_second)
        if len(pbx.switch.channels) // 2 >= concurrent:
            continue
        busy = _busy_devices(pbx)
        for _ in range(concurrent):
            device = f"SIP/9{next_device:04d}"
            next_device = (next_device + 1) % concurrent
            if device not in busy:
                await pbx.inbound_call(device, caller_num=f"5{rng.randrange(10**9, 10**10)}",
                                       talk_seconds=rng.uniform(0.5 * talk, 1.5 * talk))
                break
