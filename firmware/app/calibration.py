# The meter's calibration: constants that turn front-end readings into volts, amperes and watts. They start as the
# board file's typical values and are replaced by the meter's own, computed from readings at known reference
# conditions (a factory's reference source and standard meter), in meter/calibration.json — outside the app slots,
# so an update keeps them. The steps themselves (check a reference, compute new constants, save them) are in
# app/calibrate.py, imported for a calibration only.

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
