"""Accuracy checks of a whole emulated meter, shared by the e2e tests and the class-1 report
(host_tests/bench/metering.py --only class): factory calibration at reference conditions, then test points whose
registered energy is compared with the emulator's true energy integral over the same span of device time.

Time bases: a reading's `at_ms` is the firmware's ticks_ms when it was taken; the emulator's truth carries the
device time `us` it is valid at (the same clock: ticks_ms = us // 1000 while uptime < 2**30 ms). With the load
steady, the truth at the reading's moment is truth + P_true × (t_reading − t_truth)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from host_tests.emu import Emulator, ota

# IEC 62053-21 / IS 13779 class 1 limits (STANDARDS.md), by current as a fraction of Ib
PF1_LIMITS = ((0.05, 0.1, 1.5), (0.1, 1e9, 1.0))
LOW_PF_LIMITS = ((0.1, 0.2, 1.5), (0.2, 1e9, 1.0))
# every class-1 test point: (fraction of Ib, PF: + inductive, - capacitive)
CLASS_POINTS = [(0.05, 1.0), (0.1, 1.0), (1.0, 1.0), (12.0, 1.0),
                (0.1, 0.5), (0.2, 0.5), (1.0, 0.5), (12.0, 0.5),
                (0.1, -0.8), (0.2, -0.8), (1.0, -0.8), (12.0, -0.8)]
REG_IMPORT = "1.0.1.8.0.255"
REG_EXPORT = "1.0.2.8.0.255"


def limit_pct(fraction_ib: float, pf: float) -> float | None:
    table = PF1_LIMITS if pf >= 0.99 else LOW_PF_LIMITS
    for lo, hi, pct in table:
        if lo - 1e-9 <= fraction_ib < hi:
            return pct
    return None


def meter_read(emu: Emulator) -> dict:
    p = ota("meter", "read", "--port", emu.console, "--json", timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def settings(emu: Emulator, **kv) -> None:
    emu.ctl("set", *[f"{k.replace('_', '.', 1)}={v}" for k, v in kv.items()])


def set_load(emu: Emulator, amps: float, pf: float = 1.0, kind: str | None = None, volts: float = 230.0,
             export: bool = False) -> None:
    if kind is None:
        kind = "resistive" if pf >= 0.999 else ("inductive" if pf > 0 else "capacitive")
    emu.ctl("set", f"grid.voltage={volts}", f"load.type={kind}", f"load.current={amps}", f"load.pf={abs(pf)}",
            f"load.export={1 if export else 0}")


def calibrate(emu: Emulator, step: str, volts: float, amps: float, pf: float, n: int = 5) -> dict:
    p = ota("meter", "calibrate", "--port", emu.console, "--step", step, "--voltage", volts, "--current", amps,
            "--pf", pf, "--readings", n, "--json", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def factory_calibration(emu: Emulator, board: dict) -> None:
    """What a factory does: no load (offset), 230 V 5 A PF 1 (gain), PF 0.5 inductive (phase; sampled front end),
    then the gain again."""
    un = board["metering"]["nominal_voltage"]
    ib = board["metering"]["ib_amps"]
    # device time runs fast between the tool's polls (each exchange holds it to real time for 2 s): the meter
    # averages the same readings per device second, a step takes one poll instead of three
    emu.ctl("set", "speed=max")
    set_load(emu, 0.0, volts=un)
    calibrate(emu, "offset", un, 0.0, 1.0)
    set_load(emu, ib, 1.0, volts=un)
    calibrate(emu, "gain", un, ib, 1.0)
    if board["frontend"]["type"] == "adc":
        set_load(emu, ib, 0.5, volts=un)
        calibrate(emu, "phase", un, ib, 0.5)
        set_load(emu, ib, 1.0, volts=un)
        calibrate(emu, "gain", un, ib, 1.0)


def truth_wh(status: dict, key: str, at_us: float) -> float:
    t = status["truth"]
    p = status["true"]["p_w"]
    if key == "export_wh":
        p = -p
    return t[key] + max(p, 0.0) * (at_us - t["us"]) / 3.6e9


def wait_device(emu: Emulator, seconds: float, timeout: float = 600) -> None:
    """Let `seconds` of device time pass without touching the console (so --speed max is not held back)."""
    start = emu.ctl("time")["uptime_s"]
    end = time.monotonic() + timeout
    while emu.ctl("time")["uptime_s"] - start < seconds:
        if time.monotonic() > end:
            raise TimeoutError(f"{seconds} s of device time did not pass in {timeout} s")
        time.sleep(0.3)


@dataclass
class Point:
    fraction_ib: float
    pf: float  # + inductive, - capacitive
    amps: float
    registered_wh: float
    true_wh: float
    device_s: float

    @property
    def error_pct(self) -> float:
        return (self.registered_wh - self.true_wh) / self.true_wh * 100.0

    def as_dict(self) -> dict:
        return {"fraction_ib": self.fraction_ib, "pf": self.pf, "amps": self.amps, "registered_wh": self.registered_wh,
                "true_wh": self.true_wh, "device_s": self.device_s, "error_pct": self.error_pct,
                "limit_pct": limit_pct(self.fraction_ib, abs(self.pf))}


def energy_point(emu: Emulator, board: dict, fraction_ib: float, pf: float, min_wh: float,
                 export: bool = False, min_s: float = 60.0) -> Point:
    """Registered against true energy over a span long enough for `min_wh` (and at least `min_s`)."""
    ib = board["metering"]["ib_amps"]
    un = board["metering"]["nominal_voltage"]
    amps = fraction_ib * ib
    set_load(emu, amps, pf, volts=un, export=export)
    reg, key = (REG_EXPORT, "export_wh") if export else (REG_IMPORT, "import_wh")
    wait_device(emu, 3)  # a reading of the new load has been taken and accounted
    r0 = meter_read(emu)
    s0 = emu.ctl("status")
    watts = un * amps * abs(pf)
    span = max(min_s, min_wh * 3600.0 / watts)
    wait_device(emu, span)
    r1 = meter_read(emu)
    s1 = emu.ctl("status")
    registered = r1["obis"][reg] - r0["obis"][reg]
    true = truth_wh(s1, key, r1["at_ms"] * 1000.0) - truth_wh(s0, key, r0["at_ms"] * 1000.0)
    return Point(fraction_ib, pf, amps, registered, true, (r1["at_ms"] - r0["at_ms"]) / 1000.0)
