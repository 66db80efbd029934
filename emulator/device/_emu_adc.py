# The analogue front end of an ADC board, as machine.ADC.read_u16() sees it: the grid model's v(t) and i(t) through
# the voltage divider and the current transformer's burden, biased at adc.bias_volts, converted by the MCU's ADC.
#
#   pin volts (voltage) = bias + v(t) / v_gain * (1 + e_v)
#   pin volts (current) = bias + i(t + lead) / i_gain * (1 + e_i)     (the CT's phase lead as a time advance)
#   code = ADC(pin volts) * (1 + gain error) + offset + noise, quantised to adc.bits, scaled to 16 bits
#
# v_gain and i_gain are the board file's NOMINAL calibration (the front end as designed); e_v, e_i (divider and CT
# ratio tolerances, +-2 %), the CT's phase lead (0.1..0.6 degrees), the ADC's offset (+-15 codes of 12 bits) and gain
# error (+-1.5 %) are this meter's own, drawn from its unique id, never the firmware's constants: the firmware has to
# calibrate them away. Noise: gaussian, sigma 0.6 code. ESP32 at 11 dB: codes compress below ~0.15 V and above
# ~2.45 V (full scale ~3.1 V). RP2040: DNL spikes (erratum E11): codes within 2 of 512, 1536, 2560, 3584 read as that
# code (a 5-LSB-wide code, 4 missing neighbours). Each read advances device time by adc.read_us: the conversion
# time of the port, hence the skew between the V and I samples of a pair.
import math
import random
from array import array

import _emu_bus as bus
import _emu_clock as clock
import _emu_grid as grid

_board = bus.config["board"]
_adc = _board.get("adc", {})
_cal = _board.get("calibration", {})
ESP32 = _board["mcu"]["family"] == "esp32"
_ESP32_FS = {0: 0.95, 2.5: 1.25, 6: 1.75, 11: 3.1}
BITS = int(_adc.get("bits", 12))
TOP = (1 << BITS) - 1
FS = _ESP32_FS.get(_adc.get("attenuation_db", 11), 3.1) if ESP32 else float(_adc.get("vref", 3.3))
K = TOP / FS  # codes per pin volt (ideal)
BIAS = float(_adc.get("bias_volts", FS / 2))
READ_US = int(_adc.get("read_us", 0))
SH = 16 - BITS
SH2 = 2 * BITS - 16
_ch = _adc.get("channels", {})
V_GPIO = _ch.get("voltage", {}).get("gpio")
I_GPIO = _ch.get("current", {}).get("gpio")
# ESP32 11 dB non-linear ends, in ideal codes
_LO = 0.15 * K
_HI = 2.45 * K
_END = 3.3 * K  # the slope above _HI falls linearly to zero here

_u = grid.draws("adc", 6)
E_V = 0.02 * _u[0]
E_I = 0.02 * _u[1]
LEAD_DEG = 0.35 + 0.25 * _u[2]
OFFSET = 15.0 * _u[3] * TOP / 4095
GAIN = 1.0 + 0.015 * _u[4]
NOISE_SIGMA = 0.6 * TOP / 4095
_noise = array("f", grid.gauss_table(256, "adc-noise", NOISE_SIGMA))
random.seed(int((_u[5] + 1.0) * 1e6))
_bits = random.getrandbits
_now = clock.now_us
_skip = clock.skip
_touch = grid.touch
_f_nom = float(_board.get("metering", {}).get("nominal_frequency", 50.0))
LEAD_US = LEAD_DEG / 360.0 / _f_nom * 1e6

_model = "v_gain" in _cal and "i_gain" in _cal and V_GPIO is not None
if _model:
    KV = K * (1.0 + E_V) / float(_cal["v_gain"])
    KI = K * (1.0 + E_I) / float(_cal["i_gain"])
BASE = BIAS * K


def _nonlinear(x):
    """The ESP32's ends in floats (ideal codes in, codes out): _fixed_code's curve, as the tests check it."""
    if ESP32:
        if x < _LO:
            return x * x / _LO if x > 0 else 0.0
        if x > _HI:
            d = x - _HI
            w = _END - _HI
            if d > w:
                d = w
            return _HI + d * (1.0 - 0.5 * d / w)
    return x


def read_v():
    return _sample(_v_terms)


def read_i():
    return _sample(_i_terms)


def _sample(terms):
    """One conversion now of the channel whose terms are `terms` (_v_terms or _i_terms: both kept as the same lists,
    refilled in place by _anchor)."""
    now = _now()
    if now >= grid._next_us:
        _touch(now)
    _skip(READ_US)
    if now - _at[0] >= _ANCHOR_US or now < _at[0] or grid.V is not _seen[0] or grid.I_TERMS is not _seen[1]:
        _anchor(now)
    return _fixed_code(BASE_X + _wave(terms, _phase(now)))


# -- the samples in integers ---------------------------------------------------------------------------------------
# MicroPython keeps every float on the heap, and the model runs in the firmware's VM: computed in floats, each sample
# left about 0.6 KB VM of garbage in the firmware's heap (about 1 MB per burst of 888 pairs), where a board's
# read_u16() leaves none. That garbage set when the firmware's heap collected and where its survivors fell, so the
# emulated heap broke into pieces unlike a board's, and it cost the VM most of its time at --speed max. So the
# samples are made in small integers: the phase in 1/2**24 of a cycle, advanced linearly from an anchor set in
# floats (grid.theta, drift included) every _ANCHOR_US and whenever the grid's terms change; the
# sine from a table with linear interpolation; codes in 1/2**16. Against the float model: within 0.01 code (the
# noise alone is 0.6), and between anchors an ADC read allocates nothing (host_tests/unit/test_emu_models.py).
_PH = 1 << 24  # phase units per cycle
_RS = 24  # the rate's extra bits: phase units per µs, times 2**_RS
_ANCHOR_US = 5000  # the phase's linear step is re-anchored this often (the drift's curvature: < 1e-6 rad by then)
_TAB_SHIFT = 14  # phase units per table step (2**24 / 1024)
_FRAC = (1 << _TAB_SHIFT) - 1
_ONE_BITS = 20  # the table's 1.0 is 2**20
_SIN = array("i", [int(round(math.sin(2.0 * math.pi * k / 1024) * (1 << _ONE_BITS))) for k in range(1025)])
_X = 1 << 16  # a code's 1.0 in the fixed-point sample
_GAIN_BITS = 28  # the gain's 1.0 (2**16 would err by 0.004 code at mid-scale)
BASE_X = int(round(BASE * _X))
LO_X = int(round(_LO * _X))
HI_X = int(round(_HI * _X))
W_X = int(round((_END - _HI) * _X))
GAIN_X = int(round(GAIN * (1 << _GAIN_BITS)))
OFFSET_X = int(round(OFFSET * _X))
_noise_x = array("i", [int(round(e * _X)) for e in _noise])
_at = [-(1 << 60), 0, 0]  # anchor time (µs), phase there (units), rate (units per µs * 2**_RS); a list: an
# array("q")'s items come back as new long ints
_seen = [None, None]  # the grid's terms the tables below were made from
_v_terms = []  # (order, peak in codes * _X, phase in units)
_i_terms = []
_i_base = []  # the current's phases before the CT's lead (which depends on the frequency)


def _terms(src, k):
    return [(h, int(round(k * a * _X)), int(round(ph / (2.0 * math.pi) * _PH)) % _PH) for h, a, ph in src]


def _anchor(now):
    """Re-anchor the phase at `now` (floats, a few per _ANCHOR_US): its value, its rate, the CT lead in units."""
    if grid.V is not _seen[0] or grid.I_TERMS is not _seen[1]:
        _seen[0] = grid.V
        _seen[1] = grid.I_TERMS
        _v_terms[:] = _terms(grid.V, KV)
        _i_base[:] = _terms(grid.I_TERMS, KI)
    th = grid.theta(now) / (2.0 * math.pi)
    _at[0] = now
    _at[1] = int(round((th - math.floor(th)) * _PH)) % _PH
    # the rate: the secant to the next anchor (the drift's curvature then errs a quarter as much as the tangent's)
    _at[2] = int(round((grid.theta(now + _ANCHOR_US) / (2.0 * math.pi) - th) / _ANCHOR_US * _PH * (1 << _RS)))
    lead = int(round(LEAD_US * _at[2])) >> _RS  # the current is read LEAD_US ahead: its phase that much further
    _i_terms[:] = [(h, a, (ph + h * lead) % _PH) for h, a, ph in _i_base]


def _phase(now):
    return _at[1] + ((_at[2] * (now - _at[0])) >> _RS)


def _wave(terms, p):
    x = 0
    sin = _SIN
    for h, a, ph in terms:
        u = (h * p + ph) & (_PH - 1)
        j = u >> _TAB_SHIFT
        s0 = sin[j]
        s = s0 + (((sin[j + 1] - s0) * (u & _FRAC)) >> _TAB_SHIFT)
        x += (a * s) >> _ONE_BITS
    return x


def _fixed_code(x):
    """A sample's code, 16-bit scaled, from its ideal code x * _X: the ESP32's compressed ends (_nonlinear), the
    converter's gain, offset and noise, rounding and the range, the RP2040's DNL spikes."""
    if ESP32:
        if x < LO_X:
            x = x * x // LO_X if x > 0 else 0
        elif x > HI_X:
            d = x - HI_X
            if d > W_X:
                d = W_X
            x = HI_X + d - d * d // (2 * W_X)
    x = ((x * GAIN_X) >> _GAIN_BITS) + OFFSET_X + _noise_x[_bits(8)]
    n = (x + (_X >> 1)) >> 16  # (floor: below -0.5 it is clamped to 0 as int() would be)
    if n < 0:
        n = 0
    elif n > TOP:
        n = TOP
    if not ESP32:
        r = (n - 512) & 1023  # erratum E11: DNL spikes at 512 + k*1024
        if r <= 2:
            n -= r
        elif r >= 1022:
            n += 1024 - r
    return (n << SH) | (n >> SH2)


def reader(gpio):
    """The model's read function for an ADC pin, or None for a pin it does not drive."""
    if not _model:
        return None
    if gpio == V_GPIO:
        return read_v
    if gpio == I_GPIO:
        return read_i
    return None


def info():
    return {"e_v": E_V, "e_i": E_I, "lead_deg": LEAD_DEG, "offset_codes": OFFSET, "gain": GAIN,
            "noise_codes": NOISE_SIGMA, "read_us": READ_US, "full_scale_v": FS, "bias_v": BIAS}
