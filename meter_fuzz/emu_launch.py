"""A `meter-emu` the attacker starts itself: run it as users do (the console script beside this Python), wait for
its endpoints, talk to its control socket in-process (no `meter-emu ctl` subprocess per verb), stop it. Adapted
from host_tests/emu.py (which is not part of the installed package)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


class LaunchError(RuntimeError):
    """meter-emu did not start, or its board did not come up."""


def meter_emu() -> str:
    exe = BIN / "meter-emu"
    return str(exe) if exe.exists() else "meter-emu"


class Emulator:
    def __init__(self, state: Path, board: str = "esp32_devkitc", speed: str = "1", seed: int | None = None,
                 record: Path | None = None, args: tuple[str, ...] = ()):
        self.state = Path(state)
        self.board = board
        self.record = record
        self.log_path = self.state.parent / f"{self.state.name}.emu.log"
        self.log = open(self.log_path, "wb")
        cmd = [meter_emu(), "run", "--board", board, "--state", str(self.state), "--speed", speed]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if record is not None:
            cmd += ["--record", str(record)]
        self.proc = subprocess.Popen(cmd + list(args), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self.endpoints = self.wait_endpoints()
        except BaseException:
            self.stop()
            raise

    def wait_endpoints(self, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        path = self.state / "endpoints.json"
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise LaunchError(f"meter-emu exited with {self.proc.returncode}: {self.output()[-1500:]}")
            if path.exists():
                try:
                    return json.loads(path.read_text())
                except ValueError:
                    pass
            time.sleep(0.05)
        raise LaunchError(f"meter-emu did not publish endpoints: {self.output()[-1500:]}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    @property
    def console(self) -> str:
        return self.endpoints["console"]

    @property
    def flash(self) -> Path:
        return self.state / "flash.bin"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, req: dict, timeout: float = 30) -> dict:
        """One control verb ({"verb": "status"}, {"verb": "reset", "kind": "hard", "ctrl_c_after_ms": 3}, ...)."""
        from emulator import control

        return control.request(self.endpoints["control"], req, timeout=timeout)

    def status(self) -> dict:
        return self.request({"verb": "status"})

    def wait_boots(self, n: int, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        st: dict = {}
        while time.monotonic() < end:
            st = self.status()
            if st.get("boots", 0) >= n and st.get("power") == "on" and "device" in st:
                return st
            time.sleep(0.1)
        raise LaunchError(f"the board did not boot {n} times: {st}")

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([meter_emu(), "ctl", "--state", str(self.state), *args], capture_output=True, text=True,
                              timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
