"""AMI wire format, sans I/O: bytes in, messages out; actions in, bytes out.

A frame is `Key: Value` lines ended by CRLF, closed by an empty line. A server greets with one
banner line (`Asterisk Call Manager/9.0.0`) and no blank line after it. Nothing here touches a
socket, so the same code serves the asyncio client, the simulated PBX and the benchmarks.
"""

import re

MAX_LINE = 8 * 1024  # bytes in one `Key: Value` line
MAX_FRAME = 256 * 1024  # bytes in one message (a long Command output still fits)

class ProtocolError(Exception):
    """The peer broke the framing: the connection must be closed (never guessed around)."""


class InjectionError(ValueError):
    """An action key or value held CR or LF, which would forge extra AMI headers."""


class Message:
    """One AMI frame: ordered `(key, value)` pairs, repeated keys kept.

    `msg["Channel"]` and `msg.get()` give the first value of a key; `msg.getall("Variable")`
    gives every value in order. A message from the parser keeps its frame's text and checked
    lines and partitions them only when a field is read (its `event`, read by every dispatcher,
    is cut out at once): a message nobody reads past its `event` never pays for it. `get` (and
    `response`, `action_id`) find one field in the text while the lookup table is not built:
    cheaper for a reader of a few fields; `fields`, `msg[key]` and `in` build the table, for
    readers of many. Partitioned lines are the `(key, ": ", value)` triples `str.partition` makes.
    """

    # `event` is a plain attribute (read it, never set it): every dispatcher reads it, a
    # property would cost a Python call each time.
    __slots__ = ("_frame", "_raw", "_lines", "_index", "event")

    def __init__(self, pairs=(), *, _lines=None):
        lines = _lines if _lines is not None else [(str(k), ": ", str(v)) for k, v in pairs]
        self._frame = self._raw = None
        self._lines = lines
        self._index = None
        if lines and lines[0][0] == "Event":
            self.event = lines[0][2]
        else:
            self.event = next((value for key, _sep, value in lines if key == "Event"), None)

    @classmethod
    def of(cls, *pairs, **fields):
        return cls(list(pairs) + list(fields.items()))

    @property
    def _triples(self):
        lines = self._lines
        if lines is None:
            # The parser checked that every line holds ": " after a non-empty key.
            lines = self._lines = [line.partition(": ") for line in self._raw]
        return lines

    @property
    def pairs(self):
        return [(key, value) for key, _sep, value in self._triples]

    def _table(self):
        index = self._index
        if index is None:
            index = {}
            lines = self._lines
            if lines is None:
                # Straight from the text: the triples are not kept (few readers want the pairs).
                for line in self._raw:
                    key, _sep, value = line.partition(": ")
                    if key not in index:
                        index[key] = value
            else:
                for key, _sep, value in lines:
                    if key not in index:
                        index[key] = value
            self._index = index
        return index

    def __getitem__(self, key):
        return self._table()[key]

    def __contains__(self, key):
        return key in self._table()

    def get(self, key, default=None):
        index = self._index
        if index is not None:
            return index.get(key, default)
        frame = self._frame
        needles = _NEEDLES.get(key) if frame is not None else None
        if needles is None:
            if frame is None or not _needles_for(key):
                return self._table().get(key, default)
            needles = _NEEDLES[key]
        # Every line of the frame holds ": " after its key (Parser._frames): the first line
        # starting `Key: ` is the first line of that key, its value the rest of the line.
        first, later = needles
        if frame.startswith(first):
            start = len(first)
        else:
            start = frame.find(later)
            if start < 0:
                return default
            start += len(later)
        end = frame.find("\r\n", start)
        return frame[start:end] if end >= 0 else frame[start:]

    def getall(self, key):
        return [value for k, _sep, value in self._triples if k == key]

    def as_dict(self):
        return dict(self._table())

    @property
    def fields(self):
        """The first value of every key, as the message's own dict: read it, never change it."""
        return self._index if self._index is not None else self._table()

    @property
    def response(self):
        return self.get("Response")

    @property
    def action_id(self):
        return self.get("ActionID")  # the client asks every message; most events carry none

    def __eq__(self, other):
        return isinstance(other, Message) and self.pairs == other.pairs

    def __repr__(self):
        lines = self._triples
        head = lines[0] if lines else ("", "", "")
        return f"<Message {head[0]}: {head[2]} ({len(lines)} fields)>"


_new_message = object.__new__
_NEEDLES = {}  # key -> ("Key: ", "\r\nKey: "): what Message.get looks for in a frame's text


def _needles_for(key):
    """Learn the needles of a key Message.get may look for in the text: a plain header name."""
    if type(key) is not str or not key or ": " in key or "\r" in key or "\n" in key or len(_NEEDLES) >= 1024:
        return False
    _NEEDLES[key] = (key + ": ", "\r\n" + key + ": ")
    return True


def decode(data):
    """UTF-8, with a safe fallback: an invalid byte becomes U+FFFD, never an exception."""
    return data.decode("utf-8", "replace")


class Parser:
    """Incremental framing. `feed(bytes)` returns the messages completed by those bytes.

    Works whatever the TCP chunking: a frame split anywhere (even inside a multi-byte UTF-8
    character or inside the CRLF CRLF terminator), or many frames in one chunk. Anything over
    the limits raises ProtocolError and the parser must then be discarded with its connection.
    """

    def __init__(self, *, expect_banner=True, lenient_newlines=False, max_line=MAX_LINE, max_frame=MAX_FRAME):
        self.banner = None if expect_banner else ""
        self.lenient_newlines = lenient_newlines  # servers accept bare LF from humans on telnet
        self.max_line = max_line
        self.max_frame = max_frame
        self._buffer = b""

    @property
    def has_partial(self):
        """True while bytes of an unfinished banner or frame wait for the rest of it."""
        return bool(self._buffer)

    def feed(self, data):
        buffer = self._buffer + data if self._buffer else data
        if self.lenient_newlines:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self.banner is None:
            end = buffer.find(b"\r\n")
            if end < 0:
                self._check_unterminated(buffer)
                self._buffer = buffer
                return []
            self.banner = decode(buffer[:end])
            buffer = buffer[end + 2 :]
        if self.lenient_newlines:
            # A blank keep-alive line between frames is not an empty message, whether it comes
            # in its own chunk (lstrip) or right behind a frame in the same chunk (collapse).
            buffer = buffer.lstrip(b"\r\n")
            while b"\r\n\r\n\r\n" in buffer:
                buffer = buffer.replace(b"\r\n\r\n\r\n", b"\r\n\r\n")
        end = buffer.rfind(b"\r\n\r\n")
        if end < 0:
            self._check_unterminated(buffer)
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 4 :]
        self._check_unterminated(self._buffer)
        return self._frames(decode(buffer[:end]))

    def _frames(self, text):
        # A frame whose every line holds ": " after a key becomes a message that keeps its text
        # and lines, partitioned when first read (Message); any other frame (a stray blank line,
        # Asterisk 22's bare LF, `Key:` lines, garbage) goes line by line through _checked.
        messages = []
        append = messages.append
        max_line = self.max_line
        new = _new_message
        # A line starting ": " (no key) anywhere in the text: only then look for it frame by frame.
        keyless = text.startswith(": ") or "\n: " in text
        for frame in text.split("\r\n\r\n"):
            if not frame:
                continue  # stray blank lines between frames
            if len(frame) > max_line:
                self._check_frame_size(frame)
            if frame[-1] == "\n" or "\n\r\n" in frame or (keyless and (frame.startswith(": ") or "\n: " in frame)):
                append(self._checked(frame))
                continue
            lines = frame.split("\r\n")
            for line in lines:
                if ": " not in line:
                    append(self._checked(frame))
                    break
            else:
                message = new(Message)
                message._frame = frame
                message._raw = lines
                message._lines = message._index = None
                first = lines[0]
                if first.startswith("Event: "):
                    message.event = first[7:]
                else:
                    message.event = next((line[7:] for line in lines if line.startswith("Event: ")), None)
                append(message)
        return messages

    @staticmethod
    def _checked(frame):
        """A frame with a line the fast path does not take, line by line as it always was."""
        if frame[-1] == "\n" or "\n\r\n" in frame:
            # Asterisk 22's PJSIPShowContacts ends its Message line in a bare LF before the
            # CRLF (ami-captures asterisk22-pjsip-static-contacts-ami): not part of the value.
            frame = frame.replace("\n\r\n", "\r\n").rstrip("\n")
        lines = [line.partition(": ") for line in frame.split("\r\n")]
        for key, sep, _value in lines:
            if not sep or not key:
                lines = [_lenient(line) for line in frame.split("\r\n")]
                break
        return Message(_lines=lines)

    def _check_frame_size(self, frame):
        if len(frame) > self.max_frame:
            raise ProtocolError(f"frame of {len(frame)} bytes exceeds the {self.max_frame}-byte limit")
        longest = max(len(line) for line in frame.split("\r\n"))
        if longest > self.max_line:
            raise ProtocolError(f"line of {longest} bytes exceeds the {self.max_line}-byte limit")

    def _check_unterminated(self, pending):
        size = len(pending)
        if size > self.max_line:
            if size > self.max_frame:
                raise ProtocolError(f"more than {self.max_frame} bytes without the end of a message")
            last_break = pending.rfind(b"\r\n")
            if size - (last_break + 2 if last_break >= 0 else 0) > self.max_line:
                raise ProtocolError(f"a line longer than {self.max_line} bytes")


def _lenient(line):
    """A line without `": "`: accept `Key:` / `Key:value` (empty or unspaced values), else refuse."""
    key, sep, value = line.partition(":")
    if not sep or not key or key != key.strip():
        raise ProtocolError(f"malformed line {line[:80]!r}: expected 'Key: Value'")
    return (key, ": ", value[1:] if value.startswith(" ") else value)


# Every control character (NUL, CR, LF, tab, ESC, DEL ...): the only ones a frame holds are the
# CRLFs that `encode` writes itself. A NUL or a lone CR could end or split a header in Asterisk's
# parser (C strings), so the encoder refuses them whatever the validators above it let through.
# A lone surrogate (JSON "\ud800") is no character at all and has no UTF-8 form: refused too.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _check(text, what):
    found = CONTROL_CHARACTERS.search(text)
    if found:
        raise InjectionError(f"{what} {text[:40]!r} contains the control character {found.group()!r}")
    return text


def encode(pairs):
    """Encode `(key, value)` pairs as one CRLF-terminated frame, refusing control characters anywhere."""
    out = []
    for key, value in pairs:
        key = _check(str(key), "key")
        if not key or ":" in key or key != key.strip():
            raise InjectionError(f"key {key!r} is not a valid AMI header name")
        out.append(f"{key}: {_check(str(value), f'value of {key}')}\r\n")
    out.append("\r\n")
    return "".join(out).encode("utf-8")


def encode_action(action, fields=(), action_id=None):
    """`Action: <action>`, optional `ActionID`, then the fields (a dict or pairs, repeats allowed)."""
    pairs = [("Action", action)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    pairs.extend(fields.items() if isinstance(fields, dict) else fields)
    return encode(pairs)


def encode_message(message):
    """Bytes for a Message (the simulated server uses this for responses and events)."""
    return encode(message.pairs)


def banner(version="9.0.0"):
    return f"Asterisk Call Manager/{version}\r\n".encode()
