# The meter's calibration: constants that turn front-end readings into volts, amperes and watts. They start as the
# board file's typical values and are replaced by the meter's own, computed from readings at known reference
# conditions (a factory's reference source and standard meter), in meter/calibration.json — outside the app slots,
# so an update keeps them. The arithmetic of each step is a pure function, tested on CPython and in the VM.
import math

from loader import store, strict

PATH = "meter/calibration.json"
KIND = "calibration"
VERSION = 1
ADC = "adc"
BL0942 = "bl0942"
STEP_GAIN = "gain"  # at PF 1: voltage, current and power gains
STEP_PHASE = "phase"  # at a low PF (0.5 inductive): the current's phase shift (sampled front ends only)
STEP_OFFSET = "offset"  # with no load: power offset and current noise floor
STEPS = (STEP_GAIN, STEP_PHASE, STEP_OFFSET)
# what each front end keeps; the board file supplies the first keys, the rest start neutral
KEYS = {
    ADC: ("v_gain", "i_gain", "phase_deg", "p_gain", "p_offset_w", "i_noise"),
    BL0942: ("v_scale", "i_scale", "p_scale", "cf_per_kwh", "p_offset_w"),
}
NEUTRAL = {"p_gain": 1.0, "p_offset_w": 0.0, "i_noise": 0.0}
# constants a reading divides or multiplies by: zero or negative is a damaged record (ZeroDivisionError, free power)
POSITIVE = ("v_gain", "i_gain", "p_gain", "v_scale", "i_scale", "p_scale", "cf_per_kwh")
# The BL0942 emits one CF pulse per 1638.4 × 256 WATT-register-count-seconds (datasheet), so pulses per kWh follow
# from the power scale: cf_per_kwh = p_scale × 3.6e6 / 419430.4. (The "3304.61 pulses/kWh" quoted with the typical
# scaling does not fit its own 596 counts/W by this relation.)
CF_COUNT_SECONDS = 1638.4 * 256
# ESP32 ADC full scale by attenuation (ESP32 datasheet): the pin volts at the top code
ESP32_FULL_SCALE = {0: 0.95, 2.5: 1.25, 6: 1.75, 11: 3.1}


class CalibrationError(ValueError):
    """A calibration request that cannot be right: `code` names the problem (documented in docs/metering.md)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def frontend(board):
    return board["frontend"]["type"]


def defaults(board):
    kind = frontend(board)
    out = {}
    for k in KEYS[kind]:
        out[k] = float(board["calibration"].get(k, NEUTRAL.get(k, 0.0)))
    return out


def load(board):
    """(constants, source): the stored calibration when it is for this front end, else the board's defaults."""
    base = defaults(board)
    try:
        _, rec = store.read_record(PATH, KIND, VERSION)
    except ValueError:
        return base, "board (stored calibration unreadable)"
    if not isinstance(rec, dict) or rec.get("frontend") != frontend(board):
        return base, "board"
    consts = rec.get("constants")
    if not isinstance(consts, dict):
        return base, "board (stored calibration unreadable)"
    for k in base:
        v = consts.get(k)
        if v is None:
            continue
        if not strict.is_number(v) or (k in POSITIVE and not v > 0):
            return defaults(board), "board (stored calibration holds a bad %s)" % k
        base[k] = float(v)
    return base, "calibrated"


def save(board, consts, steps, at):
    store.write_record(PATH, KIND, VERSION, {"frontend": frontend(board), "constants": consts, "steps": steps,
                                             "at": at})


def volts_per_code(board):
    """Pin volts per read_u16() >> (16 - bits) code of the board's ADC."""
    adc = board["adc"]
    top = (1 << adc["bits"]) - 1
    if board["mcu"]["family"] == "esp32":
        return ESP32_FULL_SCALE.get(adc.get("attenuation_db"), 3.1) / top
    return adc["vref"] / top


class AdcScale:
    """The DSP's view of an ADC calibration (dsp.Dsp.measure reads these attributes)."""

    def __init__(self, board, consts):
        per = volts_per_code(board)
        self.kv = consts["v_gain"] * per
        self.ki = consts["i_gain"] * per
        self.phase_deg = consts["phase_deg"]
        self.p_gain = consts["p_gain"]
        self.p_offset_w = consts["p_offset_w"]
        self.i_noise = consts["i_noise"]


def check_reference(board, step, v, i, pf):
    """Refuse reference conditions a step cannot use (CalibrationError)."""
    m = board["metering"]
    if not strict.is_number(v, 0.5 * m["nominal_voltage"], 1.3 * m["nominal_voltage"]):
        raise CalibrationError("reference-voltage")
    if not strict.is_number(i, 0, m["imax_amps"]):
        raise CalibrationError("reference-current")
    if not strict.is_number(pf, -1.0, 1.0):
        raise CalibrationError("reference-pf")
    if step == STEP_GAIN and (pf < 0.99 or i < 0.1 * m["ib_amps"]):
        raise CalibrationError("gain-needs-pf1-and-current")
    if step == STEP_PHASE:
        if frontend(board) != ADC:
            raise CalibrationError("no-phase-adjustment")  # the BL0942 has no phase register
        if not 0.2 <= abs(pf) <= 0.9 or i < 0.1 * m["ib_amps"]:
            raise CalibrationError("phase-needs-low-pf-and-current")
    if step == STEP_OFFSET and i != 0:
        raise CalibrationError("offset-needs-no-load")
    if step not in STEPS:
        raise CalibrationError("unknown-step")


def apply(board, consts, step, avg, v, i, pf):
    """New constants from `avg` (mean voltage, current, p, q measured with `consts`) at reference v, i, pf (signed:
    positive for an inductive load). Raises CalibrationError when the readings cannot be from that reference."""
    out = dict(consts)
    mv, mi, mp, mq = avg
    kind = frontend(board)
    if step == STEP_OFFSET:
        out["p_offset_w"] = consts["p_offset_w"] + mp
        if kind == ADC:
            out["i_noise"] = math.sqrt(consts["i_noise"] ** 2 + mi * mi)
        return out
    if mv <= 0 or mi <= 0 or mp == 0:
        raise CalibrationError("no-signal")
    rv = v / mv
    ri = i / mi
    p_ref = v * i * abs(pf)
    if not 0.5 < rv < 2 or not 0.5 < ri < 2:
        raise CalibrationError("reading-far-from-reference")
    if step == STEP_GAIN:
        if kind == ADC:
            out["v_gain"] = consts["v_gain"] * rv
            out["i_gain"] = consts["i_gain"] * ri
            p_new = (mp + consts["p_offset_w"]) * rv * ri
            out["p_gain"] = consts["p_gain"] * (p_ref + consts["p_offset_w"]) / p_new
        else:
            rp = (mp + consts["p_offset_w"]) / (p_ref + consts["p_offset_w"])
            out["v_scale"] = consts["v_scale"] / rv
            out["i_scale"] = consts["i_scale"] / ri
            out["p_scale"] = consts["p_scale"] * rp
            out["cf_per_kwh"] = out["p_scale"] * 3.6e6 / CF_COUNT_SECONDS  # CF pulses integrate WATT
        return out
    # phase: the measured angle of the current behind the voltage against the reference's
    measured = math.atan2(mq, mp)
    wanted = math.acos(abs(pf)) * (1 if pf > 0 else -1)
    out["phase_deg"] = consts["phase_deg"] + math.degrees(measured - wanted)
    if not -20 <= out["phase_deg"] <= 20:
        raise CalibrationError("phase-out-of-range")
    return out
