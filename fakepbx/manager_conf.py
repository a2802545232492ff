"""manager.conf for the simulated Asterisk: users, secrets, read/write classes and permit/deny.

Pure: text in, `ManagerUser` objects out, plus the same permission arithmetic Asterisk 20's
manager.c does, so a restricted user (the article's `1cami`: read=call, write=originate) is refused
exactly where a real PBX refuses it.
"""

import ipaddress
from dataclasses import dataclass, field

# Every class name manager.conf accepts for read=/write= (manager.c `perms[]`).
CLASSES = (
    "system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf", "reporting",
    "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security", "message",
)

# Write classes an action needs; an action is allowed when the user holds ANY of them
# (manager.c: `session->writeperm & act->authority`). Missing here = needs nothing.
ACTION_CLASSES = {
    "originate": {"originate"},
    "hangup": {"system", "call"},
    "status": {"system", "call", "reporting"},
    "coreshowchannels": {"system", "reporting"},
    "devicestatelist": {"call", "reporting"},
    "command": {"command"},
    "playdtmf": {"call"},
    "redirect": {"call"},
    "setvar": {"call"},
    "getvar": {"call", "reporting"},
    "coresettings": {"system", "reporting"},
    # app_mixmonitor.c: MixMonitor is EVENT_FLAG_SYSTEM only, StopMixMonitor SYSTEM | CALL
    # (asterisk2*-mixmonitor-1cami: `manager show command` says the same)
    "mixmonitor": {"system"},
    "stopmixmonitor": {"system", "call"},
    "corestatus": {"system", "reporting"},
}
# Actions anyone logged in may run (authority 0), as ListCommands shows them.
OPEN_ACTIONS = (
    "BridgeDestroy", "BridgeInfo", "BridgeKick", "BridgeList", "BridgeTechnologyList",
    "BridgeTechnologySuspend", "BridgeTechnologyUnsuspend", "Challenge", "Events", "ListCommands",
    "Login", "Logoff", "Ping", "WaitEvent",
)
# Actions the simulator implements, with the class text ListCommands prints for them.
IMPLEMENTED_ACTIONS = {
    "CoreSettings": "system,reporting,all",
    "CoreShowChannels": "system,reporting,all",
    "DeviceStateList": "call,reporting,all",
    "Hangup": "system,call,all",
    "MixMonitor": "system,all",
    "Originate": "originate,all",
    "PlayDTMF": "call,all",
    "Status": "system,call,reporting,all",
    "StopMixMonitor": "system,call,all",
}

# Originate of these applications/data needs the `system` write class (manager.c action_originate).
def originate_blacklisted(application, data):
    app = (application or "").lower()
    data = data or ""
    return (
        "system" in app
        or "exec" in app
        or ("agi" in app and "async" not in app)
        or "SHELL" in data
        or "eval" in data.lower()
    )


@dataclass
class ManagerUser:
    name: str
    secret: str = ""
    read: set = field(default_factory=set)
    write: set = field(default_factory=set)
    acl: list = field(default_factory=list)  # [(allow: bool, network)], in file order

    def may_write(self, action):
        needed = ACTION_CLASSES.get(action.lower())
        return not needed or bool(self.write & needed)

    def may_read(self, event_class):
        return event_class in self.read

    def address_allowed(self, address):
        return acl_allows(self.acl, address)


def parse_classes(text):
    """`call,originate` / `all` / `none` -> set of class names (unknown words are ignored, as Asterisk does)."""
    out = set()
    for word in (part.strip().lower() for part in text.split(",")):
        if word == "all":
            out.update(CLASSES)
        elif word in CLASSES:
            out.add(word)
    return out


def parse_network(text):
    """`10.0.0.0/8`, `127.0.0.1/255.255.255.255` or a bare address -> ip_network."""
    text = text.strip()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValueError(f"bad permit/deny value {text!r}") from exc


def acl_allows(acl, address):
    """ast_apply_ha: every rule is tried in order and the LAST matching one decides; default allow."""
    if not acl:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    allowed = True
    for allow, network in acl:
        if ip.version == network.version and ip in network:
            allowed = allow
    return allowed


def parse_manager_conf(text):
    """Asterisk config syntax: `[section]`, `key = value` (or `=>`), `;` comments. [general] is skipped."""
    users = {}
    current = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            name = line[1 : line.index("]")] if "]" in line else ""
            if not name:
                raise ValueError(f"manager.conf line {lineno}: bad section header {raw!r}")
            current = None if name == "general" else users.setdefault(name, ManagerUser(name))
            continue
        key, sep, value = line.replace("=>", "=").partition("=")
        if not sep:
            raise ValueError(f"manager.conf line {lineno}: expected key = value, got {raw!r}")
        if current is None:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "secret":
            current.secret = value
        elif key == "read":
            current.read = parse_classes(value)
        elif key == "write":
            current.write = parse_classes(value)
        elif key in ("permit", "deny"):
            current.acl.append((key == "permit", parse_network(value)))
    return users


def load_manager_conf(path):
    with open(path, encoding="utf-8") as handle:
        return parse_manager_conf(handle.read())


def demo_users(username="dashboard", secret="dashboard-demo"):
    """Without a manager.conf: one all-powerful user matching the settings' AMI defaults."""
    return {username: ManagerUser(username, secret, set(CLASSES), set(CLASSES))}


def users_from_dict(spec):
    """`{"name": {"secret": ..., "read": "call", "write": "originate", "permit": [...], "deny": [...]}}`
    or `{"name": "secret"}` (read=all write=all)."""
    users = {}
    for name, value in spec.items():
        if isinstance(value, ManagerUser):
            users[name] = value
            continue
        if isinstance(value, str):
            value = {"secret": value}
        acl = [(False, parse_network(n)) for n in value.get("deny", ())]
        acl += [(True, parse_network(n)) for n in value.get("permit", ())]
        users[name] = ManagerUser(
            name,
            value.get("secret", ""),
            parse_classes(value.get("read", "all")),
            parse_classes(value.get("write", "all")),
            acl,
        )
    return users
