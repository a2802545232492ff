"""MixMonitor in the simulated Asterisk: the AMI actions `MixMonitor` / `StopMixMonitor`, the site's
own dialplan running `MixMonitor(...)`, and a real WAV file for each recording.

What a real PBX does (apps/app_mixmonitor.c; captures asterisk20-mixmonitor,
asterisk22-pjsip-mixmonitor, *-mixmonitor-dialplan, *-mixmonitor-1cami):
- the action needs the `system` write class (`StopMixMonitor`: system or call); a user without it
  gets `Permission denied` (manager_conf.ACTION_CLASSES);
- `MixMonitor` answers `Response: Success` with only the ActionID (no file name, no id), then the
  recorded channel gets `VarSet` `MIXMONITOR_FILENAME` = the file (class `dialplan`), then
  `MixMonitorStart` (class `call`, only the channel's fields). No `Channel`: `No channel specified`;
  a channel that does not exist: `No such channel`; no `File`: `Could not start monitoring channel`
  (no VarSet, no event);
- a file name that is not absolute goes into the PBX's monitor folder (`filename_parse`), and the
  VarSet says the absolute path;
- `StopMixMonitor` answers Success and sends `MixMonitorStop`; with none running it answers
  `Could not stop monitoring channel`;
- a recording still running when the channel hangs up ends with the `Hangup`: no `MixMonitorStop`;
- the file is mono 16-bit PCM at 8 kHz (`wav` format), mixed both ways.
- a dialplan `MixMonitor(...)` shows as `Newexten` `Application: MixMonitor`, `AppData: <expanded
  path>`, then the same VarSet and MixMonitorStart, before the dialplan's `Dial`.

What the simulator does beyond that: the recorded audio is a generated two-voice tone (the
simulated calls carry no audio), at least MIN_SECONDS long so an instant test call still has
something to hear; the file is there (empty) from the start, and written whole when the recording
ends (Stop or Hangup), before the `Hangup` event goes out, so a client that reads the file after the
Hangup finds it complete. It writes only
`.wav` files inside its own monitor folder (`monitor_dir`): a client cannot make it write anywhere
else on the machine it runs on; other paths, formats and folder errors are logged and the call goes
on, as on a PBX whose disk refuses the file. Option `a` (append) and `b` (bridged audio only) are
accepted and change nothing: the capture shows `b` made no difference on a bridged call.
"""

import logging
import math
import os
import struct
import time
import wave
from dataclasses import dataclass, field

from . import channels as calls

logger = logging.getLogger(__name__)

SAMPLE_RATE = 8000  # Asterisk's `wav` format: 8 kHz, mono, 16-bit signed little-endian
MIN_SECONDS = 1.0
MAX_SECONDS = 3600.0
DEFAULT_MONITOR_DIR = "/var/spool/asterisk/monitor"  # Asterisk's astspooldir/monitor


def _voice_cycle():
    """Two seconds of a "conversation": 0.8 s of one voice, a pause, 0.8 s of the other, a pause
    (425 and 620 Hz, soft, with 20 ms fades so the tone does not click)."""
    samples = []
    for index in range(2 * SAMPLE_RATE):
        t = index / SAMPLE_RATE
        within = t % 1.0
        frequency = 425.0 if t < 1.0 else 620.0
        if within >= 0.8:
            samples.append(0)
            continue
        fade = min(1.0, within / 0.02, (0.8 - within) / 0.02)
        samples.append(int(9000 * fade * math.sin(2 * math.pi * frequency * t)))
    return struct.pack(f"<{len(samples)}h", *samples)


_CYCLE = None


def audio(seconds):
    """`seconds` of the generated conversation as 16-bit PCM bytes."""
    global _CYCLE
    if _CYCLE is None:
        _CYCLE = _voice_cycle()
    wanted = 2 * int(round(seconds * SAMPLE_RATE))
    repeats = wanted // len(_CYCLE) + 1
    return (_CYCLE * repeats)[:wanted]


def write_wav(path, seconds):
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(audio(seconds))


@dataclass
class Recording:
    path: str  # as the PBX names it (absolute)
    options: str = ""
    started: float = field(default_factory=time.monotonic)


class MixMonitor:
    """Mixed into engine.Switch (uses its channels and `emit`); `monitor_dir` is set there."""

    monitor_dir = None  # the PBX's monitor folder, a real folder on this machine; None: no files

    def mixmonitor_start(self, channel, file, options=""):
        """Start a recording on `channel` (AMI action or dialplan). Returns the absolute path, or
        None when there is no file name (Asterisk: `Could not start monitoring channel`)."""
        file = (file or "").strip()
        if not file:
            return None
        if not file.startswith("/"):
            file = f"{(self.monitor_dir or DEFAULT_MONITOR_DIR).rstrip('/')}/{file}"
        recording = Recording(file, options)
        channel.variables.setdefault("__mixmonitors", []).append(recording)
        self._write(recording, 0.0)  # Asterisk opens the file at once and writes as the call goes
        self.emit(*calls.channel_event("VarSet", channel, ("Variable", "MIXMONITOR_FILENAME"), ("Value", file),
                                       klass="dialplan"))
        self.emit(*calls.channel_event("MixMonitorStart", channel))
        return file

    def mixmonitor_stop(self, channel):
        """StopMixMonitor: False when none runs on the channel."""
        running = channel.variables.get("__mixmonitors") or []
        if not running:
            return False
        self._finish_recording(running.pop(0))
        self.emit(*calls.channel_event("MixMonitorStop", channel))
        return True

    def mixmonitor_hangup(self, channel):
        """The channel is going: its recordings end with it (no MixMonitorStop), files complete first."""
        for recording in channel.variables.pop("__mixmonitors", None) or []:
            self._finish_recording(recording)

    def dialplan_mixmonitor(self, channel, file):
        """The site's dialplan records this call itself (`same => n,MixMonitor(<file>)`) before its Dial."""
        if not file.startswith("/"):
            file = f"{(self.monitor_dir or DEFAULT_MONITOR_DIR).rstrip('/')}/{file}"
        channel.priority += 1
        self.emit(*calls.channel_event("Newexten", channel, ("Extension", channel.exten),
                                       ("Application", "MixMonitor"), ("AppData", file), klass="dialplan"))
        self.mixmonitor_start(channel, file)
        channel.priority += 1

    def dialplan_dial(self, channel, data):
        """The `Dial` that follows a dialplan's MixMonitor, as its Newexten shows it."""
        self.emit(*calls.channel_event("Newexten", channel, ("Extension", channel.exten), ("Application", "Dial"),
                                       ("AppData", data), klass="dialplan"))

    def recording_seconds(self, sound):
        """How long Playback of `sound` (a path without extension) plays, when it is a WAV this PBX
        recorded into its monitor folder; else None."""
        if self.monitor_dir is None or not sound.startswith("/"):
            return None
        root = os.path.realpath(self.monitor_dir)
        path = os.path.realpath(sound + ".wav")
        if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
            return None
        try:
            with wave.open(path, "rb") as wav:
                return wav.getnframes() / wav.getframerate()
        except (OSError, wave.Error, ZeroDivisionError):
            return None

    def _finish_recording(self, recording):
        self._write(recording, min(MAX_SECONDS, max(MIN_SECONDS, time.monotonic() - recording.started)))

    def _write(self, recording, seconds):
        target = self._disk_path(recording.path)
        if target is None:
            return
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            write_wav(target, seconds)
        except OSError as exc:
            logger.warning("MixMonitor: cannot write %s: %s", recording.path, exc)

    def _disk_path(self, path):
        """The file to write for a recording the PBX names `path`, or None (see the module's words)."""
        if self.monitor_dir is None:
            return None
        root = os.path.realpath(self.monitor_dir)
        target = os.path.realpath(path)
        if os.path.commonpath([root, target]) != root or target == root:
            logger.warning("MixMonitor: %s is outside the simulated monitor folder %s; nothing written", path, root)
            return None
        if not target.lower().endswith(".wav"):
            logger.warning("MixMonitor: only the wav format is simulated; %s not written", path)
            return None
        return target
