"""The product's PJSIP route on Asterisk 22: `Originate Channel: Local/104@dashboard-phones` with
`Variable: AUTOANSWER=call-info`, where deploy/extensions-autoanswer.conf makes the `;2` leg run
`Dial(PJSIP/104,30,b(dashboard-autoanswer^s^1(call-info)))`.

Three channels for one press (asterisk22-pjsip-chanspy-listen, -coreshowchannels):
- `Local/104@dashboard-phones-X;1` runs the Originate's application: it is the OriginateResponse
  `Channel`, the ChanSpy `SpyerChannel`, the PickupChan `Pickup` `Channel`;
- `Local/104@dashboard-phones-X;2` runs the Dial;
- `PJSIP/104-Y`, the phone's own leg, `Up` in `AppDial` and bridged with `;2`.

Outcomes copied from asterisk22-pjsip-originate-failures: a phone answering `486 Busy` fails with
Reason 0 (not 5), `DialEnd` `BUSY`, causes 17; no contact / no such endpoint: Reason 0, `DialEnd`
`CHANUNAVAIL`, cause 3; ringing until the Timeout: Reason 3, cause 19. Without auto-answer the
phone rings first and the OriginateResponse waits for it (asterisk22-pjsip-chanspy-listen-no-autoanswer).
A click-to-call (Context/Exten) to a customer number has Asterisk optimise the Local pair away
once the customer is bridged (asterisk22-pjsip-click-to-call).
"""

import re

from . import channels as calls

CUSTOMER_NUMBER = re.compile(r"^555\d{4}$")  # the lab's from-internal `_555XXXX` customers


def autoanswer_preset(variables):
    for item in variables:
        name, _, value = item.partition("=")
        if name.strip().upper() == "AUTOANSWER":
            return value.strip()
    return ""


class LocalPhoneRoute:
    """Mixed into engine.Switch (uses its channel bookkeeping, ringing and hangup)."""

    async def _originate_phone_route(self, req, exten, context):
        resource = f"{exten}@{context}"
        one, two = self.new_local_pair(exten, context)
        num, name = calls.parse_callerid(req.caller_id)
        if req.caller_id:
            for leg in (one, two):
                self.set_callerid(leg, num, name)
        # the OriginateResponse keeps the Originate's caller id though `;1` takes the phone's number
        one.variables["__response_caller"] = (one.caller_num, one.caller_name)
        self.emit(*calls.local_bridge(one, two))
        self.emit(*calls.dial_event("DialBegin", None, one, ("DialString", resource)))
        preset = autoanswer_preset(req.variables)
        two.priority = 2
        two.application = "Dial"
        two.app_data = f"PJSIP/{exten},30,b(dashboard-autoanswer^s^1({preset}))"
        device = f"PJSIP/{exten}"
        phone = self.phone_for(device)
        if phone is None or phone.behaviour == "unregistered":
            return self._route_unavailable(req, one, two)
        leg = self.new_channel(self.channel_name(device), context="from-internal", linkedid=one.linkedid,
                               device=device)
        leg.exten = exten
        leg.caller_num, leg.caller_name = exten, name or calls.UNKNOWN
        leg.connected_num, leg.connected_name = (num, name) if req.caller_id else (calls.UNKNOWN, calls.UNKNOWN)
        self.emit(*calls.newcallerid(leg))
        if req.caller_id:
            self.emit(*calls.channel_event("NewConnectedLine", leg))
        self.emit(*calls.dial_event("DialBegin", two, leg, ("DialString", exten)))
        two.connected_num, two.connected_name = exten, calls.UNKNOWN if not req.caller_id else two.connected_name
        self.emit(*calls.channel_event("NewConnectedLine", two))
        behaviour = phone.behaviour
        if behaviour in ("busy", "congestion"):
            return self._route_refused(req, one, two, leg, behaviour)
        autoanswer = behaviour == "autoanswer" and bool(preset)
        if not autoanswer and not (behaviour in ("answer", "autoanswer") and phone.ring_seconds <= 0):
            outcome = await self._route_ring(req, one, two, leg, phone)
            if outcome != "answer":
                return self._route_no_answer(req, one, two, leg, outcome)
        return self._route_answer(req, one, two, leg)

    async def _route_ring(self, req, one, two, leg, phone):
        if phone.behaviour == "unreachable":
            # a contact that never replies: no ringing, only the Timeout (orig-unreachable-local)
            outcome, _ = await self._wait_ringing(leg, None, req.timeout)
            return outcome
        self.set_state(leg, 5)
        one.caller_num = leg.exten
        self.set_state(one, 5)
        self.emit(*calls.newcallerid(one))
        self.emit(*calls.dial_event("DialState", None, one, ("DialStatus", "RINGING")))
        self.emit(*calls.dial_event("DialState", two, leg, ("DialStatus", "RINGING")))
        answer_after = None if phone.behaviour == "noanswer" else phone.ring_seconds
        outcome, _ = await self._wait_ringing(leg, answer_after, req.timeout)
        return outcome

    def _route_answer(self, req, one, two, leg):
        self.set_state(leg, 6)
        self.emit(*calls.dial_event("DialEnd", two, leg, ("DialStatus", "ANSWER")))
        self.set_state(two, 6)
        leg.application, leg.app_data = "AppDial", "(Outgoing Line)"

        def after_response(one=one, two=two, leg=leg):
            if not one.alive:
                return
            # `;1` takes the phone's number as its caller id as it answers (its Newstate already
            # says 104, the NewCallerid follows)
            changed = one.caller_num != leg.exten
            one.caller_num = leg.exten
            if one.state != 6:
                self.set_state(one, 6)
            if changed:
                self.emit(*calls.newcallerid(one))
            self.emit(*calls.dial_event("DialEnd", None, one, ("DialStatus", "ANSWER")))
            leg.exten = ""
            bridge = self.join_bridge([leg])
            if req.application.lower() == "pickupchan":
                # `;2` enters the phone's bridge only once PickupChan is done, with the picked
                # caller's id when it took a call (asterisk22-pjsip-pickupchan)
                one.variables["__bridge_twin"] = (bridge, two)
            else:
                self.enter_bridge(bridge, two)
            # only now does `;1` run the Originate's dialplan target (Context/Exten)
            one.context, one.exten, one.priority = target

        placed = (one.context, one.exten, one.priority)
        result = self._answered(req, one)
        target = (one.context, one.exten, one.priority)
        one.context, one.exten, one.priority = placed
        one.after_response.append(after_response)
        return result

    def _route_refused(self, req, one, two, leg, behaviour):
        """`486 Busy` from the headset (orig-busy-headset-local): Reason 0, causes 17."""
        cause, status = (17, "BUSY") if behaviour == "busy" else (34, "CONGESTION")
        number = leg.exten
        leg.context, leg.exten, leg.priority = "dashboard-autoanswer", "s", 3
        self.emit(*calls.channel_event("HangupRequest", leg, ("Cause", str(cause))))
        self.emit(*calls.dial_event("DialEnd", two, leg, ("DialStatus", status)))
        two.priority = 3
        self.emit(*calls.channel_event("SoftHangupRequest", two, ("Cause", "16")))
        self.emit(*calls.channel_event("HangupRequest", one, ("Cause", str(cause))))
        self._drop(two, cause)
        self.emit(*calls.dial_event("DialEnd", None, one, ("DialStatus", status)))
        one.caller_num = number
        self._drop(one, cause)
        leg.context, leg.exten, leg.priority = "from-internal", number, 1
        self._drop(leg, cause)
        return self._fail(req, 0)

    def _route_unavailable(self, req, one, two):
        """No contact, or no such endpoint (orig-no-contact-local): Reason 0, cause 3."""
        two.priority = 3
        self.emit(*calls.channel_event("SoftHangupRequest", two, ("Cause", "16")))
        self.emit(*calls.channel_event("HangupRequest", one, ("Cause", "3")))
        self._drop(two, 3)
        self.emit(*calls.dial_event("DialEnd", None, one, ("DialStatus", "CHANUNAVAIL")))
        self._drop(one, 3)
        return self._fail(req, 0)

    def _route_no_answer(self, req, one, two, leg, outcome):
        """Rang until the Originate Timeout (orig-no-answer-local): Reason 3, cause 19."""
        if outcome == "hungup" or not one.alive:
            return self._fail(req, 0)
        self.emit(*calls.channel_event("HangupRequest", two, ("Cause", "19")))
        # the `;2` Dial is cancelled by the Originate's own Timeout, not its 30 s (orig-no-answer-local)
        self.emit(*calls.dial_event("DialEnd", two, leg, ("DialStatus", "CANCEL")))
        self.emit(*calls.channel_event("SoftHangupRequest", two, ("Cause", "16")))
        one.caller_num = leg.exten
        for channel in (two, one, leg):
            self._drop(channel, 19)
        return self._fail(req, 3)

    def _route_enter_bridge(self, picker):
        bridge, two = picker.variables.pop("__bridge_twin", (None, None))
        if bridge is not None and two.alive:
            self.enter_bridge(bridge, two)

    def _route_picked_up(self, picker, waiting):
        two = picker.variables.get("__bridge_twin", (None, None))[1]
        if two is not None:
            two.caller_num, two.caller_name = waiting.caller_num, waiting.caller_name
            self.emit(*calls.newcallerid(two))
        self._route_enter_bridge(picker)

    def _drop(self, channel, cause):
        """A channel that was never bridged nor spied on goes: only its `Hangup`."""
        if not channel.alive:
            return
        channel.alive = False
        self.mixmonitor_hangup(channel)
        self.emit(*calls.hangup_event(channel, cause))
        self.channels.pop(channel.name, None)
        waiter = self._ring_waits.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(("hungup", None))

    # --- click-to-call through the route --------------------------------------------------------

    async def _route_dial_customer(self, one, number):
        """`;1` runs from-internal `_555XXXX`: Dial(Local/<number>@customer). Once the customer
        answers and is bridged with `;1`, Asterisk optimises the Local pair away: the phone's leg
        moves into the customer's bridge and both `;1` and `;2` hang up with cause 16, while
        `PJSIP/104-...` stays connected (asterisk22-pjsip-click-to-call)."""
        two = one.local_twin
        phone_leg = next((c for c in (two.bridge.channels if two and two.bridge else []) if c is not two), None)
        one.priority = 2
        customer_one, customer_two = self.new_local_pair(number, "customer", linkedid=one.linkedid)
        self.set_callerid(customer_one, number, one.caller_name if one.caller_name != calls.UNKNOWN else "")
        customer_one.connected_num, customer_one.connected_name = one.caller_num, one.caller_name
        self.set_callerid(customer_two, one.caller_num, one.caller_name)
        customer_two.connected_num, customer_two.connected_name = number, calls.UNKNOWN
        self.emit(*calls.local_bridge(customer_one, customer_two))
        customer_two.priority = 2
        self.set_state(customer_two, 6)
        customer_two.priority = 4
        customer_two.application, customer_two.app_data = "Wait", "3600"
        one.application, one.app_data = "Dial", f"Local/{number}@customer,60"
        self.emit(*calls.dial_event("DialBegin", one, customer_one, ("DialString", f"{number}@customer")))
        self.set_state(customer_one, 6)
        self.emit(*calls.dial_event("DialEnd", one, customer_one, ("DialStatus", "ANSWER")))
        customer_one.application, customer_one.app_data = "AppDial", "(Outgoing Line)"
        customer_one.exten = ""
        bridge = self.join_bridge([customer_one, one])
        if two is None or phone_leg is None or not two.alive:
            return
        pair = one.block("LocalOne") + two.block("LocalTwo")
        self.emit(*calls.event("LocalOptimizationBegin", "call", pair + phone_leg.block("Source") + [
            ("DestUniqueId", two.uniqueid), ("Id", "0")]))
        old = phone_leg.bridge
        old.channels.remove(phone_leg)
        self.emit(*calls.bridge_event("BridgeLeave", old, phone_leg))
        bridge.channels.remove(one)
        one.bridge = None
        self.emit(*calls.bridge_event("BridgeLeave", bridge, one))
        bridge.channels.append(phone_leg)
        phone_leg.bridge = bridge
        self.emit(*calls.bridge_event("BridgeEnter", bridge, phone_leg))
        self.emit(*calls.event("LocalOptimizationEnd", "call", pair + [("Success", "No"), ("Id", "0")]))
        old.channels.remove(two)
        two.bridge = None
        self.emit(*calls.bridge_event("BridgeLeave", old, two))
        self.emit(*calls.bridge_event("BridgeDestroy", old))
        self.emit(*calls.channel_event("SoftHangupRequest", two, ("Cause", "16")))
        self.emit(*calls.channel_event("HangupRequest", one, ("Cause", "16")))
        self.emit(*calls.channel_event("SoftHangupRequest", one, ("Cause", "16")))
        one.local_twin = two.local_twin = None
        self._drop(two, 16)
        self._drop(one, 16)
