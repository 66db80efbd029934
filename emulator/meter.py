"""The emulated board: supervises the MicroPython VM that runs the firmware (supervisor.py), plays its hardware and
surroundings (world.py) and serves control requests (verbs.py). One event loop on the calling thread; the wire, the
bus reader and the control server feed it through a queue. Meter holds the state; the three mixins hold the three
jobs."""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from meterkit import layout, mpy
from meterkit.boards import load_board

from . import grid as gridmodel
from . import recording
from .bus import Bus
from .consolelog import ConsoleLog
from .control import ControlServer
from .errors import BadInput, StateCorrupt, VmMissing
from .gate import InputGate
from .optical import OpticalPort
from .recording import Recording
from .statedir import StateDir
from .supervisor import BOOT_TIMEOUT, CUT_TIMEOUT, WDT_CPU_CHECK_S, WDT_WALL_SLACK, micropython_path, shim_heap_extra
from .verbs import ControlVerbs
from .wire import CTRL_C, Wire
from .world import PRESSABLE, parse_speed

GATE_STOP_TIMEOUT = 5.0  # wall seconds a recorded run waits for the board to reach a point to stop at


class Meter(ControlVerbs):
    def __init__(self, board_id: str, state: StateDir, baud: int = 115200, speed: float | str = 1.0,
                 firmware_dir: Path | None = None, announce: Callable[[str], None] = print, blank: bool = False,
                 scenario: dict | None = None, seed: int | None = None, rtc_start_ns: int | None = None,
                 run_for_s: float | None = None, console_log: str | None = None, record: str | None = None,
                 replay: Recording | None = None, modem: bool = False):
        self.board = load_board(board_id)
        self.modem = modem  # `run --modem`: the NB-IoT module on uarts.modem (emulator/radio.py)
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
        self.firmware_given = firmware_dir is not None  # `run --firmware DIR`
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
        self.releases: dict[int, dict] = {}  # gpio -> {"value": level after the press, "due_ns": world time}
        self.wdt_deadline: float | None = None  # VM CPU seconds
        self.wdt_wall_deadline = 0.0
        self.wdt_cpu_checked = 0.0  # monotonic time of the last look at the VM's CPU time
        self.armed_cut: dict | None = None  # a cut not yet reached carries over a reset: the rest counts on
        self.pending_queries: dict[int, Callable[[dict | None], None]] = {}
        # of those, the ones asking for more than the plain status: {"largest_free": True} (the largest free block),
        # {"collect": True} (the heap's figures after a collection)
        self.query_extras: dict[int, dict] = {}
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
        self.optical: OpticalPort | None = None
        self.console_view: ConsoleLog | None = None  # STATE/console.log, for `meter-emu console`
        self.bus: Bus | None = None
        self.control: ControlServer | None = None

    # -- set-up --------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        st = self.state
        st.check_usable()
        try:
            st.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StateCorrupt(f"{st.path}: cannot make the state folder ({e.strerror or e})") from None
        st.lock()
        fresh = False
        start = None
        if st.exists():
            self.meta = st.read_meta()
            if self.meta["board"] != self.board["id"]:
                raise StateCorrupt(f"{st.path} holds a {self.meta['board']} meter, not {self.board['id']}")
            if self.firmware_given:
                self.announce(f"emulator: {st.path} holds a meter already: its flash runs what it was given "
                              "(--firmware provisions a fresh state folder only)")
            st.check_flash(self.board)
            if self.record_path:
                start = recording.start_of_state(self.meta, st.flash.read_bytes())
        else:
            self.meta = st.create(self.board, seed=self.seed, rtc_start_ns=self.rtc_start_ns)
            fresh = True
            try:
                self.install()
            except BaseException:
                # no half-made meter: the next run starts fresh again (not from an empty flash it would format)
                for p in (st.meta_path, st.flash):
                    p.unlink(missing_ok=True)
                raise
        self._grid_init()
        self._radio_init()
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
                try:
                    cache = mpy.Cache.default()
                    layout.stage_meter(Path(stage), self.board, self.firmware_dir, meter_id=self.meta["unique_id"],
                                       cache=cache)
                    if cache is not None:
                        cache.prune()
                except Exception as e:  # a firmware tree with a file missing, a syntax error, ...
                    raise BadInput(f"the firmware tree {self.firmware_dir} does not build into a meter: "
                                   f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
                                   ) from None
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

    def _config(self, install: str | None = None) -> dict:
        rtc = dict(self.meta["rtc"])
        rtc["world_ns"] = self.meta["world_ns"]
        holds = {}  # a press held across the reset (or the time off) goes on for what is left of it in device time
        for gpio, r in list(self.releases.items()):
            left_us = (r["due_ns"] - self.meta["world_ns"]) // 1000
            if left_us > 0:
                holds[str(gpio)] = [r["value"], left_us]
            else:
                self.inputs[gpio] = r["value"]
                del self.releases[gpio]
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
            "holds": holds,
            "adc": {str(k): v for k, v in self.adc.items()},
            "watch": watch,
            "install": install,
            "heap_extra": shim_heap_extra(self.board, getattr(self, "modem_address", None) is not None),
            "skip_main": self.boot_raw_repl,
            "cut_at": None if install or not self.armed_cut else self.armed_cut,
            "grid": self.meta.get("grid") or gridmodel.defaults(self.board),  # the install run has none yet
            "truth": self.meta.get("truth"),
            "scenario": self.meta.get("scenario"),
            "end_ns": self.end_ns,
            "gate": None if self.gate is None or install else self.gate.config(),
            "free": self.replay is not None,  # a replay runs as fast as the VM can: pacing changes no result
            "modem_net": self._modem_net(),
            "optical": self.optical.tcp_port if self.optical is not None else None,
        }

    # -- running -------------------------------------------------------------------------------------------------
    def run(self) -> None:
        self.prepare()
        self.bus = Bus(self.events)
        # Ctrl-C interrupts only once the VM runs the board's files ("booting"): before that it is the port's C start-up
        # on a board, and the CPython wrapper's own start-up here, which a SIGINT would end
        try:
            self.console_view = ConsoleLog(self.state.console_log_path)
        except OSError as e:
            self.announce(f"emulator: no console view ({self.state.console_log_path}: {e.strerror or e})")
        self.wire = Wire(self.baud, self._on_line_activity,
                         lambda: self.proc.pid if self.proc and self.vm_ready else None,
                         seed=self.seed, console_log=self.console_log, view=self.console_view)
        self.wire.on_interrupt = self._send_interrupt
        if self.gate is not None:
            self.wire.gate = lambda data: self.events.put(("gate_console", data))
            self.wire.on_output = self.gate.output
        self.wire.start()
        if "optical" in self.board["uarts"]:  # the DLMS port: a pty of its own (emulator/optical.py)
            self.optical = OpticalPort()
            self.optical.start()
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
            if self.optical is not None:
                self.optical.stop()
            self.bus.close()
            if self.console_view is not None:
                self.console_view.close()
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

    def _send_interrupt(self) -> bool:
        """The wire's Ctrl-C, to be raised by the VM at its next point (called from the wire's thread)."""
        return self.bus is not None and self.bus.send({"t": "interrupt"})

    def _on_line_activity(self, active: bool) -> None:
        self.events.put(("hold", active))

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
            if (self.wdt_deadline is not None and self.powered and now >= self.wdt_cpu_checked + WDT_CPU_CHECK_S
                    and (now >= self.wdt_wall_deadline or self._cpu_check() >= self.wdt_deadline)):
                self.announce("emulator: watchdog reset")
                self._restart("wdt")
            for qid, until in list(self.query_deadlines.items()):
                if now >= until:
                    del self.query_deadlines[qid]
                    late = self.pending_queries.pop(qid, None)
                    self.query_extras.pop(qid, None)
                    if late:
                        late(None)
            if now - last_tick > 1.0 and self.powered:
                last_tick = now
                self._query(lambda st: None)

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
                self.bus.send(self._query_msg(qid))
            if not self.ready_published:
                self.ready_published = True
                assert self.wire is not None and self.control is not None
                self.state.publish_endpoints({
                    "console": self.wire.path,
                    "control": self.control.address,
                    "board": self.board["id"],
                    "mcu": self.board["mcu"]["family"],
                    "pid": os.getpid(),
                    "baud": self.baud,
                    **self._radio_endpoints(),
                    **({"optical": self.optical.path} if self.optical is not None else {}),
                })
                # the pty stays the line's second word (scripts take it with awk '{print $2}')
                self.announce(f"console: {self.wire.path} board {self.board['id']} ({self.board['mcu']['family']})")
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
        elif t == "interrupted":  # the VM took the console's Ctrl-C at a point: no SIGINT behind it
            if self.wire is not None:
                self.wire.interrupt_taken(msg.get("raised") is True)
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
        elif t == "held":  # a press went in: the VM releases it at `due_ns` of device time
            self.releases[int(msg["gpio"])] = {"value": int(msg["value"]), "due_ns": int(msg["due_ns"])}
        elif t == "released":
            self.inputs[int(msg["gpio"])] = int(msg["value"])
            self.releases.pop(int(msg["gpio"]), None)
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
            answered = msg.get("id")
            if not isinstance(answered, int):
                return
            self.query_deadlines.pop(answered, None)
            self.query_extras.pop(answered, None)
            cb = self.pending_queries.pop(answered, None)
            if cb:
                cb(msg)


def load_endpoints(state: StateDir) -> dict:
    """The running emulator's endpoints; NotRunning (exit 7) naming why there is none: no such folder, a folder
    that is not an emulator's, an emulator that is not running (or left unreadable endpoints)."""
    from .errors import NotRunning

    if not state.path.is_dir():
        raise NotRunning(f"no emulator is running on {state.path}: no such folder (a state folder is made by "
                         f"`meter-emu run --board BOARD --state {state.path}`)")
    if not state.exists():
        raise NotRunning(f"no emulator is running on {state.path}: not a meter-emu state folder (no meta.json)")
    ep = state.read_endpoints()
    if ep is None:
        try:
            board = str(state.read_meta().get("board") or "BOARD")
        except Exception:  # a damaged meta.json: `meter-emu run` names that problem itself
            board = "BOARD"
        raise NotRunning(f"no emulator is running on {state.path} (start one with `meter-emu run --board {board} "
                         f"--state {state.path}`)")
    if not isinstance(ep, dict) or not isinstance(ep.get("control"), str) or not isinstance(ep.get("console"), str):
        raise NotRunning(f"no emulator is running on {state.path}: {state.endpoints_path.name} is unreadable")
    return ep

