"""Calls that do not start with an Originate: a phone placing a call itself (a trainee dialling
a customer, asterisk22-pjsip-call-105-answered) and a customer calling a phone from the trunk."""

import asyncio

from . import channels as calls
from .local_route import CUSTOMER_NUMBER


class PhoneCalls:
    """Mixed into engine.Switch (uses its phones, channel bookkeeping, ringing and bridges)."""

    async def phone_calls(self, device, number, caller_name=None, talk_seconds=None):
        """The phone dials `number` itself: its incoming channel (`PJSIP/105-...`, `CallerIDNum: 105`,
        `Exten: <number>`) runs `Dial(Local/<number>@customer,60)`, the customer answers at once and
        both are bridged (asterisk22-pjsip-call-105-answered; on Asterisk 20 the Local leg goes to
        `from-internal`). With `talk_seconds` the phone hangs up after that long. Returns the
        phone's channel name."""
        phone = self.phone_for(device) or self.set_phone(device, "answer")
        own_num, own_name = phone.resource, caller_name or calls.UNKNOWN
        context = self.flavour.customer_context
        call = self.new_channel(self.channel_name(device), state=4, context="from-internal", exten=number,
                                device=device, caller=(own_num, own_name))
        if self.flavour.local_phone_route and not CUSTOMER_NUMBER.match(number):
            # an internal number (the lab's `_2XX`) answers at once and waits
            # (the curator's own call in asterisk22-pjsip-busy-own-phone)
            call.priority = 2
            self.set_state(call, 6)
            call.priority, call.application, call.app_data = 4, "Wait", "3600"
            if talk_seconds is not None:
                call.task = self.spawn(self._phone_hangs_up(call, talk_seconds))
            return call.name
        one, two = self.new_local_pair(number, context, linkedid=call.linkedid)
        one.caller_num, one.connected_num, one.connected_name = number, own_num, own_name
        self.emit(*calls.newcallerid(one))
        self.emit(*calls.channel_event("NewConnectedLine", one))
        two.caller_num, two.caller_name, two.connected_num = own_num, own_name, number
        self.emit(*calls.newcallerid(two))
        self.emit(*calls.channel_event("NewConnectedLine", two))
        self.emit(*calls.local_bridge(one, two))
        two.priority = 2
        self.set_state(two, 6)
        two.priority, two.application, two.app_data = 4, "Wait", "3600"
        call.priority = 2
        call.application, call.app_data = "Dial", f"Local/{number}@{context},60"
        if device in self.dialplan_recorded:
            # the site's dialplan records on the phone's own channel before its Dial
            # (asterisk22-pjsip-mixmonitor-dialplan: `MixMonitor(.../${UNIQUEID}.wav)`)
            call.priority = 1
            self.dialplan_mixmonitor(call, f"{call.uniqueid}.wav")
            self.dialplan_dial(call, call.app_data)
        self.emit(*calls.dial_event("DialBegin", call, one, ("DialString", f"{number}@{context}")))
        self.set_state(one, 6)
        self.emit(*calls.dial_event("DialEnd", call, one, ("DialStatus", "ANSWER")))
        self.set_state(call, 6)
        one.exten, one.application, one.app_data = "", "AppDial", "(Outgoing Line)"
        self.join_bridge([one, call])
        if talk_seconds is not None:
            call.task = self.spawn(self._phone_hangs_up(call, talk_seconds))
        return call.name

    async def _phone_hangs_up(self, call, seconds):
        await asyncio.sleep(seconds)
        if call.alive:
            self.emit(*calls.channel_event("HangupRequest", call, ("Cause", "16")))
            self.hangup(call, 16)

    async def internal_call(self, device, to_device, caller_name=None, answer=True, talk_seconds=None):
        """Phone `device` dials another phone's number: its channel (`Ring`, `CallerIDNum` its own
        number, `Exten` the other's) runs `Dial(<to_device>,30)`; the rung phone's channel, in the same
        call (linkedid), shows the caller as caller id and connected line, rings, and answers after
        its ring time (`answer=False`: nobody answers, both end with cause 19 after 30 s).
        On answer the caller's connected line becomes the rung phone. Returns both channel names."""
        phone = self.phone_for(device) or self.set_phone(device, "answer")
        callee = self.phone_for(to_device) or self.set_phone(to_device, "answer")
        own_num, own_name = phone.resource, caller_name or calls.UNKNOWN
        call = self.new_channel(self.channel_name(device), state=4, context="from-internal", exten=callee.resource,
                                device=device, caller=(own_num, own_name))
        call.priority, call.application, call.app_data = 1, "Dial", f"{to_device},30"
        rung = self.new_channel(self.channel_name(to_device), context="from-internal", exten=callee.resource,
                                linkedid=call.linkedid, device=to_device)
        rung.caller_num, rung.caller_name = own_num, own_name
        rung.connected_num, rung.connected_name = own_num, own_name
        self.emit(*calls.newcallerid(rung))
        self.emit(*calls.channel_event("NewConnectedLine", rung))
        rung.application, rung.app_data = "AppDial", "(Outgoing Line)"
        self.emit(*calls.dial_event("DialBegin", call, rung, ("DialString", callee.resource)))
        self.set_state(rung, 5)
        self.emit(*calls.dial_event("DialState", call, rung, ("DialStatus", "RINGING")))
        call.task = self.spawn(self._internal_run(call, rung, callee, answer, talk_seconds))
        return call.name, rung.name

    async def _internal_run(self, call, rung, callee, answer, talk_seconds):
        outcome, _picker = await self._wait_ringing(rung, callee.ring_seconds if answer else None, 30.0)
        if not (call.alive and rung.alive):
            return
        if outcome != "answer":
            self.emit(*calls.dial_event("DialEnd", call, rung, ("DialStatus", "NOANSWER")))
            self.hangup(rung, 19)
            self.hangup(call, 19)
            return
        self.set_state(rung, 6)
        self.emit(*calls.dial_event("DialEnd", call, rung, ("DialStatus", "ANSWER")))
        self.set_state(call, 6)
        call.connected_num, call.connected_name = callee.resource, calls.UNKNOWN
        self.emit(*calls.channel_event("NewConnectedLine", call))
        self.join_bridge([call, rung])
        if talk_seconds is not None:
            await asyncio.sleep(talk_seconds)
            self.hangup(call, 16)

    async def inbound_call(self, device, caller_num="5551234", caller_name="Customer", answer=True, talk_seconds=None):
        """A customer call from the trunk ringing `device`; returns the agent channel once it exists."""
        phone = self.phone_for(device) or self.set_phone(device, "answer")
        customer = self.new_channel(
            self.channel_name(f"{self.flavour.phone_technology}/trunk"), state=4, context="from-trunk",
            exten=phone.resource)
        customer.caller_num, customer.caller_name = caller_num, caller_name
        agent_name = self.channel_name(device) + (";1" if device.startswith("Local/") else "")
        agent = self.new_channel(agent_name, context="from-internal", exten=phone.resource,
                                 linkedid=customer.linkedid, device=device)
        agent.caller_num, agent.caller_name = caller_num, caller_name
        agent.connected_num, agent.connected_name = caller_num, caller_name
        agent.application = "AppDial"
        agent.app_data = "(Outgoing Line)"
        customer.application, customer.app_data = "Dial", f"{device},30"
        if device in self.dialplan_recorded:
            # the site's inbound dialplan records the caller's channel before it dials the phone
            self.dialplan_mixmonitor(customer, f"{customer.uniqueid}.wav")
            self.dialplan_dial(customer, customer.app_data)
        self.emit(*calls.dial_event("DialBegin", customer, agent, ("DialString", phone.resource)))
        self.set_state(agent, 5)
        self.emit(*calls.dial_event("DialState", customer, agent, ("DialStatus", "RINGING")))
        customer.task = self.spawn(self._inbound_run(customer, agent, phone, answer, talk_seconds))
        return agent.name

    async def _inbound_run(self, customer, agent, phone, answer, talk_seconds):
        if not answer or phone.behaviour in ("noanswer", "busy", "congestion", "unregistered", "unreachable"):
            outcome, picker = await self._wait_ringing(agent, None, 30.0)
        else:
            outcome, picker = await self._wait_ringing(agent, phone.ring_seconds, 3600.0)
        if outcome == "pickup" and customer.alive:
            # PickupChan took the call: the rung leg goes ("Answered elsewhere", as in the capture)
            # and the customer talks to the picker's channel.
            self.hangup(agent, 26)
            self.set_state(customer, 6)
            self.join_bridge([customer, picker])
            if talk_seconds is not None:
                await asyncio.sleep(talk_seconds)
                self.hangup(customer)
            return
        if outcome == "pickup" or not customer.alive:
            return
        if outcome != "answer":
            self.emit(*calls.dial_event("DialEnd", customer, agent, ("DialStatus", "NOANSWER")))
            self.hangup(agent, 19)
            self.hangup(customer, 19)
            return
        self.set_state(agent, 6)
        self.emit(*calls.dial_event("DialEnd", customer, agent, ("DialStatus", "ANSWER")))
        self.set_state(customer, 6)
        self.join_bridge([customer, agent])
        if talk_seconds is not None:
            await asyncio.sleep(talk_seconds)
            self.hangup(customer)
