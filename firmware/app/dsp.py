# The metering DSP for a sampled front end. From one burst of voltage and current codes it finds whole mains cycles
# between confirmed rising zero crossings of the voltage, removes the DC offsets over exactly those cycles, shifts
# the current by the calibrated phase, and returns Vrms, Irms, P, signed Q, S, signed PF and the frequency.
#
# Board arithmetic: MicroPython on the ESP32 and RP2040 keeps small integers in 31 bits and floats in single
# precision. Products of centred 12-bit codes are summed in small integers over CHUNK samples (CHUNK × 2048² < 2**30)
# and only then moved to float accumulators kept in an array('f'), so every runtime rounds them as a board does.
import math
from array import array

from micropython import const

CHUNK = const(128)
_CONFIRM = const(4)  # samples below -hyst before, and at or above 0 after, a rising crossing that count it
_MAX_CROSSINGS = const(64)
# accumulator slots
_SX = const(0)
_SY = const(1)
_SXX = const(2)
_SYY = const(3)
_SXY = const(4)
_SXYP = const(5)  # sum x[k] * y[k-1]: current one sample earlier
_SXYN = const(6)  # sum x[k-1] * y[k]: current one sample later
_SQ = const(7)  # sum x[k-q] * y[k]: voltage a quarter cycle earlier (sign of Q)


class Reading:
    """One measurement. Units: V, A, W, var, VA, Hz; pf is signed (negative while exporting); samples and cycles
    tell what the figures rest on."""

    def __init__(self):
        self.voltage = 0.0
        self.current = 0.0
        self.p = 0.0
        self.q = 0.0
        self.s = 0.0
        self.pf = 1.0
        self.frequency = 0.0
        self.cycles = 0
        self.samples = 0


class Dsp:
    def __init__(self, rate_hz, nominal_hz, bits, max_samples):
        self.rate = rate_hz
        self.nominal = nominal_hz
        self.shift = 16 - bits  # read_u16() codes carry the converter's bits at the top
        self.acc = array("f", bytes(4 * 8))  # zeros; from a generator the array grew, and moved, as it filled
        self.zc = array("f", bytes(4 * _MAX_CROSSINGS))
        self.hyst = 1 << max(0, bits - 9)  # 8 codes of 12 bits: well above the converter's noise
        self.max_samples = max_samples

    def crossings(self, v, n, bias):
        """Confirmed rising zero crossings of v (codes) around `bias`, as interpolated sample positions in self.zc;
        returns how many. A crossing counts after _CONFIRM samples below -hyst and _CONFIRM samples at or above 0,
        so noise and harmonics near zero do not add crossings."""
        zc = self.zc
        hyst = self.hyst
        below = 0
        above = -1  # samples at or above 0 since a tentative crossing; -1: none pending
        last_neg = -1
        pending = 0
        found = 0
        sh = self.shift
        for k in range(n):
            x = (v[k] >> sh) - bias
            if x < 0:
                last_neg = k
                above = -1
                if x < -hyst:
                    below += 1
            elif above >= 0:
                above += 1
                if above >= _CONFIRM:
                    x0 = (v[pending] >> sh) - bias
                    x1 = (v[pending + 1] >> sh) - bias
                    if found < _MAX_CROSSINGS:
                        zc[found] = pending + (-x0) / (x1 - x0)
                        found += 1
                    above = -1
            elif below >= _CONFIRM and last_neg >= 0:
                pending = last_neg
                above = 1
                below = 0
        return found

    def measure(self, v, i, n, cal, out):
        """Fill `out` (a Reading) from n sample pairs. cal: kv (V per code), ki (A per code), p_gain, p_offset_w,
        i_noise (A rms floor, removed in quadrature), phase_deg (current shift at the nominal frequency)."""
        sh = self.shift
        bias_v = _mean(v, n, sh)
        bias_i = _mean(i, n, sh)
        found = self.crossings(v, n, bias_v)
        per_cycle = self.rate / self.nominal
        if found >= 2:
            a = int(self.zc[0]) + 1
            b = int(self.zc[found - 1]) + 1
            cycles = found - 1
            freq = cycles * self.rate / (self.zc[found - 1] - self.zc[0])
        else:
            # no voltage to follow (or under 2 cycles of it): the whole burst, at the nominal frequency
            a, b, cycles, freq = 1, n, 0, 0.0
        m = b - a
        quarter = int(per_cycle / 4 + 0.5) if freq == 0.0 else int(self.rate / freq / 4 + 0.5)
        self._sums(v, i, a, b, bias_v, bias_i, quarter)
        acc = self.acc
        mx = acc[_SX] / m
        my = acc[_SY] / m
        vv = acc[_SXX] / m - mx * mx
        ii = acc[_SYY] / m - my * my
        # phase: shift the current by s samples (linear interpolation between neighbours, done on the sums)
        s = cal.phase_deg / 360.0 * per_cycle
        if s > 1.0:
            s = 1.0
        elif s < -1.0:
            s = -1.0
        if s >= 0:
            xy = (1.0 - s) * acc[_SXY] + s * acc[_SXYN]
        else:
            xy = (1.0 + s) * acc[_SXY] - s * acc[_SXYP]
        pc = xy / m - mx * my
        volts = math.sqrt(vv) * cal.kv if vv > 0 else 0.0
        i2 = ii * cal.ki * cal.ki - cal.i_noise * cal.i_noise if ii > 0 else 0.0
        amps = math.sqrt(i2) if i2 > 0 else 0.0
        p = pc * cal.kv * cal.ki * cal.p_gain - cal.p_offset_w
        s_va = volts * amps
        if abs(p) > s_va:
            s_va = abs(p)
        q = math.sqrt(s_va * s_va - p * p)
        if acc[_SQ] < 0:
            q = -q
        out.voltage = volts
        out.current = amps
        out.p = p
        out.q = q
        out.s = s_va
        out.pf = (p / s_va) if s_va > 0 else 1.0
        out.frequency = freq
        out.cycles = cycles
        out.samples = m
        return out

    def _sums(self, v, i, a, b, bv, bi, quarter):
        acc = self.acc
        for k in range(8):
            acc[k] = 0.0
        sh = self.shift
        xp = (v[a - 1] >> sh) - bv
        yp = (i[a - 1] >> sh) - bi
        c = a
        while c < b:
            e = c + CHUNK
            if e > b:
                e = b
            sx = sy = sxx = syy = sxy = sxyp = sxyn = sq = 0
            for k in range(c, e):
                x = (v[k] >> sh) - bv
                y = (i[k] >> sh) - bi
                sx += x
                sy += y
                sxx += x * x
                syy += y * y
                sxy += x * y
                sxyp += x * yp
                sxyn += xp * y
                xp = x
                yp = y
            if quarter > 0:
                for k in range(c if c >= quarter else quarter, e, 4):
                    sq += ((v[k - quarter] >> sh) - bv) * ((i[k] >> sh) - bi)
            acc[_SX] += sx
            acc[_SY] += sy
            acc[_SXX] += sxx
            acc[_SYY] += syy
            acc[_SXY] += sxy
            acc[_SXYP] += sxyp
            acc[_SXYN] += sxyn
            acc[_SQ] += sq
            c = e


def _mean(buf, n, sh):
    t = 0
    for k in range(n):
        t += buf[k] >> sh
    return t // n if n else 0
