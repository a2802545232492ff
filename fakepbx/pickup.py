"""PickupChan in the simulated Asterisk: the picker takes a ringing channel, the ringing
originate's call lives on in the picker's channel and the rung leg ends `Answered elsewhere`.

On chan_sip the picker's OriginateResponse races the `Pickup` event and may name the ringing leg
(asterisk20-pickup-race-1..6, played by `Switch(pickup_race=...)`); through the PJSIP Local route the
response always comes first and names the picker's own `;1` (asterisk22-pjsip-pickupchan). A picker
that finds nothing (too late, or the loser of two) answers and hangs up at once with no `Pickup`.
"""

import asyncio

from . import channels as calls

# The picker's OriginateResponse against its `Pickup` on chan_sip, one per row of the README's race
# table (asterisk20-pickup-race-1..6): which comes first, and whose Channel/Uniqueid it names.
PICKUP_RACES = ("response-first-own-leg", "response-first-ringing-leg", "pickup-first-ringing-leg")
PICKUP_RACE_MODES = PICKUP_RACES + ("random",)


def pickup_race_mode(mode):
    """None keeps the order of asterisk20-sip-ringing-pickupchan (response first, ringing leg)."""
    mode = mode or "response-first-ringing-leg"
    if mode not in PICKUP_RACE_MODES:
        raise ValueError(f"unknown pickup race {mode!r}: one of {', '.join(PICKUP_RACE_MODES)}")
    return mode


class PickupChan:
    """Mixed into engine.Switch (uses its ring waits, hangup and the Local route's bridge)."""

    def pickup_before_response(self, picker, data):
        """What happens between the picker's answer and its OriginateResponse; returns the channel
        the response names. On chan_sip that is a race (asterisk20-pickup-race-1..6): the `Pickup`
        may come first, and the masquerade may hand the response the ringing leg's name and
        Uniqueid (`self.pickup_race`). Through the PJSIP Local route the response always comes first
        and names the picker's own `;1` (asterisk22-pjsip-pickupchan). With nothing left to pick up
        it names the picker's own leg (asterisk20-pickup-race-too-late-*)."""
        target = self.pickup_target(data)
        if target is None or not self.flavour.pickup_swaps_identities:
            return picker
        race = self.pickup_race
        if race == "random":
            race = self.race_random.choice(PICKUP_RACES) if self.race_random else PICKUP_RACES[0]
        if race.startswith("pickup-first"):
            self._pick_up(picker, target)
        return target if race.endswith("ringing-leg") else picker

    def _app_pickupchan(self, picker, data):
        """Runs at once, so of two pickers sent back to back the first wins; the loser, like a
        picker that comes too late, answers and hangs up at once with Normal Clearing and no
        `Pickup` (asterisk20-pickup-race-two-pickers, -too-late-answered)."""
        if picker.variables.pop("__picked_up", None):
            return
        waiting = self.pickup_target(data)
        if waiting is None:
            self._route_enter_bridge(picker)
            self.hangup(picker)
            return
        self._pick_up(picker, waiting)

    def _pick_up(self, picker, waiting):
        picker.variables["__picked_up"] = True
        picker.connected_num, picker.connected_name = waiting.caller_num, waiting.caller_name
        self.emit(*calls.channel_event("NewConnectedLine", picker))
        self._route_picked_up(picker, waiting)
        self.emit(*calls.pickup_event(picker, waiting))
        self._ring_waits[waiting].set_result(("pickup", picker))
        # the picker now carries the picked call until someone hangs up

    def _picked_up(self, req, ringing, picker):
        """The ringing leg was taken by PickupChan: the call lives on in the picker's channel."""
        picker.application, picker.app_data = req.application or "Wait", req.data
        # The ringing originate's response names the picker but keeps the caller id it rang with
        # (asterisk20-pickup-race-*, asterisk22-pjsip-pickupchan).
        picker.variables["__response_caller"] = (ringing.caller_num, ringing.caller_name)
        if self.flavour.local_phone_route:
            # the masquerade swaps the dialplan places: the `;1` goes on in the rung call's
            # (from-internal, s), the rung leg ends where `;1` was (asterisk22-pjsip-pickupchan)
            (picker.context, picker.exten), (ringing.context, ringing.exten) = (
                (ringing.context, ringing.exten), (picker.context, picker.exten))
        # Asterisk reports the originate as answered (by the picker) before the ringing leg goes.
        asyncio.get_running_loop().call_soon(self._finish_pickup, ringing, picker)
        return True, 4, picker

    def _finish_pickup(self, ringing, picker):
        self.emit(*calls.dial_event("DialEnd", None, picker, ("DialStatus", "ANSWER")))
        self.hangup(ringing, 26)

    def pickup_target(self, data):
        """The ringing channel a PickupChan with this Data would take, or None."""
        specs = [s for s in data.split(",")[0].split("&") if s]
        for waiting, waiter in self._ring_waits.items():
            if waiting.alive and not waiter.done() and any(waiting.name.startswith(s) for s in specs):
                return waiting
        return None
