"""The grid and load model through a running emulator: `ctl set` reaches the VM, `ctl status` reports the true
values and the true energy integral, scenario steps apply on the device clock, settings and totals survive a
power cut (which is precise: the VM halts at its next bus pump and reports its totals)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from host_tests.emu import BIN

pytestmark = pytest.mark.e2e


def test_set_status_truth_scenario_and_power_cut(start_emulator, tmp_path):
    emu = start_emulator(board="rpi_pico_bl0942", speed="max")
    emu.wait_boots(1)
    rep = emu.set(grid__voltage=253, load__current=5, load__pf=0.5, load__type="inductive")
    assert rep["set"] == {"grid.voltage": 253.0, "load.current": 5.0, "load.pf": 0.5, "load.type": "inductive"}
    s0 = emu.status()
    assert s0["grid"]["load.type"] == "inductive" and s0["true"]["p_w"] == pytest.approx(632.5)
    assert s0["true"]["q_var"] == pytest.approx(253 * 5 * 0.75 ** 0.5) and s0["true"]["frequency_hz"] == 50.0
    assert s0["device"]["heap_free"] > 0 and s0["shim_heap"]["spare"] >= 0
    time.sleep(1.0)
    s1 = emu.status()
    dt_us = s1["truth"]["us"] - s0["truth"]["us"]
    assert dt_us > 0
    # the totals rise at exactly P (and Q, S) while the settings stay put
    assert s1["truth"]["import_wh"] - s0["truth"]["import_wh"] == pytest.approx(632.5 * dt_us / 3.6e9, rel=1e-6)
    assert s1["truth"]["q_import_varh"] - s0["truth"]["q_import_varh"] == pytest.approx(
        s0["true"]["q_var"] * dt_us / 3.6e9, rel=1e-6)
    assert s1["truth"]["s_vah"] - s0["truth"]["s_vah"] == pytest.approx(1265 * dt_us / 3.6e9, rel=1e-6)

    # a scenario: the step at 2 s of device time applies then, not before
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"steps": [{"at": 2.0, "set": {"load.current": 1, "load.type": "resistive",
                                                             "load.export": 1}}], "repeat": False}))
    emu.ctl("set", "speed=1")
    emu.scenario(plan)
    st = emu.status()
    assert st["scenario"]["next"] == 0 and st["true"]["current"] == 5.0
    st = emu.wait_status(lambda s: s["scenario"]["done"], timeout=10, what="scenario step")
    assert st["true"]["p_w"] == pytest.approx(-253.0) and st["scenario"]["elapsed_s"] >= 2.0

    # a precise power cut: the VM reports its totals when it halts, no energy flows while off, settings stay
    before = emu.status()["truth"]
    cut = emu.ctl("power-cut", "--off", "manual")
    assert cut["precise"] is True
    off = emu.status()
    assert off["power"] == "off" and off["true"]["voltage"] == 0 and off["truth"]["us"] is None
    assert off["truth"]["export_wh"] >= before["export_wh"]
    time.sleep(0.5)
    assert emu.status()["truth"] == off["truth"]
    emu.ctl("power-on")
    on = emu.wait_boots(2)
    assert on["grid"]["load.export"] == 1 and on["grid"]["grid.voltage"] == 253.0
    assert on["truth"]["export_wh"] >= off["truth"]["export_wh"] and on["scenario"]["done"]
    meta = json.loads((emu.state / "meta.json").read_text())
    assert meta["grid"]["load.current"] == 1.0 and meta["truth"]["import_wh"] == pytest.approx(
        on["truth"]["import_wh"], rel=1e-3)


def test_bad_settings_and_scenario_files_are_refused_with_the_reason(start_emulator, tmp_path):
    emu = start_emulator(board="esp32_devkitc")
    bad = emu.ctl("set", "load.type=motor", check=False)
    assert bad["ok"] is False and "load.type" in bad["error"] and "rectifier" in bad["error"]
    plan = tmp_path / "bad.json"
    plan.write_text(json.dumps({"steps": [{"at": 0, "set": {"load.amps": 3}}]}))
    p = subprocess.run([str(BIN / "meter-emu"), "ctl", "--state", str(emu.state), "scenario", str(plan)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "steps[0].set.load.amps: unknown key" in p.stderr
    p = subprocess.run([str(BIN / "meter-emu"), "run", "--board", "rpi_pico", "--state", str(tmp_path / "x"),
                        "--scenario", str(plan)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "load.amps" in p.stderr
