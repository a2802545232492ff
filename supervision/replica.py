"""A web server process's copy of the bridge's board, as the JSON texts the pages are sent.

The bridge publishes the board once per web server process: a snapshot when a process asks, then a
stream of `board.stream` messages, each carrying the diffs of one or more board changes in board
order (see `stream_part`). `BoardReplica` applies them (pure: no I/O, no clock); the process's
sockets are sent the frames it returns and get their snapshots from it (`channel_texts`), so a page
never waits for the bridge and the bridge never encodes a snapshot per page.

The snapshot-plus-stream invariant (tests/test_replica.py): a replica that loaded any snapshot and
applied the stream after it holds exactly the channels and phones the bridge's board publishes.

Which messages it may apply is decided by two numbers on each stream message: `epoch` (a bridge
run: a restarted bridge counts from zero again) and `prev`, the board seq of the last change in the
previous stream message. A replica at seq S applies a message with `prev <= S` (nothing between S
and the message's first change is missing; changes it already holds, seq <= S, are skipped) and
reports a gap otherwise, or for another epoch: the process then asks for one fresh snapshot.
"""

from supervision import jsontext

UPSERT, REMOVE, PHONE = "upsert", "remove", "phone"


class Gap(Exception):
    """The stream cannot be applied to this replica (a message was lost, or another bridge run):
    it needs a fresh snapshot."""


def stream_part(seq, device, diffs):
    """The stream's form of one phone's diffs of one board change: `[device, seq, items, frame]`.
    `items` are `[op, key, text]` (upsert: channel name and the channel's JSON text; remove: the
    channel name, no text; phone: no key, the phone's JSON text) and `frame` is the page's diff
    frame, so neither the replica nor any socket encodes anything again."""
    items, texts = [], []
    for diff in diffs:
        op = diff["op"]
        if op == UPSERT:
            text = jsontext.dumps(diff["channel"])
            items.append((UPSERT, diff["channel"]["name"], text))
            texts.append('{"op":"upsert","channel":' + text + "}")
        elif op == REMOVE:
            items.append((REMOVE, diff["name"], None))
            texts.append(jsontext.dumps(diff))
        else:
            items.append((PHONE, None, jsontext.dumps(diff["phone"])))
            texts.append(jsontext.dumps(diff))
    frame = '{"type":"diff","seq":%d,"diffs":[%s]}' % (seq, ",".join(texts))
    return [device, seq, items, frame]


def change_parts(seq, diffs):
    """The stream parts of one board change: one per phone it touched, in the order first seen."""
    by_device = {}
    for diff in diffs:
        device = diff["channel"]["device"] if diff["op"] == UPSERT else diff["device"]
        by_device.setdefault(device, []).append(diff)
    return [stream_part(seq, device, device_diffs) for device, device_diffs in by_device.items()]


def snapshot_board(channels, texts):
    """The snapshot's form of the channels: `[name, device, text]` for each (the bridge's published
    dicts and their JSON texts, in the same order). Strings only: cheap to pack and unpack."""
    return [[channel["name"], channel["device"], text] for channel, text in zip(channels, texts)]


class BoardReplica:
    def __init__(self):
        self.epoch = None
        self.seq = None  # None: no snapshot loaded yet (or a gap made it useless)
        self.link = None
        self._device_of = {}  # channel name -> device
        self._texts = {}  # device -> {channel name: JSON text}
        self.phones = {}  # device -> phone dict

    @property
    def loaded(self):
        return self.seq is not None

    def forget(self):
        """A gap: what is held can no longer be trusted."""
        self.seq = None

    def load(self, snapshot):
        """Replace everything with a `board.snapshot` from the bridge."""
        self.epoch = snapshot.get("epoch")
        self.seq = snapshot["seq"]
        self.link = snapshot.get("link")
        self._device_of = {}
        self._texts = {}
        for name, device, text in snapshot["board"]:
            self._device_of[name] = device
            self._texts.setdefault(device, {})[name] = text
        self.phones = {phone["device"]: phone for phone in snapshot.get("phones", ())}

    def apply(self, message):
        """Apply one `board.stream` message; returns the parts applied (`[device, seq, items,
        frame]`, in board order) for the sockets. Raises Gap when it cannot be applied."""
        if self.seq is None or message.get("epoch") != self.epoch or message["prev"] > self.seq:
            raise Gap(f"replica at {self.seq} (run {self.epoch}), stream from {message['prev']} (run {message.get('epoch')})")
        applied = []
        held = self.seq  # one change may have a part per phone, all with its seq: compare with the start
        for part in message["parts"]:
            device, seq, items, _frame = part
            if seq <= held:
                continue  # the snapshot (or an earlier message) already holds it
            for op, key, text in items:
                if op == UPSERT:
                    old_device = self._device_of.get(key)
                    if old_device is not None and old_device != device:
                        self._drop(key, old_device)
                    self._device_of[key] = device
                    self._texts.setdefault(device, {})[key] = text
                elif op == REMOVE:
                    old_device = self._device_of.pop(key, None)
                    if old_device is not None:
                        self._drop(key, old_device)
                else:
                    self.phones[device] = jsontext.loads(text)
            applied.append(part)
        self.seq = max(held, message["seq"])
        return applied

    def _drop(self, name, device):
        texts = self._texts.get(device)
        if texts is not None:
            texts.pop(name, None)
            if not texts:
                del self._texts[device]

    # --- reading -----------------------------------------------------------------------------

    def channel_texts(self, devices):
        """The JSON texts of the channels on `devices` (a page's visible phones)."""
        texts = []
        held = self._texts
        for device in devices:
            on_device = held.get(device)
            if on_device:
                texts.extend(on_device.values())
        return texts

    def phones_on(self, devices):
        return [phone for device, phone in self.phones.items() if device in devices]

    def channels(self):
        """Every channel held, decoded (tests and checks; the sockets use the texts)."""
        return [jsontext.loads(text) for texts in self._texts.values() for text in texts.values()]
