"""What differs between the two PBXes the simulator plays (../shared/ami-captures):

- `asterisk20`: Asterisk 20.20.1 with chan_sip (the default). One channel-name counter for every
  technology; `Local/<ext>@<any context>` rings the phone `<ext>` itself (the lab dialplan's
  `Answer()` contexts); an AMI Hangup without Cause gives Cause 16.
- `asterisk22`: Asterisk 22.10.1 with PJSIP (asterisk22-pjsip-banner-login-version). PJSIP and
  Local channels count their name suffixes separately (asterisk22-pjsip-call-105-answered);
  `Local/<ext>@<context not of the lab dialplan>` runs deploy/extensions-autoanswer.conf: its `;2`
  leg dials `PJSIP/<ext>` and the phone's own leg is bridged with it (asterisk22-pjsip-chanspy-listen);
  an AMI Hangup without Cause of a channel outside a bridge gives Cause 0 (two-calls-one-phone);
  a phone answering `486 Busy` fails the Originate with Reason 0, not 5 (originate-failures).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavour:
    name: str
    ami_version: str
    asterisk_version: str
    counter_per_technology: bool
    local_phone_route: bool
    unbridged_hangup_cause: int
    phone_busy_reason: int
    phone_technology: str
    customer_context: str  # where a phone's own call to a customer number goes

    @property
    def pickup_swaps_identities(self):
        """chan_sip's PickupChan masquerade can hand the picker's OriginateResponse the ringing
        leg's name (asterisk20-pickup-race-*); through the PJSIP Local route it names its own `;1`
        (asterisk22-pjsip-pickupchan)."""
        return not self.local_phone_route


FLAVOURS = {
    "asterisk20": Flavour("asterisk20", "9.0.0", "20.20.1", False, False, 16, 5, "SIP", "from-internal"),
    "asterisk22": Flavour("asterisk22", "11.0.0", "22.10.1", True, True, 0, 0, "PJSIP", "customer"),
}


def flavour_named(name):
    try:
        return FLAVOURS[name]
    except KeyError:
        raise ValueError(f"unknown flavour {name!r}: one of {', '.join(FLAVOURS)}") from None
