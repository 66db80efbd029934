"""A stateful black-box attacker for a running meter (`meter-fuzz attack`): a real one on a serial port, or one it
starts itself with meter-emu (optionally locked first, optionally recorded).

What it sends, every choice drawn from one `random.Random(seed)`:
  smp      SMP requests in valid serial framing for every group the meter serves (os, image, meter 64, metering 65,
           supply 66, network 67, and groups/commands it does not), built from a grammar of each request's fields
           (docs/smp-groups.md) and then mutated: fields dropped, added, retyped, oversized, nested; headers with a
           wrong op, version, flags, length, group or command; now and then the framing itself (CRC, base64, markers)
  upload   upload sessions: a real (or synthetic) image's first chunk, then chunks at bad offsets, lengths, hashes and
           data, with image state writes (test/confirm), erases and resets between them
  noise    raw bytes on the console
  control  console control sequences: Ctrl-C, Ctrl-D, Ctrl-A/Ctrl-B (raw REPL), Ctrl-E (paste mode), CR/LF bursts,
           and what a tester types after them
  sweep    (emulator) a reset with one Ctrl-C a swept number of ms after the board starts boot.py, or (any meter) an
           SMP reset followed by control sequences at swept host delays
  udp      (--udp, emulator) the grammar's requests as datagrams to the meter's SMP-over-UDP port, the attacker being
           its head-end: single, back to back, past the 512-byte cap, empty, noise

Monitors, checked all along:
  liveness   an SMP echo every `echo_every` inputs; no answer within `hang_bound_s` (retrying, and recovering a
             development meter's REPL) is an "unrecovered-hang" finding
  reboots    the meter's boot counter (update status `boot`; the emulator's `boots` and reset cause): a reboot no
             step of the window can explain (a reset request, a reset, a Ctrl-D on a development meter) is an
             "unexpected-reboot" finding
  prompts    `>>>`, "raw REPL" or "paste mode" from a locked meter is a "console-prompt" finding, always
  console    a traceback other than KeyboardInterrupt in what the meter printed, or the emulator's VM ending, is a
             "console-traceback" / "vm-ended" finding
  events     the meter's event log (supply group, cmd 5) read before and after: on a locked meter an event only a
             signed command can cause (top-up, settings, calibration, install ...) is an "unauthorised-state-change";
             a damage event (log/credit/registers damaged, rollback) is a "damage-event"; out of memory "oom-event"
  records    the protected records before and after (and at every `snapshot_every` echo): read over SMP (mode,
             counter, trust keys, slots, calibration, settings, calendar, head-end, credit's token id) and, on the
             emulator, straight from the flash image (mode, trust store, counter, calibration, config, supply
             settings, identity, the app slots' files); on a locked meter any change is an
             "unauthorised-state-change" finding (the attacker never holds a valid signature)

Findings go to OUT/findings/attack-<board>[-locked]/<kind>-<sig>/ (meter_fuzz/findings.py's layout) with the steps
so far as inputs.jsonl ({"t", "via", "send" hex} per step; "via" console, ctl or udp), what the meter printed all
session (console.log), the emulator's recording when one was made (emulator.rec: a locked meter's run without
--udp; `meter-emu replay` plays it), and `meter-fuzz attack --replay FOLDER` as the reproducer. No click here:
meter_fuzz/attack_cli.py is the command."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import random
import shutil
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from meter_fuzz import findings, paths
from meter_fuzz.emu_launch import Emulator, LaunchError

PROMPTS = (b">>>", b"raw REPL", b"paste mode")
CTRL = {"ctrl-a": b"\x01", "ctrl-b": b"\x02", "ctrl-c": b"\x03", "ctrl-d": b"\x04", "ctrl-e": b"\x05"}
# event codes (firmware/app/events.py): only a signed command (or, on a development meter, an unsigned one) causes
# these; the attacker signs nothing
AUTH_EVENTS = {403: "emergency credit", 404: "top-up accepted", 410: "settings changed", 413: "credit reset",
               416: "calibrated", 421: "app installed", 423: "app confirmed", 151: "clock set"}
DAMAGE_EVENTS = {409: "event log damaged", 412: "credit record damaged", 414: "registers lost",
                 415: "register copy damaged", 424: "rolled back"}
OOM_EVENT = 418
# the flash files a locked meter may change only on a signed command (the rest are logs, counters, uploads)
PROTECTED_FILES = ("meter/mode.json", "meter/trust.cbor", "meter/counter.json", "meter/calibration.json",
                   "meter/config.json", "meter/supply.json", "meter/identity.json", "meter/board.json",
                   "meter/loaders.json", "meter/slots.json", "boot.py", "main.py")
PROTECTED_PREFIXES = ("/slots/", "/loaders/")  # the app slots' and the loaders' code

EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
WEIGHTS = {"smp": 55, "upload": 12, "noise": 10, "control": 13, "sweep": 10}  # the input kinds and their shares
UDP_WEIGHT = 40  # with --udp: datagrams to the meter's SMP-over-UDP port
DEV_COMMAND_KEY = paths.ROOT / "keys" / "dev" / "command-DEVELOPMENT-ONLY-ed25519.pem"


class Unreachable(RuntimeError):
    """The meter (or the emulator) could not be reached."""


# -- SMP frames ------------------------------------------------------------------------------------------------------

def header(op: int, group: int, cmd: int, seq: int, length: int, version: int = 1, flags: int = 0) -> bytes:
    return struct.pack(">BBHHBB", ((version & 3) << 3) | (op & 7), flags & 0xFF, length & 0xFFFF, group & 0xFFFF,
                       seq & 0xFF, cmd & 0xFF)


def frame(op: int, group: int, cmd: int, seq: int, body: Any) -> bytes:
    data = body if isinstance(body, (bytes, bytearray)) else cbor2.dumps(body)
    return header(op, group, cmd, seq, len(data)) + bytes(data)


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def serial_lines(pkt: bytes, line_length: int = 127) -> bytes:
    """The SMP serial encoding (as smp.packet.encode): base64 of length + packet + CRC16-XMODEM, in lines of at most
    `line_length` bytes, the first marked 06 09, the others 04 14."""
    raw = struct.pack(">H", len(pkt) + 2) + pkt + struct.pack(">H", crc16(pkt))
    b64 = base64.b64encode(raw)
    out = bytearray()
    step = max(4, ((line_length - 4) // 4) * 4)  # whole base64 quanta per line, as smp.packet.encode
    for i in range(0, len(b64), step):
        out += (b"\x06\x09" if i == 0 else b"\x04\x14") + b64[i:i + step] + b"\n"
    return bytes(out)


class Deframer:
    """SMP frames out of the console's byte stream (log lines between them are skipped)."""

    def __init__(self) -> None:
        self.line = bytearray()
        self.acc: bytearray | None = None

    def feed(self, data: bytes) -> list[bytes]:
        out = []
        for b in data:
            if b != 0x0A:
                self.line.append(b)
                if len(self.line) > 8192:
                    self.line.clear()
                continue
            line = bytes(self.line)
            self.line.clear()
            i = line.find(b"\x06\x09")
            if i >= 0:
                self.acc = bytearray(self._b64(line[i + 2:]))
            elif line.startswith(b"\x04\x14") and self.acc is not None:
                self.acc += self._b64(line[2:])
            else:
                continue
            if self.acc is not None and len(self.acc) >= 2:
                want = struct.unpack(">H", self.acc[:2])[0]
                if len(self.acc) - 2 >= want:
                    body = bytes(self.acc[2:2 + want])
                    self.acc = None
                    if len(body) >= 2 and crc16(body[:-2]) == struct.unpack(">H", body[-2:])[0]:
                        out.append(body[:-2])
        return out

    @staticmethod
    def _b64(s: bytes) -> bytes:
        try:
            return base64.b64decode(s.strip(b"\r"))
        except ValueError:
            return b""


# -- the grammar -------------------------------------------------------------------------------------------------------

def _image() -> bytes:
    """A real signed image to upload (the firmware tests' fixture) where the source tree is at hand, else a synthetic
    MCUboot header the meter's header check parses and the verification refuses."""
    p = paths.ROOT / "host_tests" / "firmware" / "fixtures" / "good.img"
    try:
        return p.read_bytes()
    except OSError:
        hdr = struct.pack("<IIHHIIBBHI", 0x96F3B83D, 0, 32, 0, 1024, 0, 1, 0, 0, 0) + bytes(4)
        return hdr + bytes(1024) + struct.pack("<HH", 0x6907, 8) + bytes(4)


class Grammar:
    """Requests for every group the meter serves, and mutations of them."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.image = _image()
        self.image_sha = hashlib.sha256(self.image).digest()

    # values of a field's type, now and then of the wrong one
    def junk(self, depth: int = 0) -> Any:
        r = self.rng
        k = r.randrange(14 if depth < 3 else 9)
        if k == 0:
            return r.choice([0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32, 2**63 - 1, -2**63, 2**64 - 1])
        if k == 1:
            return r.randrange(-2**70, 2**70)
        if k == 2:
            return r.choice([0.0, -0.0, 1.5, 1e308, float("inf"), float("-inf"), float("nan"), 5.0])
        if k == 3:
            return bytes(r.randrange(256) for _ in range(r.choice([0, 1, 8, 32, 33, 64, 300])))
        if k == 4:
            return r.choice(["", "a", "\x00", "é", "locked", "development", "gain", "disconnect", "x" * 600,
                             "../../meter/mode.json", "%s%s%n"])
        if k == 5:
            return r.choice([None, True, False])
        if k == 6:
            return cbor2.CBORTag(r.choice([0, 1, 2, 24, 55799, 2**32]), r.choice([b"", "", 0]))
        if k == 7:
            return r.randrange(100)
        if k == 8:
            return self.envelope()
        if k in (9, 10):
            return [self.junk(depth + 1) for _ in range(r.randrange(5))]
        if k == 11:
            return {self.key() if r.random() < 0.3 else r.choice(["d", "off", "data", "len", "envelope"]):
                    self.junk(depth + 1) for _ in range(r.randrange(4))}
        if k == 12:
            n = r.randrange(20, 300)
            v: Any = 0
            for _ in range(n):
                v = [v]
            return v
        return [0] * r.choice([100, 600])

    def key(self) -> Any:
        """A map key of any CBOR type the host can hash (a tuple encodes as an array)."""
        v = self.junk(3)
        if isinstance(v, list):
            return tuple(x if not isinstance(x, (list, dict)) else 0 for x in v)
        if isinstance(v, dict):
            return frozenset()
        if isinstance(v, cbor2.CBORTag):
            return cbor2.CBORTag(v.tag, 0)
        return v

    def envelope(self) -> bytes:
        """Something shaped like a command envelope: CBOR with the fields, and a signature that cannot be right."""
        r = self.rng
        body = {"cmd": r.choice(["os.reset", "image.state", "image.erase", "supply.relay", "credit.topup",
                                 "meter.calibrate", "meter.headend", "supply.config", "clock.set"]),
                "args": {}, "meter": r.choice(["", "0" * 12, "ffffffffffff"]), "exp": r.randrange(2**32),
                "nonce": r.randrange(2**32)}
        env = {"v": 1, "body": cbor2.dumps(body), "kid": bytes(r.randrange(256) for _ in range(8)),
               "sig": bytes(r.randrange(256) for _ in range(64))}
        if r.random() < 0.3:
            return bytes(r.randrange(256) for _ in range(r.randrange(200)))
        return cbor2.dumps(env)

    def requests(self) -> list[tuple[str, int, int, int, Callable[[], dict]]]:
        r = self.rng
        sha = self.image_sha
        return [
            ("os.echo", 2, 0, 0, lambda: {"d": r.choice(["", "x", "y" * 200, "\x00\x03>>>"])}),
            ("os.echo-read", 0, 0, 0, lambda: {"d": "r"}),
            ("os.reset", 2, 0, 5, lambda: r.choice([{}, {"force": r.choice([0, 1, True])}, {"envelope": self.envelope()}])),
            ("os.params", 0, 0, 6, lambda: {}),
            ("os.info", 0, 0, 7, lambda: {"format": r.choice(["a", "s", "v", "snrvbmpio", "z", "", "a" * 50])}),
            ("image.state", 0, 1, 0, lambda: {}),
            ("image.state-write", 2, 1, 0, lambda: {k: v for k, v in (
                ("hash", r.choice([sha, bytes(32), sha[:16]])), ("confirm", r.choice([True, False])),
                ("envelope", self.envelope())) if r.random() < 0.7}),
            ("image.upload", 2, 1, 1, self.upload_first),
            ("image.erase", 2, 1, 5, lambda: r.choice([{}, {"slot": r.choice([0, 1, 2, -1])},
                                                         {"slot": 1, "envelope": self.envelope()}])),
            ("meter.update-status", 0, 64, 0, lambda: {}),
            ("metering.read", 0, 65, 0, lambda: {}),
            ("metering.calibrate", 2, 65, 1, lambda: {"step": r.choice(["gain", "phase", "offset", "x"]),
                                                       "v": r.choice([230.0, 0, -1, 1e9]), "i": r.choice([5.0, 0, 1e9]),
                                                       "pf": r.choice([1.0, 0.5, 2]), "n": r.choice([3, 60, 2, 61, 0]),
                                                       "envelope": self.envelope()}),
            ("metering.calibration", 0, 65, 2, lambda: {}),
            ("metering.profile", 0, 65, 3, lambda: {"kind": r.choice(["block", "daily", "billing", "x", 1]),
                                                    "since": r.choice([0, 1_800_000_000, -1, 2**40, 1.5]),
                                                    "limit": r.choice([1, 16, 0, 17, True])}),
            ("supply.status", 0, 66, 0, lambda: {}),
            ("supply.relay", 2, 66, 1, lambda: {"action": r.choice(["disconnect", "reconnect", "x"]),
                                                 "envelope": self.envelope()}),
            ("supply.topup", 2, 66, 2, lambda: {"token": self.envelope()}),
            ("supply.settings", 0, 66, 3, lambda: {}),
            ("supply.settings-write", 2, 66, 3, lambda: {"settings": {"mode": r.choice([0, 1, 2, 9]),
                                                                       "limit_w": r.randrange(-10, 10**6)},
                                                          "envelope": self.envelope()}),
            ("supply.clock", 2, 66, 4, lambda: {"time": r.choice([0, 1_800_000_000, -1, 2**40]),
                                                 "envelope": self.envelope()}),
            ("supply.events", 0, 66, 5, lambda: r.choice([{}, {"since": r.randrange(-5, 2**33)},
                                                          {"since": 0, "limit": r.randrange(-5, 100)},
                                                          {"log": r.choice([r.randrange(-2, 9), 5.0, True, "5"]),
                                                           "since": r.randrange(-5, 100)}])),
            ("supply.emergency", 2, 66, 6, lambda: {"envelope": self.envelope()}),
            ("supply.credit-reset", 2, 66, 7, lambda: {"balance": r.randrange(-2**40, 2**40), "top_tid":
                                                        r.randrange(2**33), "force": True, "envelope": self.envelope()}),
            ("supply.calendar", 0, 66, 8, lambda: {}),
            ("supply.calendar-write", 2, 66, 8, lambda: {"calendar": {"tz_offset_min": r.randrange(-2000, 2000),
                                                                       "tou": [[0, 1]]}, "envelope": self.envelope()}),
            ("network.status", 0, 67, 0, lambda: {}),
            ("network.headend", 0, 67, 1, lambda: {}),
            ("network.headend-write", 2, 67, 1, lambda: {"headend": r.choice([None, {"ip": "10.0.0.1", "port": 1337,
                                                                                    "uplink_s": 0}]),
                                                          "envelope": self.envelope()}),
            ("unknown", r.choice([0, 2]), r.choice([2, 3, 8, 9, 63, 68, 69, 70, 255, 65535]), r.randrange(16),
             lambda: {}),
        ]

    def upload_first(self) -> dict:
        r = self.rng
        n = r.choice([32, 128, 512, len(self.image)])
        return {"off": 0, "data": self.image[:n], "len": len(self.image), "sha": self.image_sha,
                **({"image": r.choice([0, 1, 2])} if r.random() < 0.2 else {})}

    def mutate_body(self, body: dict) -> Any:
        r = self.rng
        body = dict(body)
        for _ in range(r.randrange(1, 4)):
            k = r.randrange(7)
            keys = list(body)
            if k == 0 and keys:
                body.pop(r.choice(keys))
            elif k in (1, 2) and keys:
                body[r.choice(keys)] = self.junk()
            elif k == 3:
                body[r.choice(["d", "off", "data", "len", "sha", "hash", "confirm", "envelope", "slot", "force",
                               "x", "", "format", "since", "settings"])] = self.junk()
            elif k == 4:
                return self.junk()  # not a map at all
            elif k == 5:
                body[self.key()] = self.junk() if r.random() < 0.5 else 1
        return body

    def mutate_bytes(self, data: bytes) -> bytes:
        r = self.rng
        b = bytearray(data)
        for _ in range(r.randrange(1, 6)):
            k = r.randrange(5)
            if k == 0 and b:
                b[r.randrange(len(b))] = r.randrange(256)
            elif k == 1 and b:
                del b[r.randrange(len(b)):]
            elif k == 2:
                b[r.randrange(len(b) + 1):r.randrange(len(b) + 1)] = bytes(r.randrange(256) for _ in range(r.randrange(8)))
            elif k == 3:
                b += r.choice([b"\x9f" * 50, b"\xbf", b"\x5f\x41\x00", b"\xff", b"\x1b" + b"\xff" * 8,
                               b"\xda\xff\xff\xff\xff"])
            elif k == 4 and b:
                i = r.randrange(len(b))
                b[i] ^= 1 << r.randrange(8)
        return bytes(b)

    def smp(self, seq: int) -> tuple[str, bytes]:
        """One request, valid or mutated, as a packet (header + body), and its name."""
        r = self.rng
        name, op, group, cmd, make = r.choice(self.requests())
        body: Any = make()
        roll = r.random()
        if roll < 0.45:
            body = self.mutate_body(body)
        data = body if isinstance(body, bytes) else cbor2.dumps(body)
        if r.random() < 0.2:
            data = self.mutate_bytes(data)
        length = len(data)
        version, flags = 1, 0
        if r.random() < 0.15:
            k = r.randrange(6)
            if k == 0:
                op = r.randrange(8)
            elif k == 1:
                version = r.randrange(4)
            elif k == 2:
                flags = r.randrange(256)
            elif k == 3:
                length = r.choice([0, max(0, length - 1), length + 1, 0xFFFF, r.randrange(65536)])
            elif k == 4:
                group = r.randrange(65536)
            else:
                cmd = r.randrange(256)
        return name, header(op, group, cmd, seq, length, version, flags) + data

    def framing(self, pkt: bytes) -> bytes:
        """Serial lines for a packet: valid mostly, now and then with broken framing."""
        r = self.rng
        lines = serial_lines(pkt, r.choice([127, 127, 127, 64, 20, 256]))
        if r.random() < 0.1:
            b = bytearray(lines)
            k = r.randrange(4)
            if k == 0 and len(b) > 3:
                b[r.randrange(2, len(b) - 1)] = r.choice(b"!*=\x00\x06\x04A")
            elif k == 1:
                b = b.replace(b"\n", b"", 1)
            elif k == 2:
                b = b[: r.randrange(len(b) + 1)]
            else:
                b = b.replace(b"\x04\x14", b"\x06\x09", 1)
            lines = bytes(b)
        return lines


# -- the link ------------------------------------------------------------------------------------------------------

class Console:
    """The attacker's cable: a reader thread keeps everything the meter prints (for the prompt and traceback
    monitors) and hands SMP frames to `request`."""

    def __init__(self, port: str, baud: int = 115200):
        import serial

        try:
            self.ser = serial.Serial(port, baud, timeout=0.02)
        except (serial.SerialException, OSError) as e:
            raise Unreachable(f"cannot open {port}: {e}") from None
        self.port = port
        self.seen = bytearray()
        self.lock = threading.Lock()
        self.frames: queue.Queue[bytes] = queue.Queue()
        self.deframer = Deframer()
        self.stop_flag = False
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self) -> None:
        while not self.stop_flag:
            try:
                data = self.ser.read(max(1, self.ser.in_waiting))
            except Exception:  # the port went away (a pty closed when the emulator stopped)
                time.sleep(0.05)
                continue
            if data:
                with self.lock:
                    self.seen += data
                for f in self.deframer.feed(data):
                    self.frames.put(f)

    def write(self, data: bytes) -> None:
        self.ser.write(data)

    def request(self, pkt_lines: bytes, seq: int | None, timeout: float) -> bytes | None:
        while not self.frames.empty():
            self.frames.get_nowait()
        self.ser.write(pkt_lines)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                f = self.frames.get(timeout=left)
            except queue.Empty:
                return None
            if seq is None or (len(f) >= 8 and f[6] == seq):
                return f

    def close(self) -> None:
        self.stop_flag = True
        self.t.join(timeout=1)
        try:
            self.ser.close()
        except Exception:
            pass


class UdpLink:
    """SMP over UDP as the meter's head-end: a socket bound to the head-end's address, requests to the meter's
    udp://ADDR:PORT (endpoints.json `udp`)."""

    def __init__(self, meter: tuple[str, int], local: tuple[str, int]):
        import socket

        self.meter = meter
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(local)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.meter)

    def request(self, data: bytes, seq: int | None, timeout: float) -> bytes | None:
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recvfrom(4096)  # replies to earlier datagrams are not this one's
        except OSError:
            pass
        self.sock.sendto(data, self.meter)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                f, _ = self.sock.recvfrom(4096)
            except OSError:
                return None
            if len(f) >= 8 and f[0] != 0xA4 and (seq is None or f[6] == seq):
                return f

    def close(self) -> None:
        self.sock.close()


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_headend(console: str, port: int) -> None:
    """A development meter's head-end set with the development command key (`ota meter network`): from its next
    boot it serves SMP over UDP to 127.0.0.1:port."""
    import subprocess
    import sys

    ota = Path(sys.executable).parent / "ota"
    if not DEV_COMMAND_KEY.exists():
        raise Unreachable(f"--udp needs the development command key ({DEV_COMMAND_KEY}) to set the head-end")
    p = subprocess.run([str(ota) if ota.exists() else "ota", "meter", "network", "--port", console, "--headend",
                        f"127.0.0.1:{port}", "--uplink", "0", "--key", str(DEV_COMMAND_KEY), "--expires-in",
                        str(90 * 86400), "--json"], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise Unreachable(f"could not set the head-end: {p.stdout} {p.stderr}")


def body_of(f: bytes | None) -> Any:
    if f is None or len(f) < 8:
        return None
    try:
        return cbor2.loads(f[8:]) if len(f) > 8 else {}
    except Exception:
        return {"undecodable": f[8:].hex()}


# -- the session -----------------------------------------------------------------------------------------------------

@dataclass
class Options:
    port: str | None = None
    board: str | None = None  # --emulator BOARD
    locked: bool = False
    expect_locked: bool | None = None  # None: what the meter says (update status `mode`)
    seconds: float | None = None
    inputs: int | None = None
    seed: int = 0
    out: Path = findings.DEFAULT_OUT
    record: bool = True
    echo_every: int = 10
    snapshot_every: int = 5  # protected records every this many echoes
    reply_timeout: float = 0.6
    echo_timeout: float = 2.0
    hang_bound_s: float = 45.0
    weights: dict = field(default_factory=lambda: dict(WEIGHTS))
    progress: Callable[[dict], None] | None = None
    replay_steps: list[dict] | None = None
    udp: bool = False  # also over the meter's SMP-over-UDP port (emulator: --modem and a head-end set before locking)


@dataclass
class Stats:
    inputs: int = 0
    echoes: int = 0
    answered: int = 0
    replies: int = 0
    reboots: int = 0
    expected_reboots: int = 0
    resets_sent: int = 0
    findings: int = 0
    new_findings: list = field(default_factory=list)
    events_new: dict = field(default_factory=dict)
    record_changes: list = field(default_factory=list)
    elapsed_s: float = 0.0
    by_kind: dict = field(default_factory=dict)
    mode: str = "unknown"  # what the meter reports (update status `mode`)
    locked: bool = False  # held to a locked meter's rules (locked, or --expect-locked)


class Attack:
    def __init__(self, opts: Options):
        self.o = opts
        self.rng = random.Random(opts.seed)  # the inputs: the same sequence for a seed, however the meter answers
        self.echo_rng = random.Random(opts.seed + 1)  # the monitors' echoes, which retries make timing-dependent
        self.g = Grammar(self.rng)
        self.steps: list[dict] = []
        self.stats = Stats()
        self.emu: Emulator | None = None
        self.con: Console | None = None
        self.seq = 0
        self.t0 = time.monotonic()
        self.seen_at = 0  # where the prompt/traceback monitors left off in con.seen
        self.mode = "unknown"
        self.boot: int | None = None
        self.emu_boots: int | None = None
        self.reset_window = False  # a step since the last liveness check may have reset the meter
        self.folders: list[Path] = []
        self.tmp: Path | None = None
        self.recording: Path | None = None
        self.emu_log_at = 0
        self.events_before: list = []
        self.records_before: dict = {}
        self.udp: UdpLink | None = None
        self.udp_local: tuple[str, int] | None = None
        if opts.udp and "udp" not in opts.weights:
            opts.weights = dict(opts.weights, udp=UDP_WEIGHT)

    # -- set-up --------------------------------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        board = self.o.board or "serial"
        return f"attack-{board}{'-locked' if self.locked else ''}"

    @property
    def locked(self) -> bool:
        if self.o.expect_locked is not None:
            return self.o.expect_locked
        return self.o.locked or self.mode == "locked"

    def start(self) -> None:
        if self.o.board:
            self.tmp = Path(tempfile.mkdtemp(prefix="meter-fuzz-attack-"))
            state = self.tmp / "meter"
            try:
                # a development meter's REPL (where a Ctrl-C takes it) cannot run under a recording: its input
                # waits for a point the VM never reaches (docs/emulator.md), so only a locked meter is recorded
                self.recording = self.tmp / "emulator.rec" if self.o.record and self.o.locked else None
                args: tuple[str, ...] = ()
                if self.o.udp:
                    # datagrams are not recorded inputs (docs/emulator.md): a run over UDP is not recorded
                    self.recording = None
                    args = ("--modem",)
                    self.udp_local = ("127.0.0.1", free_udp_port())
                if self.o.locked and self.recording is not None:
                    # locked through the REPL before the recorded run: a recording does not cover the REPL, and a
                    # recording made from this state folder starts with the locked flash image
                    emu = Emulator(state, board=self.o.board, seed=self.o.seed)
                    try:
                        emu.wait_boots(1)
                        lock_over_repl(emu.console)
                    finally:
                        emu.stop()
                self.emu = Emulator(state, board=self.o.board, seed=self.o.seed, record=self.recording, args=args)
                st = self.emu.wait_boots(1)
                if self.udp_local is not None:
                    set_headend(self.emu.console, self.udp_local[1])
                    if not self.o.locked:
                        self.emu.request({"verb": "reset", "kind": "hard"})
                if self.o.locked and self.recording is None:
                    lock_over_repl(self.emu.console)
                    st = self.emu.status()
                if self.udp_local is not None:
                    self.wait_udp_socket()
            except (LaunchError, OSError, TimeoutError) as e:
                raise Unreachable(str(e)) from None
            self.emu_boots = st.get("boots")
            port = self.emu.console
        else:
            assert self.o.port
            port = self.o.port
        self.con = Console(port, 115200)
        if self.udp_local is not None and self.emu is not None:
            ep = self.emu.endpoints.get("udp") or {}
            if not ep:
                raise Unreachable("the emulator publishes no udp endpoint (no --modem?)")
            self.udp = UdpLink((ep["address"], int(ep["port"])), self.udp_local)
        # the meter answers an echo within the bound, or it is not reachable
        if not self.wait_echo(min(self.o.hang_bound_s, 30), log=False):
            raise Unreachable(f"no SMP echo from {port}")
        if self.udp is not None and not self.udp_echo(60):
            raise Unreachable("no SMP echo over UDP")
        st = body_of(self.smp_raw(0, 64, 0, {}, log=False)) or {}
        self.mode = st.get("mode", "unknown") if isinstance(st, dict) else "unknown"
        self.boot = st.get("boot") if isinstance(st, dict) else None
        if self.o.locked and self.mode != "locked":
            self.finding("not-locked", f"the emulator was locked but the meter reports mode {self.mode!r}",
                         self.mode)
        self.stats.mode, self.stats.locked = self.mode, self.locked
        self.events_before = self.read_events()
        self.records_before = self.records()
        self.seen_at = len(self.con.seen)

    def wait_udp_socket(self, timeout: float = 90) -> None:
        assert self.emu is not None
        end = time.monotonic() + timeout
        st: dict = {}
        while time.monotonic() < end:
            st = self.emu.status()
            if st.get("power") == "on" and (st.get("device") or {}).get("modem", {}).get("sockets") == [0]:
                return
            time.sleep(0.2)
        dev = st.get("device") or {}
        raise Unreachable(f"the meter did not open its head-end socket in {timeout:g} s (power {st.get('power')}, "
                          f"boots {st.get('boots')}, module {dev.get('modem')}, heap "
                          f"{ {k: v for k, v in dev.items() if 'heap' in k} })")

    def udp_echo(self, bound: float) -> bool:
        assert self.udp is not None
        end = time.monotonic() + bound
        while time.monotonic() < end:
            token = f"udp-{self.echo_rng.randrange(10**9)}"
            seq = self.next_seq()
            self.stats.echoes += 1
            b = body_of(self.udp.request(frame(2, 0, 0, seq, {"d": token}), seq, 3.0))
            if isinstance(b, dict) and b.get("r") == token:
                self.stats.answered += 1
                return True
        return False

    def stop(self) -> None:
        if self.udp:
            self.udp.close()
        if self.con:
            self.con.close()
            for folder in self.folders:  # what the meter printed all session (the recording aside, the only trace
                (folder / "console.log").write_bytes(bytes(self.con.seen))  # of a run that cannot be recorded)
        if self.emu:
            self.emu.stop()
            if self.recording and self.recording.exists():
                for folder in self.folders:  # one recording of the session, linked into each of its findings
                    dst = folder / "emulator.rec"
                    dst.unlink(missing_ok=True)
                    try:
                        os.link(self.recording, dst)
                    except OSError:
                        shutil.copy(self.recording, dst)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- sending -------------------------------------------------------------------------------------------------------
    def log(self, via: str, send: bytes, **extra: Any) -> None:
        step = {"t": round(time.monotonic() - self.t0, 4), "via": via, "send": send.hex()}
        step.update(extra)
        self.steps.append(step)

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    def smp_raw(self, op: int, group: int, cmd: int, body: Any, log: bool = True,
                timeout: float | None = None) -> bytes | None:
        seq = self.next_seq()
        lines = serial_lines(frame(op, group, cmd, seq, body))
        if log:
            self.log("console", lines, what=f"smp {op}/{group}/{cmd}")
        assert self.con
        return self.con.request(lines, seq, timeout or self.o.reply_timeout)

    def echo(self, timeout: float) -> bool:
        token = f"alive-{self.echo_rng.randrange(10**9)}"
        self.stats.echoes += 1
        f = self.smp_raw(2, 0, 0, {"d": token}, log=False, timeout=timeout)
        b = body_of(f)
        ok = isinstance(b, dict) and b.get("r") == token
        if ok:
            self.stats.answered += 1
        return ok

    def wait_echo(self, bound: float, log: bool = True) -> bool:
        end = time.monotonic() + bound
        while time.monotonic() < end:
            if self.echo(self.o.echo_timeout):
                return True
            self.recover_repl()
        return False

    def recover_repl(self) -> None:
        """A meter left at a prompt goes back to its app (Ctrl-C ends paste mode, Ctrl-B raw REPL, Ctrl-D
        soft-resets): a development meter after a Ctrl-C, or a locked one that showed a prompt (already a finding),
        so the session goes on."""
        if not self.con:
            return
        tail = bytes(self.con.seen[-200:])
        if any(p in tail for p in PROMPTS):
            for b in (b"\x03", b"\x02", b"\x04"):
                self.con.write(b)
                self.log("console", b, what="recover")
                time.sleep(0.2)
            self.reset_window = True

    # -- one input -----------------------------------------------------------------------------------------------------
    def one_input(self) -> None:
        w = self.o.weights
        kinds = [k for k in w if w[k] > 0]
        kind = self.rng.choices(kinds, [w[k] for k in kinds])[0]
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        getattr(self, "do_" + kind)()
        self.stats.inputs += 1

    def do_smp(self) -> None:
        seq = self.next_seq()
        name, pkt = self.g.smp(seq)
        lines = self.g.framing(pkt)
        if len(pkt) >= 8 and pkt[4:6] == b"\x00\x00" and pkt[7] == 5 and pkt[0] & 7 == 2:
            self.reset_window = True
            self.stats.resets_sent += 1
        self.log("console", lines, what=name)
        assert self.con
        if self.con.request(lines, seq, self.o.reply_timeout) is not None:
            self.stats.replies += 1

    def do_upload(self) -> None:
        """An upload session: a first chunk, then chunks at good and bad offsets, with state writes, erases and
        resets mid-upload."""
        r = self.rng
        img, sha = self.g.image, self.g.image_sha
        first = self.g.upload_first()
        rep = body_of(self.smp_raw(2, 1, 1, first))
        off = rep.get("off", len(first["data"])) if isinstance(rep, dict) else len(first["data"])
        for _ in range(r.randrange(1, 8)):
            k = r.randrange(10)
            if k <= 3:  # the next chunk, sometimes with a bad length or data
                n = r.choice([1, 64, 256, 700])
                off_i = off if isinstance(off, int) else 0
                body: dict = {"off": off_i, "data": img[off_i:off_i + n]}
                if r.random() < 0.3:
                    body["data"] = bytes(r.randrange(256) for _ in range(len(body["data"])))
                if r.random() < 0.2:
                    body["len"] = r.choice([0, len(img) + 1, 2**32])
                if r.random() < 0.2:
                    body["sha"] = r.choice([sha, bytes(32)])
            elif k == 4:  # a bad offset
                body = {"off": r.choice([-1, len(img), len(img) + 1, 2**32, off + 1 if isinstance(off, int) else 1,
                                          r.randrange(len(img))]), "data": img[:r.choice([0, 1, 100])]}
            elif k == 5:  # a repeat / restart of the first chunk, with another sha or length
                body = {"off": 0, "data": img[:128], "len": r.choice([len(img), len(img) - 1]),
                        "sha": r.choice([sha, bytes(32), sha[:8]])}
            elif k == 6:  # a state write mid-upload
                rep2 = self.smp_raw(2, 1, 0, {"hash": sha, "confirm": r.choice([True, False]),
                                              **({"envelope": self.g.envelope()} if r.random() < 0.5 else {})})
                if rep2 is not None:
                    self.stats.replies += 1
                continue
            elif k == 7:
                self.smp_raw(2, 1, 5, r.choice([{}, {"slot": 1}]))
                continue
            elif k == 8:  # a reset mid-upload
                self.reset_window = True
                self.stats.resets_sent += 1
                self.smp_raw(2, 0, 5, {})
                return
            else:
                body = self.g.mutate_body({"off": off, "data": img[:32]})
            rep = body_of(self.smp_raw(2, 1, 1, body))
            if isinstance(rep, dict) and isinstance(rep.get("off"), int):
                off = rep["off"]
                self.stats.replies += 1

    def do_udp(self) -> None:
        """A datagram to the meter's SMP-over-UDP port: a request from the grammar (valid or mutated) as one
        datagram; now and then several back to back (the meter holds two), one past its 512-byte cap, an empty one,
        or noise."""
        r = self.rng
        assert self.udp is not None
        seq = self.next_seq()
        name, pkt = self.g.smp(seq)
        k = r.randrange(10)
        if k == 0:
            data = [pkt] * r.randrange(2, 5)
        elif k == 1:
            data = [pkt + bytes(r.randrange(256) for _ in range(r.choice([400, 600, 1400])))]
        elif k == 2:
            data = [r.choice([b"", b"\xa4", bytes(r.randrange(256) for _ in range(r.randrange(1, 64)))])]
        else:
            data = [pkt]
        for d in data[:-1]:
            self.log("udp", d, what=name)
            self.udp.send(d)
        self.log("udp", data[-1], what=name)
        if len(data[-1]) >= 8 and data[-1][4:6] == b"\x00\x00" and data[-1][7] == 5 and data[-1][0] & 7 == 2:
            self.reset_window = True
            self.stats.resets_sent += 1
        if self.udp.request(data[-1], seq if len(data[-1]) >= 8 else None, self.o.reply_timeout) is not None:
            self.stats.replies += 1

    def do_noise(self) -> None:
        r = self.rng
        n = r.choice([1, 8, 64, 260, 600, 2100])
        k = r.randrange(4)
        if k == 0:
            data = bytes(r.randrange(256) for _ in range(n))
        elif k == 1:  # printable noise, with newlines
            data = bytes(r.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n\r ")
                         for _ in range(n))
        elif k == 2:  # markers without a body, or a body without an end
            data = r.choice([b"\x06\x09", b"\x04\x14", b"\x06\x09" + b"A" * n, b"\x06\x09AAAA\n\x04\x14" * 10])
        else:  # Python text, as typed at a REPL that must not be there
            data = r.choice([b"import os\r\n", b"print('owned')\r\n", b"open('meter/mode.json','w').write('{}')\r\n",
                             b"help()\r\n"])
        assert self.con
        self.log("console", data, what="noise")
        self.con.write(data)
        time.sleep(0.05)

    def control_sequence(self) -> bytes:
        r = self.rng
        seqs = [b"\x03", b"\x03\x03", b"\x04", b"\x01", b"\x02", b"\x05", b"\x01\x04", b"\x05print(1)\r\n\x04",
                b"\x01print('raw')\x04", b"\x03\x01", b"\x03\x05", b"\r\n" * r.randrange(1, 40),
                b"\x03\r\n\x03\r\n", b"\x02\x03\x04", b"\x01\x05A\x01", b"\x03" * r.randrange(2, 50)]
        return r.choice(seqs)

    def do_control(self) -> None:
        data = self.control_sequence()
        assert self.con
        self.log("console", data, what="control")
        self.con.write(data)
        if b"\x04" in data and not self.locked:
            self.reset_window = True  # a development meter soft-resets on Ctrl-D at its prompt
        time.sleep(0.1)

    def do_sweep(self) -> None:
        """A reset with control sequences at a swept moment of the boot."""
        r = self.rng
        ms = r.choice([float(r.randrange(0, 21)), round(20 * (1500 / 20) ** r.random(), 1)])
        self.reset_window = True
        self.stats.resets_sent += 1
        if self.emu is not None:
            req = {"verb": "reset", "kind": r.choice(["hard", "hard", "soft"]), "ctrl_c_after_ms": ms}
            self.log("ctl", json.dumps(req).encode(), what=f"reset --ctrl-c-after {ms}")
            try:
                self.emu.request(req)
            except Exception as e:
                self.log("ctl", b"", what=f"ctl failed: {e}")
        else:  # a real meter: reset it over SMP, then type control sequences at host-timed moments
            self.smp_raw(2, 0, 5, {}, timeout=0.3)
            time.sleep(ms / 1000.0)
            data = self.control_sequence()
            self.log("console", data, what=f"control after reset +{ms} ms")
            assert self.con
            self.con.write(data)
        # what follows the Ctrl-C during the boot, a few ms later
        time.sleep(r.choice([0.0, 0.005, 0.05, 0.3]))
        data = self.control_sequence()
        self.log("console", data, what="control after reset")
        assert self.con
        self.con.write(data)
        time.sleep(0.2)

    # -- monitors ----------------------------------------------------------------------------------------------------
    def check_console(self) -> None:
        assert self.con
        with self.con.lock:
            new = bytes(self.con.seen[max(0, self.seen_at - 16):])
            self.seen_at = len(self.con.seen)
        if self.locked:
            for p in PROMPTS:
                if p in new:
                    i = new.index(p)
                    self.finding("console-prompt", f"a locked meter showed {p.decode()!r} on its console",
                                 p.decode(), console=new[max(0, i - 400):i + 100].decode(errors="replace"))
        i = new.find(b"Traceback (most recent call last)")
        while i >= 0:
            lines = [ln.strip(b"\r") for ln in new[i:].split(b"\n")[1:]]
            exc = next((ln for ln in lines[:-1] if ln and not ln.startswith(b" ")), None)
            if exc is None:  # the traceback's end has not arrived yet: look at it again next time
                with self.con.lock:
                    self.seen_at = min(self.seen_at, self.seen_at - len(new) + i + 16)
                break
            chunk = new[i:i + 3000]
            if not exc.startswith(b"KeyboardInterrupt"):
                self.finding("console-traceback", f"the meter printed a traceback: {exc.decode(errors='replace')}",
                             exc.split(b":")[0].decode(errors="replace"), console=chunk.decode(errors="replace"))
            i = new.find(b"Traceback (most recent call last)", i + 1)
        if self.emu is not None:
            out = self.emu.output()
            tail, self.emu_log_at = out[self.emu_log_at:], len(out)
            if "the VM ended with status" in tail:
                self.finding("vm-ended", "the emulator's VM ended", "vm-ended", log=tail[-1500:])

    def check_liveness(self) -> bool:
        """Echo; if none, retry (recovering a development meter's REPL) until the hang bound; then the reboot
        monitor. False when the meter is gone for good."""
        if not self.wait_echo(self.o.hang_bound_s):
            self.check_console()
            self.finding("unrecovered-hang", f"the meter stopped answering SMP echoes for {self.o.hang_bound_s:.0f} s",
                         "hang", console=bytes(self.con.seen[-1500:]).decode(errors="replace") if self.con else "")
            if self.emu is None:
                return False
            try:  # a hard reset, so the session can go on
                req = {"verb": "reset", "kind": "hard"}
                self.log("ctl", json.dumps(req).encode(), what="recover: hard reset")
                self.emu.request(req)
                self.reset_window = True
            except Exception:
                return False
            if not self.wait_echo(self.o.hang_bound_s):
                return False
        if self.udp is not None and not self.udp_echo(self.o.hang_bound_s):
            self.finding("unrecovered-hang", f"the meter answers on its console but not over UDP for "
                         f"{self.o.hang_bound_s:.0f} s", "udp-hang")
        self.check_reboots()
        return True

    def check_reboots(self) -> None:
        st = body_of(self.smp_raw(0, 64, 0, {}, log=False, timeout=self.o.echo_timeout))
        cause = None
        if isinstance(st, dict) and "boot" in st:
            boot = st.get("boot")
            mode = st.get("mode")
            if self.locked and mode not in (None, "locked"):
                self.finding("unauthorised-state-change", f"a locked meter now reports mode {mode!r}", "mode")
            if isinstance(boot, int) and isinstance(self.boot, int) and boot != self.boot:
                n = boot - self.boot if boot > self.boot else 1
                self.stats.reboots += n
                if self.emu is not None:
                    try:
                        cause = self.emu.status().get("reset_cause")
                    except Exception:
                        cause = None
                if self.reset_window:
                    self.stats.expected_reboots += n
                else:
                    self.finding("unexpected-reboot", f"the meter rebooted (boot {self.boot} -> {boot}, cause {cause}) with no reset "
                                 "sent", str(cause))
            if isinstance(boot, int):
                self.boot = boot
        self.reset_window = False

    def read_events(self) -> list:
        out: list = []
        since = 0
        for _ in range(20):
            b = body_of(self.smp_raw(0, 66, 5, {"since": since}, log=False, timeout=self.o.echo_timeout))
            if not isinstance(b, dict) or not isinstance(b.get("events"), list) or not b["events"]:
                break
            out += b["events"]
            last = b["events"][-1]
            if not isinstance(last, list) or not last or not isinstance(last[0], int):
                break
            since = last[0] + 1
            if len(b["events"]) < 16:
                break
        return out

    def check_events(self) -> None:
        seen = {e[0] for e in self.events_before if isinstance(e, list) and e}
        for e in self.read_events():
            if not isinstance(e, list) or len(e) < 2 or e[0] in seen:
                continue
            seen.add(e[0])
            self.events_before.append(e)
            code = e[1]
            self.stats.events_new[str(code)] = self.stats.events_new.get(str(code), 0) + 1
            detail = str(e[3]) if len(e) > 3 else ""
            if code in AUTH_EVENTS and self.locked:
                self.finding("unauthorised-state-change", f"a locked meter logged event {code} ({AUTH_EVENTS[code]}: {detail}) during an "
                             "unsigned attack", f"event-{code}")
            elif code in DAMAGE_EVENTS:
                self.finding("damage-event", f"the meter logged event {code} ({DAMAGE_EVENTS[code]}: {detail})", f"event-{code}")
            elif code == OOM_EVENT:
                self.finding("oom-event", f"the meter logged event 418 (out of memory: {detail})", "event-418")

    def records(self) -> dict:
        """The protected records: over SMP, and from the emulator's flash image."""
        rec: dict = {}
        st = body_of(self.smp_raw(0, 64, 0, {}, log=False, timeout=self.o.echo_timeout))
        if isinstance(st, dict):
            for k in ("mode", "counter", "image_keys", "image_keys_dev", "max_step"):
                if k in st:
                    rec["update." + k] = _plain(st[k])
        im = body_of(self.smp_raw(0, 1, 0, {}, log=False, timeout=self.o.echo_timeout))
        if isinstance(im, dict) and isinstance(im.get("images"), list):
            for s in im["images"]:
                if not isinstance(s, dict):
                    continue
                slot = s.get("slot")
                keys: tuple[str, ...] = ("version", "hash", "active", "confirmed", "pending", "permanent") if slot == 0 else (
                    "pending", "permanent")
                for k in keys:
                    rec[f"image.slot{slot}.{k}"] = _plain(s.get(k))
        for name, grp, cmd, keys in (("calibration", 65, 2, ("source", "constants")),
                                     ("settings", 66, 3, ("settings",)), ("calendar", 66, 8, ("calendar",)),
                                     ("headend", 67, 1, ("headend",))):
            b = body_of(self.smp_raw(0, grp, cmd, {}, log=False, timeout=self.o.echo_timeout))
            if isinstance(b, dict) and "err" not in b and "rc" not in b:
                for k in keys:
                    rec[f"{name}.{k}"] = _plain(b.get(k))
        s = body_of(self.smp_raw(0, 66, 0, {}, log=False, timeout=self.o.echo_timeout))
        if isinstance(s, dict) and isinstance(s.get("credit"), dict):
            rec["credit.top_tid"] = _plain(s["credit"].get("top_tid"))
        if self.emu is not None:
            rec.update(flash_records(self.emu.flash, self.emu.board))
        return rec

    def check_records(self, final: bool = False) -> None:
        now = self.records()
        before = self.records_before
        changed = []
        for k in sorted(set(before) | set(now)):
            if k not in now or k not in before:
                # a read that failed once (busy, a reboot) is not a change; a flash file that came or went is
                if k.startswith("flash:"):
                    changed.append((k, before.get(k), now.get(k)))
                continue
            if before[k] != now[k]:
                changed.append((k, before[k], now[k]))
        for k, a, b in changed:
            self.stats.record_changes.append({"record": k, "before": a, "after": b})
            if self.locked:
                self.finding("unauthorised-state-change", f"a locked meter's protected record {k} changed: {_short(a)} -> {_short(b)}", k)
        for k, v in now.items():
            before[k] = v

    # -- findings ------------------------------------------------------------------------------------------------------
    def finding(self, kind: str, summary: str, what: str, **extra: Any) -> None:
        sig = hashlib.sha256((f"{kind}:{what}").encode()).hexdigest()[:12]
        f = AttackFinding(target=self.target, kind=kind, signature=sig, summary=summary, board=self.o.board or "",
                          engine="attack", seed=self.o.seed, runtime="emulator" if self.emu else "serial",
                          firmware_tree=paths.firmware_tree_hash() if self.emu else "",
                          found_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), size=len(self.steps),
                          extra={"locked": self.locked, "emulator_locked": self.o.locked, "port": self.o.port, "udp": self.o.udp,
                                 "mode": self.mode, "steps": len(self.steps), **extra})
        folder, new = save(f, self.steps, self.o.out)
        self.stats.findings += 1
        if new:
            self.stats.new_findings.append({"kind": kind, "signature": sig, "summary": summary,
                                            "folder": str(folder)})
        if folder not in self.folders:
            self.folders.append(folder)

    # -- the run -------------------------------------------------------------------------------------------------------
    def done(self) -> bool:
        if self.o.inputs is not None and self.stats.inputs >= self.o.inputs:
            return True
        if self.o.seconds is not None and time.monotonic() - self.t0 >= self.o.seconds:
            return True
        return False

    def report(self) -> None:
        self.stats.elapsed_s = round(time.monotonic() - self.t0, 2)
        if self.o.progress:
            self.o.progress(asdict(self.stats))

    def run(self) -> Stats:
        try:
            self.start()
        except BaseException:  # an unreachable meter (or a Ctrl-C) while starting: its emulator stops too, not left
            self.stop()  # running in a session of its own (a full run found one spinning for an hour after it)
            raise
        self.t0 = time.monotonic()
        self.steps = []
        last_report = 0.0
        alive = True
        try:
            if self.o.replay_steps is not None:
                alive = self.replay(self.o.replay_steps)
            else:
                echoes = 0
                while not self.done():
                    try:
                        self.one_input()
                    except KeyboardInterrupt:  # Ctrl-C ends the session, with its final checks
                        break
                    self.check_console()
                    if self.stats.inputs % self.o.echo_every == 0:
                        if not self.check_liveness():
                            alive = False
                            break
                        echoes += 1
                        if echoes % self.o.snapshot_every == 0:
                            self.check_events()
                            self.check_records()
                    if time.monotonic() - last_report > 1.0:
                        self.report()
                        last_report = time.monotonic()
            if alive and self.check_liveness():
                time.sleep(0.3)
                self.check_console()
                self.check_events()
                self.check_records(final=True)
        finally:
            self.stats.elapsed_s = round(time.monotonic() - self.t0, 2)
            self.stop()
        self.report()
        return self.stats

    def replay(self, steps: list[dict]) -> bool:
        """Send a finding's steps again at their times (console bytes as they were, control verbs again)."""
        start = time.monotonic()
        for i, s in enumerate(steps):
            wait = float(s.get("t", 0)) - (time.monotonic() - start)
            if wait > 0:
                time.sleep(wait)
            data = bytes.fromhex(s.get("send", ""))
            self.steps.append(s)
            if s.get("via") == "ctl":
                if self.emu is not None and data:
                    try:
                        self.emu.request(json.loads(data))
                    except Exception:
                        pass
                self.reset_window = True
            elif s.get("via") == "udp":
                if self.udp is not None:
                    self.udp.send(data)
            elif s.get("via") == "console":
                assert self.con
                self.con.write(data)
                if b"\x04" in data or "reset" in str(s.get("what", "")) or "smp 2/0/5" in str(s.get("what", "")):
                    self.reset_window = True
            self.stats.inputs += 1
            self.check_console()
            if (i + 1) % self.o.echo_every == 0 and not self.check_liveness():
                return False
        return True


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, float) and v != v:
        return "nan"
    return v


def _short(v: Any) -> str:
    s = json.dumps(v) if not isinstance(v, str) else v
    return s if len(s) < 80 else s[:77] + "..."


def flash_records(flash: Path, board: str) -> dict:
    """The protected files of an emulated meter's flash image, by SHA-256 (littlefs read on the host; the image
    is read as it stands, which littlefs's power-cut safety makes a consistent old-or-new volume)."""
    try:
        from meterkit.boards import load_board

        block = load_board(board)["flash"]["block_size"]
    except Exception:
        block = 4096
    try:
        files = flash_files(flash.read_bytes(), block)
    except Exception:
        return {}
    out = {}
    for p, h in files.items():
        rel = p.lstrip("/")
        if rel in PROTECTED_FILES or any(p.startswith(x) for x in PROTECTED_PREFIXES):
            out["flash:" + rel] = h
    return out


def flash_files(image: bytes, block_size: int) -> dict[str, str]:
    """{path: sha256 hex} of every file in a VfsLfs2 image (host_tests/flash_files.py, in the package)."""
    from littlefs import LittleFS, UserContext

    ctx = UserContext(len(image))
    ctx.buffer[:] = image
    fs = LittleFS(context=ctx, mount=False, block_size=block_size, block_count=len(image) // block_size,
                  read_size=32, prog_size=32, cache_size=min(block_size, 128), lookahead_size=32, block_cycles=100)
    fs.mount()
    out = {}
    for top, _dirs, names in fs.walk("/"):
        for n in names:
            p = "{}/{}".format(top.rstrip("/"), n)
            with fs.open(p, "rb") as f:
                out[p] = hashlib.sha256(f.read()).hexdigest()
    return out


def lock_over_repl(port: str, timeout: float = 40.0) -> None:
    """Make a development meter locked as a tester with a cable would (host_tests/console_attack.set_mode_file):
    at its REPL, write meter/mode.json {"mode": "locked"}, then soft-reset; wait for the loader's "locked mode"."""
    import serial

    with serial.Serial(port, 115200, timeout=0.05) as s:
        seen = bytearray()

        def until(marker: bytes, t: float) -> bool:
            end = time.monotonic() + t
            start = len(seen)
            while time.monotonic() < end:
                seen.extend(s.read(max(1, s.in_waiting)))
                if marker in seen[start:]:
                    return True
            return False

        for _ in range(40):
            s.write(b"\x03")
            if until(b">>> ", 0.5):
                break
        else:
            raise Unreachable(f"the development meter showed no prompt to lock it: {bytes(seen[-300:])!r}")
        s.write(b"f = open('meter/mode.json', 'wb'); f.write(b'{\"mode\": \"locked\"}'); f.close(); "
                b"print('wr' + 'itten')\r")
        if not until(b"written", 10):
            raise Unreachable(f"could not write the mode file: {bytes(seen[-300:])!r}")
        s.write(b"\x04")
        if not until(b"locked mode", timeout):
            raise Unreachable(f"the meter did not come back locked: {bytes(seen[-300:])!r}")


# -- findings' folders ---------------------------------------------------------------------------------------------

class AttackFinding(findings.Finding):
    def repro_command(self, folder: Path) -> str:
        return f"meter-fuzz attack --replay {folder}"


def save(f: AttackFinding, steps: list[dict], out: Path) -> tuple[Path, bool]:
    """findings.save's layout, with the steps as inputs.jsonl in place of input.bin."""
    folder = f.folder(out)
    meta = folder / "finding.json"
    data = "".join(json.dumps(s) + "\n" for s in steps).encode()
    if meta.exists():
        old = findings.load_meta(folder)
        old["hits"] = int(old.get("hits", 1)) + 1
        findings._write(meta, json.dumps(old, indent=2).encode())
        return folder, False
    folder.mkdir(parents=True, exist_ok=True)
    findings._write(folder / "inputs.jsonl", data)
    rec = asdict(f)
    rec["repro"] = f.repro_command(folder)
    findings._write(meta, json.dumps(rec, indent=2).encode())
    return folder, True


def load_steps(folder: Path) -> tuple[dict, list[dict]]:
    meta = findings.load_meta(folder)
    p = folder / "inputs.jsonl"
    if not p.exists():
        raise findings.BadFinding(f"{folder} has no inputs.jsonl (not an attack finding)")
    steps = []
    for n, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            s = json.loads(line)
            bytes.fromhex(s["send"])
            float(s["t"])
        except (ValueError, KeyError, TypeError):
            raise findings.BadFinding(f"{p}:{n} is not a step {{t, via, send}}") from None
        steps.append(s)
    return meta, steps
