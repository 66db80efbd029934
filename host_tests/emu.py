"""Test-side handle on a running `meter-emu`: starts it as users do (the console script), waits for its endpoints,
and offers the control verbs and an SMP link over the console pty with pyserial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import serial
from smp import packet

BIN = Path(sys.executable).parent


def exit_on_sigterm() -> None:
    """A bench or test killed with SIGTERM (kill, a CI timeout) unwinds like a Ctrl-C, so its `finally` stops the
    emulators it started: they run in sessions of their own, and a killed parent would otherwise leave them running
    (an orphaned emulator at --speed max took a core from every later run)."""
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        def on_term(signum, frame):
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)


class Emulator:
    def __init__(self, state: Path, board: str = "esp32_devkitc", speed: str = "1", baud: int = 115200,
                 blank: bool = False, seed: int | None = None, args: tuple[str, ...] = ()):
        self.state = Path(state)
        self.board = board
        exit_on_sigterm()
        self.log = open(self.state.parent / f"{self.state.name}.emu.log", "wb")
        self.proc = subprocess.Popen(
            [str(BIN / "meter-emu"), "run", "--board", board, "--state", str(self.state), "--speed", speed,
             "--baud", str(baud)] + (["--blank"] if blank else []) + ([] if seed is None else ["--seed", str(seed)])
            + list(args),
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.endpoints = self.wait_endpoints()

    def wait_endpoints(self, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        path = self.state / "endpoints.json"
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"meter-emu exited with {self.proc.returncode}:\n{self.output()}")
            if path.exists():
                return json.loads(path.read_text())
            time.sleep(0.05)
        raise TimeoutError(f"meter-emu did not publish endpoints:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return (self.state.parent / f"{self.state.name}.emu.log").read_text(errors="replace")

    @property
    def console(self) -> str:
        return self.endpoints["console"]

    def ctl(self, *args: str, check: bool = True, timeout: float = 60) -> dict:
        p = subprocess.run([str(BIN / "meter-emu"), "ctl", "--state", str(self.state), *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"ctl {args} failed ({p.returncode}): {p.stdout} {p.stderr}")
        return json.loads(p.stdout) if p.stdout.strip() else {"exit": p.returncode, "stderr": p.stderr}

    def set(self, **kv) -> dict:
        """`ctl set`, keys with '__' for '.': emu.set(load__current=5, grid__voltage=240)."""
        return self.ctl("set", *[f"{k.replace('__', '.')}={v}" for k, v in kv.items()])

    def status(self, collect: bool = False) -> dict:
        """`ctl status`, asked on the control socket in this process: the wait loops below ask it every 0.1 s, and a
        `meter-emu` process per poll took a tenth of a core from the emulators under test. The `ctl` CLI itself stays
        in use for every other verb and in its own tests. Unlike the CLI it asks the VM for no collection (a
        collection at a poll's host-timed moment changed where the firmware's objects landed) unless `collect`: then
        `device.heap_free` is the heap after one, as `meter-emu ctl status` gives it."""
        from emulator import control

        rep = control.request(self.endpoints["control"], {"verb": "status", **({"collect": True} if collect else {})})
        if not rep.get("ok"):
            raise RuntimeError(f"ctl status refused: {rep}")
        return rep

    def scenario(self, path: Path | str) -> dict:
        return self.ctl("scenario", str(path))

    def wait_boots(self, n: int, timeout: float = 30) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.status()
            if st["boots"] >= n and st["power"] == "on" and "device" in st:
                return st
            time.sleep(0.1)
        raise TimeoutError(f"board did not boot {n} times: {st}")

    def wait_status(self, pred, timeout: float = 30, what: str = "condition") -> dict:
        end = time.monotonic() + timeout
        st: dict = {}
        while time.monotonic() < end:
            st = self.status()
            if st["power"] == "on" and pred(st):
                return st
            time.sleep(0.1)
        raise TimeoutError(f"{what} not reached: {st}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class SmpLink:
    """SMP over the emulated console with pyserial, framed with the `smp` library's serial encoder/decoder."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 10.0):
        self.ser = serial.Serial(port, baud, timeout=0.05)
        self.timeout = timeout

    def close(self) -> None:
        self.ser.close()

    def send_frame(self, frame: bytes) -> None:
        for line in packet.encode(frame):
            self.ser.write(line)

    def read_frame(self, timeout: float | None = None) -> bytes:
        end = time.monotonic() + (timeout or self.timeout)
        buf = b""
        while time.monotonic() < end:
            buf += self.ser.read(max(1, self.ser.in_waiting))
            i = buf.find(b"\x06\x09")
            if i >= 0:
                dec = packet.decode()
                next(dec)
                rest = buf[i:]
                try:
                    while True:
                        nl = rest.find(b"\n")
                        if nl < 0:
                            more = self.ser.read(max(1, self.ser.in_waiting))
                            if not more and time.monotonic() > end:
                                raise TimeoutError("partial SMP packet")
                            rest += more
                            continue
                        line, rest = rest[: nl + 1], rest[nl + 1:]
                        dec.send(line)
                except StopIteration as done:
                    return done.value
        raise TimeoutError("no SMP response")

    def request(self, req, timeout: float | None = None):
        self.ser.reset_input_buffer()
        self.send_frame(req.BYTES)
        frame = self.read_frame(timeout)
        return decode_response(req, frame, response_type(req))


def response_type(req):
    """EchoWriteRequest → EchoWriteResponse, from the request's own module."""
    mod = sys.modules[type(req).__module__]
    return getattr(mod, type(req).__name__.replace("Request", "Response"), None)


def decode_response(req, frame: bytes, rsp_type=None):
    """The typed response: the group's ErrorV2 for {"err": ...}, ErrorV1 for {"rc": n}, else `rsp_type`."""
    import cbor2
    from smp.header import Header

    hdr = Header.loads(frame[:8])
    assert hdr.sequence == req.header.sequence, "sequence not echoed"
    body = cbor2.loads(frame[8:]) if len(frame) > 8 else {}
    mod = sys.modules[type(req).__module__]
    if "err" in body:
        v2 = next(getattr(mod, n) for n in dir(mod) if n.endswith("ErrorV2") and "[" not in n)
        return v2.loads(frame)
    if "rc" in body and set(body) <= {"rc", "rsn"}:
        # the request's own group's ErrorV1: the bare class has no group id to check the header against, and its
        # loads raised AttributeError (_GROUP_ID) and hid the code of a meter that had answered {"rc": n}
        v1 = getattr(req, "_ErrorV1", None) or next(
            getattr(mod, n) for n in dir(mod) if n.endswith("ErrorV1") and n != "ErrorV1")
        return v1.loads(frame)
    if rsp_type is None:
        return frame
    return rsp_type.loads(frame)


def ota(*args, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ota"), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env)


def running(emu: Emulator) -> dict | None:
    """The slot the meter runs ({version, confirmed, ...}), or None when it does not answer."""
    p = ota("status", "--port", emu.console, "--json", "--timeout", "2")
    if p.returncode != 0:
        return None
    return next((r for r in json.loads(p.stdout)["slots"] if r["active"]), None)


def cut_during_push(emu: Emulator, image: Path, old: str, new: str, at_write: int, torn: int = 0,
                    timeout: float = 90) -> dict:
    """Arm a power cut at the `at_write`-th flash operation from now, run `ota push --test` (which the cut may
    interrupt anywhere: upload, verification, state write, install at boot, test boot, confirm), let power return,
    and check: the volume mounted without a format, the meter runs `old` or `new` (the loader checked every file
    against the slot's manifest before importing it), and a rerun of the push ends with `new` confirmed."""
    cuts_before = emu.output().count("emulator: power cut before flash operation")
    emu.ctl("power-cut", "--at-write", str(at_write), "--torn", str(torn), "--off", "0.3")
    first = ota("push", image, "--port", emu.console, "--test", "--json", "--timeout", "3")
    end = time.monotonic() + timeout
    after = None
    while time.monotonic() < end:  # until the meter answers with a settled slot table
        after = running(emu)
        if after is not None and (after["confirmed"] or after["version"] == new):
            break
        time.sleep(0.5)
    if after is None:
        raise AssertionError(f"cut at {at_write}: the meter does not answer after power returned")
    st = emu.ctl("status")
    cut = emu.output().count("emulator: power cut before flash operation") > cuts_before
    if st.get("formatted"):
        raise AssertionError(f"cut at {at_write}: the filesystem had to be formatted")
    if after["version"] not in (old, new):
        raise AssertionError(f"cut at {at_write}: runs {after['version']}")
    again = ota("push", image, "--port", emu.console, "--test", "--json", "--timeout", "3")
    while time.monotonic() < end:
        now = running(emu)
        if now and now["version"] == new and now["confirmed"]:
            return {"at_write": at_write, "torn": torn, "first_push_exit": first.returncode, "cut": cut,
                    "cut_at_boot": st["boots"],
                    "after_cut": after["version"], "rerun_exit": again.returncode}
        time.sleep(0.5)
    raise AssertionError(f"cut at {at_write}: the rerun did not end with {new} confirmed ({again.stdout})")
