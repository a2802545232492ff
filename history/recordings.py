"""Call recordings: where a call's file is on the PBX and on the web servers, and how a part of it is
read. Pure paths and small file reads; the bridge side is history/recordings_bridge.py, the pages
history/recordings_views.py.

One file, three names (docs/deployment.md, "Call recordings"):
- `recording_file` on a CallRecord: the path relative to the shared folder, e.g.
  `2026/12/01/1796097282.161.wav` (the date of the uniqueid's epoch, UTC, so anyone can find it
  again from the uniqueid alone, a bridge restarted during the call included);
- as the PBX names it: CALL_RECORDINGS_PBX_DIR + "/" + that (MixMonitor's `File`, the
  `MIXMONITOR_FILENAME` a site's own dialplan reports, Playback's `Data` without the extension);
- as the web servers read it: CALL_RECORDINGS_ROOT + "/" + that (a mount of the PBX's folder).
"""

import datetime
import os
import posixpath
import re

from django.conf import settings

UNIQUEID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
EPOCH = re.compile(r"(\d{9,11})\.\d+$")  # Asterisk's `<epoch>.<counter>`, maybe after a system name
RELATIVE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_./-]{0,254}")
CONTENT_TYPES = {".wav": "audio/wav", ".gsm": "audio/x-gsm", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}


def file_for_uniqueid(uniqueid):
    """The relative file the product records a call into, or None for a uniqueid that cannot be a
    file name (a site's `systemname` with odd characters)."""
    if not UNIQUEID.fullmatch(uniqueid or "") or uniqueid.startswith("."):
        return None
    found = EPOCH.search(uniqueid)
    if found is None:
        return f"{uniqueid}.wav"
    day = datetime.datetime.fromtimestamp(int(found.group(1)), tz=datetime.timezone.utc)
    return f"{day:%Y/%m/%d}/{uniqueid}.wav"


def is_safe_relative(relative):
    """A path under the folder: plain characters, no `..` step, no absolute path."""
    if not relative or not RELATIVE.fullmatch(relative):
        return False
    return all(part not in ("", ".", "..") for part in relative.split("/"))


def pbx_path(relative):
    """The file as Asterisk names it (MixMonitor's File)."""
    return f"{settings.CALL_RECORDINGS_PBX_DIR.rstrip('/')}/{relative}"


def pbx_sound(relative):
    """The file as Playback wants it: the PBX's path without the extension."""
    return posixpath.splitext(pbx_path(relative))[0]


def relative_from_pbx(path):
    """A file the PBX named (a dialplan's MIXMONITOR_FILENAME) relative to CALL_RECORDINGS_PBX_DIR,
    or None when it is elsewhere: the web servers cannot reach it."""
    if not path or not path.startswith("/"):
        return None
    root = settings.CALL_RECORDINGS_PBX_DIR.rstrip("/") + "/"
    normal = posixpath.normpath(path)
    if not normal.startswith(root):
        return None
    relative = normal[len(root):]
    return relative if is_safe_relative(relative) else None


def local_path(relative):
    """The file on this web server, or None when the name is unsafe or leads outside
    CALL_RECORDINGS_ROOT (a symlink included): nothing else on the machine can be served."""
    if not is_safe_relative(relative):
        return None
    root = os.path.realpath(settings.CALL_RECORDINGS_ROOT)
    path = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, path]) != root or path == root:
        return None
    return path


def content_type(relative):
    return CONTENT_TYPES.get(posixpath.splitext(relative)[1].lower(), "application/octet-stream")


# --- HTTP ranges (RFC 9110 section 14) ------------------------------------------------------------

SATISFIABLE, UNSATISFIABLE, WHOLE = "range", "unsatisfiable", "whole"
RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header, size):
    """What a `Range` header asks of a file of `size` bytes: (WHOLE, None) for no header, a header
    this server ignores (another unit, a list of ranges, bad syntax: the whole file is a valid
    answer to those), (SATISFIABLE, (first, last)) inclusive, or (UNSATISFIABLE, None) for a range
    that starts past the end (416)."""
    if not header:
        return WHOLE, None
    found = RANGE.fullmatch(header.strip())
    if found is None:
        return WHOLE, None
    first, last = found.groups()
    if not first and not last:
        return WHOLE, None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE, None
        return SATISFIABLE, (max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return WHOLE, None  # invalid: ignored
    if start >= size:
        return UNSATISFIABLE, None
    return SATISFIABLE, (start, min(end, size - 1))
