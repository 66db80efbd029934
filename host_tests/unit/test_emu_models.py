"""The emulator's grid, load, ADC and BL0942 models (emulator/device/_emu_grid.py, _emu_adc.py, _emu_bl0942.py and
machine), run inside the real MicroPython VM with stand-ins for the bus and the clock (host_tests/vm/emu_stubs): the
test drives device time itself and reads what the firmware would read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emulator.grid import defaults
from meterkit.boards import load_board

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "host_tests" / "vm" / "emu_stubs"
DEVICE = ROOT / "emulator" / "device"
UID = "a1b2c3d4e5f6"


def vm(tmp_path: Path, board_id: str, body: str, uid: str = UID, grid: dict | None = None) -> dict:
    """Run `body` in the VM after importing the models for `board_id`; it sets `out` (a dict), returned here."""
    board = load_board(board_id)
    cfg = {"board": board, "unique_id": uid, "grid": dict(defaults(board), **(grid or {}))}  # the host sends all
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    script = tmp_path / "t.py"
    script.write_text("import json\nimport _emu_bus as bus\nimport _emu_clock as clock\nimport _emu_grid as grid\n"
                      "import machine\nout = {}\n" + textwrap.dedent(body) + "\nprint('OUT ' + json.dumps(out))\n")
    exe = Path(sys.executable).with_name("micropython")
    env = dict(os.environ, MEMU_CONFIG=str(tmp_path / "cfg.json"),
               MICROPYPATH=os.pathsep.join([str(STUBS), str(DEVICE), ".frozen"]))
    p = subprocess.run([str(exe), "-X", "heapsize=4M", str(script)], capture_output=True, text=True, env=env,
                       timeout=60)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("OUT ")), None)
    assert p.returncode == 0 and line, p.stdout + p.stderr
    return json.loads(line[4:])


# -- the truth integral --------------------------------------------------------------------------------------------
NUMERIC = """
def numeric(cycles=5, per=2000):
    # mean of v*i, v(t - T/4)*i (Q of the fundamental), RMS of v and i over whole cycles, sampled finely
    T = 1e6 / grid.S["grid.frequency"]
    t0 = clock.now_us()
    n = cycles * per
    sp = sq = sv = si = 0.0
    for k in range(n):
        t = t0 + k * T / per
        v = grid.v_at(t)
        i = grid.i_at(t)
        sp += v * i
        sq += grid.v_at(t - T / 4) * i
        sv += v * v
        si += i * i
    return sp / n, sq / n, (sv / n) ** 0.5, (si / n) ** 0.5
"""

LOADS = [
    ("resistive", {"load.type": "resistive", "load.current": 5.0}),
    ("inductive", {"load.type": "inductive", "load.current": 12.0, "load.pf": 0.5}),
    ("capacitive", {"load.type": "capacitive", "load.current": 3.0, "load.pf": 0.8}),
    ("rectifier", {"load.type": "rectifier", "load.current": 4.0, "grid.harmonics": [[3, 0.05, 30.0], [5, 0.03, 0]]}),
    ("export", {"load.type": "inductive", "load.current": 8.0, "load.pf": 0.9, "load.export": 1}),
    ("harmonic_voltage", {"load.type": "resistive", "load.current": 6.0, "grid.harmonics": [[3, 0.1, 0]],
                          "grid.voltage": 240.0}),
]


@pytest.mark.parametrize("name,settings", LOADS, ids=[n for n, _ in LOADS])
def test_truth_integral_matches_numeric_integration_of_v_times_i(tmp_path, name, settings):
    out = vm(tmp_path, "esp32_devkitc", NUMERIC + f"""
clock.set_us(1234567)
bus.deliver({{"t": "grid", "set": {json.dumps(settings)}}})
p, q, vr, ir = numeric()
t0 = grid.truth(clock.now_us())
clock.skip(3600 * 1000000)
st = grid.status()
out.update(p=p, q=q, vr=vr, ir=ir, t0=t0, t1=st["truth"], true=st["true"])
""")
    true, t0, t1 = out["true"], out["t0"], out["t1"]
    assert true["p_w"] == pytest.approx(out["p"], rel=1e-3, abs=1e-3)
    assert true["voltage"] == pytest.approx(out["vr"], rel=1e-4)
    assert true["current"] == pytest.approx(out["ir"], rel=1e-4)
    assert true["s_va"] == pytest.approx(out["vr"] * out["ir"], rel=1e-3)
    if name != "rectifier":  # a quarter-period shift gives Q for a fundamental-only current
        assert true["q_var"] == pytest.approx(out["q"], rel=1e-3, abs=1e-2)
    # one hour at constant settings: the totals grew by exactly P, Q, S watt-hours
    d = {k: t1[k] - t0[k] for k in ("import_wh", "export_wh", "q_import_varh", "q_export_varh", "s_vah", "seconds")}
    assert d["seconds"] == pytest.approx(3600)
    assert d["import_wh"] == pytest.approx(max(true["p_w"], 0), rel=1e-9, abs=1e-9)
    assert d["export_wh"] == pytest.approx(max(-true["p_w"], 0), rel=1e-9, abs=1e-9)
    assert d["q_import_varh"] == pytest.approx(max(true["q_var"], 0), rel=1e-9, abs=1e-9)
    assert d["q_export_varh"] == pytest.approx(max(-true["q_var"], 0), rel=1e-9, abs=1e-9)
    assert d["s_vah"] == pytest.approx(true["s_va"], rel=1e-9)
    if name == "inductive":
        assert true["q_var"] > 0 and true["pf"] == pytest.approx(0.5)
    if name == "capacitive":
        assert true["q_var"] < 0 and true["pf"] == pytest.approx(0.8)
    if name == "export":
        assert true["p_w"] < 0 and d["export_wh"] > 0 and d["import_wh"] == 0
    if name == "rectifier":
        assert 0.5 < true["pf"] < 0.8  # harmonics carry no power: PF is well below 1


def test_truth_is_exact_over_sags_load_steps_and_the_relay(tmp_path):
    out = vm(tmp_path, "rpi_pico", """
bus.deliver({"t": "grid", "set": {"load.current": 10.0, "grid.voltage": 200.0}})
t0 = grid.truth(0)["import_wh"]
bus.deliver({"t": "grid", "set": {"grid.sag": [0.5, 2.0]}})   # 2 s at 100 V
clock.skip(10 * 1000000)                                        # 8 s at 200 V
mid = grid.status()
bus.deliver({"t": "grid", "set": {"load.steps": [[4.0, 1.0], [0.0, 3.0]]}})  # 1 s of 4 A in every 4 s
clock.skip(40 * 1000000)
steps = grid.status()
bus.deliver({"t": "grid", "set": {"load.steps": None, "relay.closed": False}})
clock.skip(5 * 1000000)
opened = grid.status()
out.update(t0=t0, mid=mid["truth"]["import_wh"], steps=steps["truth"]["import_wh"], open=opened)
""")
    assert out["mid"] - out["t0"] == pytest.approx((100 * 10 * 2 + 200 * 10 * 8) / 3600, rel=1e-9)
    assert out["steps"] - out["mid"] == pytest.approx(200 * 4 * 10 / 3600, rel=1e-9)
    assert out["open"]["truth"]["import_wh"] == pytest.approx(out["steps"], rel=1e-12)
    assert out["open"]["true"]["current"] == 0 and out["open"]["true"]["voltage"] == pytest.approx(200)


def test_scenario_steps_apply_at_their_device_time_and_repeat(tmp_path):
    out = vm(tmp_path, "rpi_pico", """
sc = {"steps": [[0, {"load.current": 1.0, "load.type": "resistive"}], [10000000, {"load.current": 3.0, "load.type": "inductive",
      "load.pf": 0.5}]], "repeat": True, "period_us": 20000000, "from": None, "next": 0, "cycle": 0}
bus.deliver({"t": "scenario", "scenario": sc})
clock.skip(5000000)
a = grid.status()
clock.skip(10000000)
b = grid.status()
clock.skip(10000000)
c = grid.status()
grid.idle()
out.update(a=a, b=b, c=c, sent=[m for m in bus.sent if m["t"] == "grid_state"][-1])
""")
    assert out["a"]["true"]["current"] == 1.0 and out["a"]["scenario"]["next"] == 1
    assert out["b"]["true"]["current"] == 3.0 and out["b"]["true"]["pf"] == pytest.approx(0.5)
    assert out["c"]["true"]["current"] == 1.0 and out["c"]["scenario"]["cycle"] == 1
    # 10 s at 230 W, 10 s at 345 W, 5 s at 230 W
    assert out["c"]["truth"]["import_wh"] == pytest.approx((230 * 15 + 345 * 10) / 3600, rel=1e-9)
    assert out["sent"]["settings"]["load.current"] == 1.0 and out["sent"]["scenario"]["cycle"] == 1


def test_frequency_drift_wanders_and_the_waveform_stays_continuous(tmp_path):
    out = vm(tmp_path, "esp32_devkitc", """
bus.deliver({"t": "grid", "set": {"grid.drift_hz": 0.2, "grid.drift_period_s": 100.0}})
f = [grid.frequency(k * 5000000) for k in range(21)]
t = 1234567
before = grid.v_at(t)
clock.set_us(t)
bus.deliver({"t": "grid", "set": {"grid.frequency": 60.0}})
out.update(f=f, before=before, after=grid.v_at(t))
""")
    assert max(out["f"]) == pytest.approx(50.2, abs=1e-3) and min(out["f"]) == pytest.approx(49.8, abs=1e-3)
    assert out["after"] == pytest.approx(out["before"], abs=1e-6)


# -- the ADC front end -------------------------------------------------------------------------------------------
ADC_BODY = """
import _emu_adc as A
ch = machine.Pin({gpio})
adc = machine.ADC(ch, atten=3) if hasattr(machine.ADC, "ATTN_11DB") else machine.ADC(ch)
{setup}
t0 = clock.now_us()
codes = [adc.read_u16() for _ in range({n})]
out.update(codes=codes, dt=clock.now_us() - t0, info=A.info())
"""


def adc_codes(tmp_path, board_id, channel, setup="", n=4000, uid=UID):
    board = load_board(board_id)
    gpio = board["adc"]["channels"][channel]["gpio"]
    return vm(tmp_path, board_id, ADC_BODY.format(gpio=gpio, setup=setup, n=n), uid=uid), board


@pytest.mark.parametrize("board_id", ["esp32_devkitc", "rpi_pico"])
def test_adc_bias_scaling_quantisation_and_read_time(tmp_path, board_id):
    board = load_board(board_id)
    n = 100000 // board["adc"]["read_us"]  # reads over whole mains cycles (5 at 50 Hz)
    out, _ = adc_codes(tmp_path, board_id, "voltage", n=n)
    adc = board["adc"]
    fs = 3.1 if board["mcu"]["family"] == "esp32" else adc["vref"]
    top = 4095
    codes = [c >> 4 for c in out["codes"]]
    assert all(c & 0xF == c >> 12 for c in out["codes"])  # 12 bits scaled to 16 by replicating the top bits
    assert out["dt"] == n * adc["read_us"]  # each read takes the port's conversion time
    mean = sum(codes) / len(codes)
    info = out["info"]
    ideal_bias = adc["bias_volts"] / fs * top
    assert abs(mean - ideal_bias) <= 0.015 * ideal_bias + 15 + 1
    assert mean == pytest.approx(ideal_bias * info["gain"] + info["offset_codes"], abs=2)
    rms = (sum((c - mean) ** 2 for c in codes) / len(codes)) ** 0.5
    ideal = 230.0 / board["calibration"]["v_gain"] / fs * top
    assert rms == pytest.approx(ideal * (1 + info["e_v"]) * info["gain"], rel=0.01)
    assert abs(rms / ideal - 1) <= 0.036  # +-2 % divider, +-1.5 % ADC gain
    # a different meter has different tolerances; the same meter the same
    other, _ = adc_codes(tmp_path, board_id, "voltage", uid="0011223344ff", n=10)
    again, _ = adc_codes(tmp_path, board_id, "voltage", n=10)
    assert other["info"] != info and again["info"] == info


def test_adc_current_channel_leads_by_the_ct_phase_and_follows_the_load(tmp_path):
    out = vm(tmp_path, "rpi_pico", """
import _emu_adc as A
import math
bus.deliver({"t": "grid", "set": {"load.current": 20.0}})
av = machine.ADC(26)
ai = machine.ADC(27)
w = 2 * math.pi * 50e-6
sums = [0.0] * 4
vs = []
ii = []
for k in range(5000):  # pairs V then I over 10 cycles, as the firmware samples them
    tv = clock.now_us()
    v = av.read_u16() >> 4
    ti = clock.now_us()
    i = ai.read_u16() >> 4
    vs.append(v)
    ii.append(i)
    sums[0] += v * math.sin(w * tv)
    sums[1] += v * math.cos(w * tv)
    sums[2] += i * math.sin(w * ti)
    sums[3] += i * math.cos(w * ti)
out.update(phase_v=math.degrees(math.atan2(sums[1], sums[0])), phase_i=math.degrees(math.atan2(sums[3], sums[2])),
           i=ii, skew=ti - tv, info=A.info())
""")
    board = load_board("rpi_pico")
    assert out["skew"] == board["adc"]["read_us"]  # the V→I sample skew the firmware's phase calibration removes
    lead = out["phase_i"] - out["phase_v"]
    assert lead == pytest.approx(out["info"]["lead_deg"], abs=0.02) and 0.1 <= lead <= 0.6
    codes = out["i"]
    mean = sum(codes) / len(codes)
    rms = (sum((c - mean) ** 2 for c in codes) / len(codes)) ** 0.5
    ideal = 20.0 / board["calibration"]["i_gain"] / 3.3 * 4095
    assert rms == pytest.approx(ideal * (1 + out["info"]["e_i"]) * out["info"]["gain"], rel=0.01)


def test_esp32_codes_compress_at_both_ends(tmp_path):
    out, _ = adc_codes(tmp_path, "esp32_devkitc", "voltage", setup="""
bus.deliver({"t": "grid", "set": {"grid.voltage": 580.0}})
lin = [A._nonlinear(x * A.K) / A.K for x in (0.05, 0.1, 0.15, 1.0, 2.0, 2.45, 2.8, 3.1)]
out["lin"] = lin
""")
    lin = out["lin"]
    assert lin[0] < 0.05 * 0.5 and lin[1] < 0.1 and lin[2] == pytest.approx(0.15)  # low end reads low
    assert lin[3] == 1.0 and lin[4] == 2.0 and lin[5] == pytest.approx(2.45)  # linear in between
    assert lin[6] < 2.8 and lin[7] < 3.0  # compressive near full scale
    codes = [c >> 4 for c in out["codes"]]
    assert max(codes) < 3900 and min(codes) == 0  # a 580 V swing: the top compresses, the bottom clips


def test_rp2040_dnl_spikes(tmp_path):
    out, _ = adc_codes(tmp_path, "rpi_pico", "current", setup="""
bus.deliver({"t": "grid", "set": {"load.current": 120.0}})
""", n=20000)
    hist: dict[int, int] = {}
    for c in out["codes"]:
        hist[c >> 4] = hist.get(c >> 4, 0) + 1
    for spike in (512, 1536, 2560, 3584):
        assert hist.get(spike, 0) > 0
        for miss in (spike - 2, spike - 1, spike + 1, spike + 2):
            assert hist.get(miss, 0) == 0, (spike, miss)
    assert hist.get(1000, 0) + hist.get(1001, 0) + hist.get(1002, 0) > 0


def test_static_adc_setting_overrides_the_model_and_can_return_to_it(tmp_path):
    out = vm(tmp_path, "rpi_pico", """
adc = machine.ADC(26)
bus.deliver({"t": "adc", "gpio": 26, "volts": 1.0})
a = adc.read_u16()
bus.deliver({"t": "adc", "gpio": 26, "volts": None})
b = [adc.read_u16() for _ in range(5000)]
out.update(a=a, b=b)
""")
    assert out["a"] >> 4 == round(1.0 / 3.3 * 4095)
    assert max(out["b"]) - min(out["b"]) > 10000  # the 230 V wave again


# -- the BL0942 ----------------------------------------------------------------------------------------------------
BL_HELPERS = """
import _emu_bl0942 as B
u = machine.UART(1, baudrate=4800, tx=4, rx=5, timeout=0)

def frame(req=b"\\x58\\xaa", wait_us=60000):
    if u.any():
        u.read()
    u.write(req)
    early = u.any()
    clock.skip(wait_us)
    data = u.read()
    return early, list(data) if data else None
"""


def parse_packet(p: list[int], address: int = 0) -> dict:
    assert len(p) == 23 and p[0] == 0x55
    assert (~((0x58 | address) + sum(p[:22])) & 0xFF) == p[22]

    def u24(k: int) -> int:
        return p[k] | p[k + 1] << 8 | p[k + 2] << 16

    watt = u24(10)
    watt -= (watt & 0x800000) << 1
    return {"i_rms": u24(1), "v_rms": u24(4), "i_fast": u24(7), "watt": watt, "cf": u24(13), "freq": u24(16),
            "status": u24(19)}


def test_bl0942_full_packet_layout_checksum_and_line_time(tmp_path):
    out = vm(tmp_path, "rpi_pico_bl0942", BL_HELPERS + """
bus.deliver({"t": "grid", "set": {"load.current": 10.0, "load.type": "inductive", "load.pf": 0.8,
                                  "grid.voltage": 240.0}})
t = clock.now_us()
u.write(b"\\x58\\xaa")
n = []
for k in range(30):
    n.append(u.any())
    clock.skip(2083)
p = u.read()
out.update(n=n, p=list(p), info=B.info())
bus.deliver({"t": "grid", "set": {"load.export": 1}})
out["export"] = frame()[1]
""")
    # the first answer byte arrives after the 2 request bytes and itself: 3 byte times at 4800 baud
    assert out["n"][:2] == [0, 0] and out["n"][3] >= 1 and out["n"][26] == 23
    r = parse_packet(out["p"])
    info = out["info"]
    assert r["v_rms"] / 15873.36 == pytest.approx(240.0, rel=0.015)  # reference circuit, IC gain +-1 %
    assert r["i_rms"] / 251213.46 == pytest.approx(10.0, rel=0.015)
    assert r["watt"] / info["k_p"] == pytest.approx(1920.0, rel=0.025)
    assert r["watt"] / 596 == pytest.approx(1920 * 623.4 / 596, rel=0.025)  # the typical 596 reads 4.6 % high
    assert r["freq"] == 20000 and r["status"] & 1 == 0
    e = parse_packet(out["export"])
    assert e["watt"] < 0 and e["status"] & 1 == 1  # CF_REVP


def test_bl0942_wrong_address_wrong_baud_and_bit_errors(tmp_path):
    out = vm(tmp_path, "rpi_pico_bl0942", BL_HELPERS + """
out["wrong_addr"] = frame(b"\\x59\\xaa")[1]
u.init(baudrate=9600)
out["wrong_baud"] = frame()[1]
u.init(baudrate=4800)
out["good"] = frame()[1]
bus.deliver({"t": "grid", "set": {"bl0942.error_rate": 1.0}})
out["noisy"] = frame()[1]
""")
    assert out["wrong_addr"] is None and out["wrong_baud"] is None
    parse_packet(out["good"])
    assert len(out["noisy"]) == 23 and out["noisy"] != out["good"]
    with pytest.raises(AssertionError):
        parse_packet(out["noisy"])


def test_bl0942_register_read_write_protect_and_creep(tmp_path):
    out = vm(tmp_path, "rpi_pico_bl0942", BL_HELPERS + """
def wr(reg, val):
    b = [0xA8, reg, val & 0xFF, (val >> 8) & 0xFF, val >> 16]
    b.append(~sum(b) & 0xFF)
    u.write(bytes(b))
    clock.skip(20000)
out["creep0"] = frame(b"\\x58\\x14", 20000)[1]
wr(0x14, 0xFF)                       # write-protected: ignored
out["creep1"] = frame(b"\\x58\\x14", 20000)[1]
wr(0x1D, 0x55)                       # unlock
wr(0x14, 0xFF)
out["creep2"] = frame(b"\\x58\\x14", 20000)[1]
bus.deliver({"t": "grid", "set": {"load.current": 0.01}})   # 2.3 W = 1435 counts: above the default threshold (134), below 0xFF * 3125 / 256 = 3113
out["status_creep"] = frame(b"\\x58\\x09", 20000)[1]
out["watt_creep"] = frame(b"\\x58\\x06", 20000)[1]
""")
    def val(a, reg=0x14):
        assert (~(0x58 + reg + sum(a[:3])) & 0xFF) == a[3]
        return a[0] | a[1] << 8 | a[2] << 16

    assert val(out["creep0"]) == 0x0B and val(out["creep1"]) == 0x0B and val(out["creep2"]) == 0xFF
    assert val(out["watt_creep"], 0x06) == 0 and val(out["status_creep"], 0x09) & 2  # CREEP_STATE


def test_bl0942_cf_count_follows_power_and_wraps_at_24_bits(tmp_path):
    out = vm(tmp_path, "rpi_pico_bl0942", BL_HELPERS + """
out["first"] = frame()[1]
bus.deliver({"t": "grid", "set": {"load.current": 10.0}})
a = frame()[1]
clock.skip(3600 * 1000000)
b = frame()[1]
bus.deliver({"t": "grid", "set": {"load.current": 1000.0, "grid.voltage": 600.0}})
clock.skip(6 * 3600 * 1000000)
c = frame()[1]
out.update(a=a, b=b, c=c, info=B.info(), truth=grid.status()["truth"])
""")
    info = out["info"]
    assert parse_packet(out["first"])["cf"] == 0  # the counter starts at 0 at power-up
    a, b, c = (parse_packet(out[k]) for k in "abc")
    # one hour of 2300 W: pulses at the IC's own WATT (datasheet: 1638.4 * 256 WATT-seconds per pulse)
    expected = 2300 * info["k_p"] * info["g_v"] * info["g_i"] * 3600 / (1638.4 * 256)
    assert b["cf"] - a["cf"] == pytest.approx(expected, rel=0.002)
    assert info["cf_per_kwh"] == pytest.approx(5350.6, rel=1e-3)
    assert b["watt"] * 3600 / (1638.4 * 256) == pytest.approx(b["cf"] - a["cf"], rel=0.01)
    # 600 kW for 6 h: more than 2**24 pulses, the register wraps; WATT saturates at 24 bits
    assert c["cf"] == int(info["cf"]) % (1 << 24) and info["cf"] > 1 << 24
    assert c["watt"] == 0x7FFFFF


def test_uart_on_an_adc_board_has_nothing_attached(tmp_path):
    out = vm(tmp_path, "rpi_pico", """
u = machine.UART(1, baudrate=4800)
u.write(b"\\x58\\xaa")
clock.skip(100000)
out["r"] = u.read()
""")
    assert out["r"] is None


@pytest.mark.parametrize("board_id", ["esp32_devkitc", "rpi_pico"])
def test_an_adc_read_allocates_nothing(tmp_path, board_id):
    """A board's read_u16() puts nothing on the heap, and the model runs in the firmware's VM: its samples are made in
    small integers, so between two anchors of the phase (every 10 ms of device time) a read allocates no byte. (In
    floats each sample left about 0.6 KB VM of garbage in the firmware's heap.)"""
    ch = load_board(board_id)["adc"]["channels"]
    out = vm(tmp_path, board_id, f"""
import gc
bus.deliver({{"t": "grid", "set": {{"load.current": 5.0}}}})
av = machine.ADC(machine.Pin({ch["voltage"]["gpio"]}))
ai = machine.ADC(machine.Pin({ch["current"]["gpio"]}))
av.read_u16()  # the phase anchored
ai.read_u16()


def count(n):  # (locals: a new global would grow the module's dict inside the count)
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    k = 0
    while k < n:
        av.read_u16()
        ai.read_u16()
        k += 1
    b = gc.mem_alloc()
    gc.enable()
    return b - a


out["bytes"] = count(40)
""")
    assert out["bytes"] == 0


@pytest.mark.parametrize("board_id", ["esp32_devkitc", "rpi_pico"])
def test_adc_samples_in_integers_follow_the_float_model(tmp_path, board_id):
    """The integer samples against the grid model's floats (grid.v_at, grid.i_at with the CT's lead): within 0.02
    code over many phase anchors, with harmonics, a drifting frequency, a rectifier's current, a frequency step and a
    load step; and the code from an ideal value (noise aside) as the float formula gives it, but at a tie."""
    out = vm(tmp_path, board_id, """
import _emu_adc as A
bus.deliver({"t": "grid", "set": {"grid.drift_hz": 0.5, "grid.drift_period_s": 60.0, "load.current": 30.0,
                                  "grid.harmonics": [[3, 0.05, 30.0], [5, 0.03, 0.0]], "load.type": "rectifier"}})
worst = [0.0, 0.0]
k = 0
while k < 6000:
    if k == 2000:
        bus.deliver({"t": "grid", "set": {"grid.frequency": 60.0}})
    if k == 4000:
        bus.deliver({"t": "grid", "set": {"load.current": 3.0, "load.type": "inductive", "load.pf": 0.5}})
    t = clock.now_us()
    A.read_v()
    d = abs((A.BASE_X + A._wave(A._v_terms, A._phase(t))) / 65536 - (A.BASE + A.KV * grid.v_at(t)))
    worst[0] = max(worst[0], d)
    t = clock.now_us()
    A.read_i()
    d = abs((A.BASE_X + A._wave(A._i_terms, A._phase(t))) / 65536 - (A.BASE + A.KI * grid.i_at(t + A.LEAD_US)))
    worst[1] = max(worst[1], d)
    clock.skip(17 + (k * 7919) % 3000)
    k += 1
for j in range(len(A._noise_x)):
    A._noise_x[j] = 0
xs = []
codes = []
ends = []
x = -40.0
while x < A.TOP + 700:
    xs.append(x)
    codes.append(A._fixed_code(int(round(x * 65536))) >> A.SH)
    ends.append(A._nonlinear(x))
    x += 1.13
out.update(worst=worst, xs=xs, codes=codes, ends=ends, lo=A._LO, hi=A._HI, gain=A.GAIN, offset=A.OFFSET,
           top=A.TOP, esp32=A.ESP32)
""")
    assert out["worst"][0] < 0.02 and out["worst"][1] < 0.02, out["worst"]
    off = 0
    for x, code, end in zip(out["xs"], out["codes"], out["ends"], strict=True):
        y = end if out["esp32"] and (x < out["lo"] or x > out["hi"]) else x
        y = y * out["gain"] + out["offset"]
        n = min(max(int(y + 0.5) if y > -0.5 else 0, 0), out["top"])
        if not out["esp32"]:
            r = (n - 512) & 1023
            n = n - r if r <= 2 else n + 1024 - r if r >= 1022 else n
        assert abs(code - n) <= 1, (x, code, n)
        off += code != n
    assert off <= len(out["codes"]) // 200  # a different code only at a rounding tie
