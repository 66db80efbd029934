"""A console attacker against a locked emulated meter: reset it, send one Ctrl-C a chosen time after the board starts
running boot.py (`meter-emu ctl reset --ctrl-c-after MS`), and check what a locked meter must guarantee — no Python
prompt ever appears, the meter comes back answering SMP, and it still refuses unsigned state changes (it is still
locked). Used by the e2e test (a sample of delays) and `python -m host_tests.bench.console_attack` (every delay)."""

from __future__ import annotations

import subprocess
import time

import cbor2
import serial
from smp import image_management as im
from smp import os_management as osm
from smp import packet

from host_tests.emu import BIN, Emulator

PROMPTS = (b">>>", b"raw REPL", b"paste mode")
BOOT_WAIT_S = 30.0


def delays(n: int) -> list[float]:
    """`n` delays in ms after the board starts running boot.py: half of them (at most 21) every millisecond from 0
    (stage 0's first milliseconds, where the attack that found the open console landed), the rest spread
    geometrically to 1.5 s (loader, app start-up and the app's first second)."""
    fine = [float(ms) for ms in range(0, min(21, n // 2 + 1))]
    rest = n - len(fine)
    if rest <= 0:
        return fine
    return fine + [round(20 * (1500 / 20) ** ((k + 1) / rest), 1) for k in range(rest)]


def set_mode_file(emu: Emulator, content: bytes) -> None:
    """Write meter/mode.json through a development meter's REPL (mpremote), as a tester with a cable would."""
    code = f"f = open('meter/mode.json', 'wb'); f.write({content!r}); f.close(); print('written')"
    p = subprocess.run([str(BIN / "mpremote"), "connect", emu.console, "exec", code], capture_output=True, text=True,
                       timeout=60)
    if "written" not in p.stdout:
        raise RuntimeError(f"could not write the mode file: {p.stdout} {p.stderr}")
    con = Console(emu.console)
    try:
        emu.ctl("reset")  # leave mpremote's REPL: the meter boots with the new mode file
        if not con.read_until(b"locked mode", BOOT_WAIT_S):
            raise RuntimeError(f"the meter did not come back locked: {bytes(con.seen[-400:])!r}")
    finally:
        con.close()


class Console:
    """The attacker's cable: raw bytes in and out, and SMP requests over the same port."""

    def __init__(self, port: str):
        self.ser = serial.Serial(port, 115200, timeout=0.05)
        self.seen = bytearray()

    def close(self) -> None:
        self.ser.close()

    def read_until(self, marker: bytes, timeout: float) -> bool:
        end = time.monotonic() + timeout
        start = len(self.seen)
        while time.monotonic() < end:
            self.seen += self.ser.read(max(1, self.ser.in_waiting))
            if marker in self.seen[start:]:
                return True
        return False

    def request(self, req, timeout: float = 3.0) -> dict:
        """The reply's CBOR body."""
        for line in packet.encode(req.BYTES):
            self.ser.write(line)
        end = time.monotonic() + timeout
        buf = bytearray()
        dec = None
        while time.monotonic() < end:
            chunk = self.ser.read(max(1, self.ser.in_waiting))
            self.seen += chunk
            buf += chunk
            while b"\n" in buf:
                nl = buf.index(b"\n")
                line, buf = bytes(buf[: nl + 1]), buf[nl + 1:]
                if dec is None:
                    i = line.find(b"\x06\x09")
                    if i < 0:
                        continue
                    line = line[i:]
                    dec = packet.decode()
                    next(dec)
                try:
                    dec.send(line)
                except StopIteration as done:
                    return cbor2.loads(done.value[8:]) if len(done.value) > 8 else {}
        raise TimeoutError(f"no SMP reply in {timeout} s; the console's last bytes: {bytes(self.seen[-600:])!r}")


def attempt(emu: Emulator, ms: float) -> dict:
    """One attack: reset with a Ctrl-C `ms` after boot.py starts. Raises AssertionError if the meter showed a prompt,
    stopped answering, or obeyed an unsigned erase (no longer locked); returns what happened."""
    con = Console(emu.console)
    try:
        boots = emu.status()["boots"]
        while con.ser.read(4096):  # what the meter printed before this attempt is not this attempt's
            pass
        con.seen.clear()
        emu.ctl("reset", "--ctrl-c-after", str(ms))
        came_back = con.read_until(b"loader: app", BOOT_WAIT_S)
        # The Ctrl-C leaves `ms` of wall time after the boot began, which was before the loader's line: past this
        # moment it is on the line. Before it, it could land inside one of the requests below, as a byte in the
        # middle of an SMP frame, which the meter rightly drops: the attacker's own noise, not the meter's fault.
        time.sleep(ms / 1000 + 0.1)
        echo = None
        for _ in range(10):  # the app's console task starts a moment after the loader's line
            try:
                echo = con.request(osm.EchoWriteRequest(d="still here")).get("r")
                break
            except TimeoutError:
                pass
        erase = con.request(im.ImageEraseRequest(slot=1)) if echo else None
        time.sleep(0.2)
        con.seen += con.ser.read(4096)
        seen = bytes(con.seen)
    finally:
        con.close()
    shown = [p.decode() for p in PROMPTS if p in seen]
    if shown:
        raise AssertionError(f"Ctrl-C {ms} ms after boot: the console showed {shown}:\n{seen[-600:]!r}")
    if not came_back or echo != "still here":
        raise AssertionError(f"Ctrl-C {ms} ms after boot: the meter does not answer SMP:\n{seen[-600:]!r}")
    if not erase or not (erase.get("rc") or erase.get("err")):
        raise AssertionError(f"Ctrl-C {ms} ms after boot: an unsigned erase was obeyed: the meter is not locked")
    return {"ms": ms, "boots": emu.status()["boots"] - boots, "interrupted": b"KeyboardInterrupt" in seen}
