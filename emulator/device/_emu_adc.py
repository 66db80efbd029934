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


def _code(x):
    if x < _LO or x > _HI:
        x = _nonlinear(x)
    x = x * GAIN + OFFSET + _noise[_bits(8)]
    n = int(x + 0.5)
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


def read_v():
    now = _now()
    if now >= grid._next_us:
        _touch(now)
    _skip(READ_US)
    return _code(BASE + KV * grid.v_at(now))


def read_i():
    now = _now()
    if now >= grid._next_us:
        _touch(now)
    _skip(READ_US)
    return _code(BASE + KI * grid.i_at(now + LEAD_US))


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
