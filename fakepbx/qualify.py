"""Phone reachability as a PBX with qualify reports it, and the `DeviceStateList` answer.

A phone with qualify on (chan_sip `qualify=yes`, PJSIP `qualify_frequency`) that stops answering
the PBX's OPTIONS makes Asterisk send, once per change (asterisk20-device-state-qualify,
asterisk22-pjsip-device-state-qualify): chan_sip `PeerStatus` Unreachable (`Time: -1`) and
`DeviceStateChange` UNAVAILABLE; PJSIP `PeerStatus`, `ContactStatus` (the contact's URI, AOR,
endpoint, `RoundtripUsec`) and `DeviceStateChange`. Coming back: `PeerStatus` Reachable (no `Time`
line on either), PJSIP's `ContactStatus` Reachable with the round trip, `DeviceStateChange` NOT_INUSE.
Without qualify nothing at all is sent (asterisk20-device-and-peer-state): the simulator's phones
are those with qualify when a test calls `phone_gone` / `phone_back`.
"""

from .channels import action_id_field, event, list_complete


def _pjsip(device):
    return device.startswith("PJSIP/")


def _contact_status(device, status, roundtrip):
    resource = device.split("/", 1)[1]
    return event("ContactStatus", "system", [
        ("URI", f"sip:{resource}@127.0.0.1:5066"), ("ContactStatus", status), ("AOR", resource),
        ("EndpointName", resource), ("RoundtripUsec", str(roundtrip))])


def gone_events(device):
    """What the PBX sends when a qualified phone stops answering, in the captures' order."""
    technology = "PJSIP" if _pjsip(device) else "SIP"
    peer = [("ChannelType", technology), ("Peer", device), ("PeerStatus", "Unreachable")]
    if not _pjsip(device):
        peer.append(("Time", "-1"))
    events = [event("PeerStatus", "system", peer)]
    if _pjsip(device):
        events.append(_contact_status(device, "Unreachable", 0))
    events.append(event("DeviceStateChange", "call", [("Device", device), ("State", "UNAVAILABLE")]))
    return events


def back_events(device, roundtrip_usec=763):
    technology = "PJSIP" if _pjsip(device) else "SIP"
    events = [event("PeerStatus", "system", [("ChannelType", technology), ("Peer", device), ("PeerStatus", "Reachable")])]
    if _pjsip(device):
        events.append(_contact_status(device, "Reachable", roundtrip_usec))
    events.append(event("DeviceStateChange", "call", [("Device", device), ("State", "NOT_INUSE")]))
    return events


def device_state_list(action_id, states):
    """The frames of a `DeviceStateList` answer: `states` is [(device, STATE), ...]. The items look
    like the events but carry the ActionID and no Privilege."""
    frames = [[("Response", "Success"), *action_id_field(action_id), ("EventList", "start"),
               ("Message", "Device State Changes will follow")]]
    for device, state in states:
        frames.append([("Event", "DeviceStateChange"), *action_id_field(action_id), ("Device", device), ("State", state)])
    frames.append(list_complete("DeviceStateListComplete", action_id, len(states)))
    return frames
