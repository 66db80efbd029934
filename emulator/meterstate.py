"""What the emulated board's three jobs share (emulator/meter.py builds it in Meter.__init__): the VM process and
its links, the hardware the host plays, and the run's own settings. Declared here so that each job's module
(supervisor.py, world.py, verbs.py) is type-checked against it."""

from __future__ import annotations

import queue
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bus import Bus
    from .consolelog import ConsoleLog
    from .gate import InputGate
    from .optical import OpticalPort
    from .recording import Recording
    from .statedir import StateDir
    from .wire import Wire


class MeterState:
    # the run
    board: dict
    state: StateDir
    meta: dict
    speed: float | str
    announce: Callable[[str], None]
    events: queue.Queue
    stopping: bool
    gate: InputGate | None
    replay: Recording | None
    start_scenario: dict | None
    # the VM and its links
    micropython: str
    proc: subprocess.Popen | None
    bus: Bus | None
    wire: Wire | None
    optical: OpticalPort | None  # the DLMS port's pty, on a board with uarts.optical
    console_view: ConsoleLog | None
    vm_ready: bool
    expected_exit: bool
    boots: int
    boot_raw_repl: bool
    raw_soft_reset: bool
    ctrl_c_after_ms: float | None
    pending_queries: dict[int, Callable[[dict | None], None]]
    query_extras: dict[int, dict]
    query_deadlines: dict[int, float]
    query_seq: int
    last_halt: dict
    shim_heap: dict
    formatted: int
    fast_run: dict | None
    held: bool
    # power, reset line, watchdog
    powered: bool
    reset_cause: str
    restore_at: float | None
    restore_delay: float | None
    off_since: float
    off_for: float | None
    pending_cut: dict | None
    armed_cut: dict | None
    wdt_deadline: float | None
    wdt_wall_deadline: float
    wdt_cpu_checked: float
    # the hardware around the MCU
    inputs: dict[int, int]
    outputs: dict[int, int]
    adc: dict[int, float]
    releases: dict[int, dict]
    relay_coils: dict[int, bool]
    relay_closed: bool
    relay_operations: int
    truth_saved: float
