# The BL0942 metering IC on a BL0942 board's uarts.metering, at register level, measuring the grid model through
# the board's `bl0942` circuit (shunt in the live wire → current channel millivolts; resistor divider → voltage
# channel millivolts; the IC's reference vref). Transfer functions as the datasheet gives them (inputs in mV):
#
#   I_RMS = 305978 * I(mV) / Vref        V_RMS = 73989 * V(mV) / Vref        WATT = 3537 * I(mV) * V(mV) * cos(phi) / Vref^2
#   one CF pulse (CF_CNT + 1) per 1638.4 * 256 / WATT seconds; FREQ = line period in µs; WATT signed 24-bit.
#
# With the reference circuit (1 mΩ, 5 x 390 kΩ / 510 Ω, 1.218 V) that is 251213.5 I_RMS counts per A (STANDARDS.md's
# typical 251213.46: equal), 15883.6 V_RMS counts per V (typical 15873.36: +0.06 %, the typical value uses a
# rounded divider), 623.4 WATT counts per W (typical 596, an empirical figure from another board: +4.6 %) and
# 5350.6 CF pulses per kWh (typical 3304.61, "measured" on some product with other parts: +62 %). The typical
# CF/WATT ratio (5.545) differs from the datasheet's 3.6e6 / (1638.4 * 256) = 8.583 pulses per kWh per W count, so a
# meter must calibrate its pulses per kWh, not derive them from the power scale.
#
# The IC's own errors, drawn per meter from the unique id: gain +-1 % per channel, phase error +-0.05 degrees,
# offsets (an RMS floor of up to 2 mA / 0.05 V added in quadrature, a WATT offset below the creep threshold), noise
# 0.05 % of reading plus a floor per read. Below the no-load threshold (WA_CREEP; WATT < WA_CREEP * 3125 / 256)
# WATT reads 0 and CF stops. CF_CNT counts the IC's own integral of |WATT| and restarts at 0 at every power-up.
#
# Protocol (4800 8N1, half duplex): `0x58|addr, reg` → d0 d1 d2 CK; `0x58|addr, 0xAA` → the 23-byte full packet;
# `0xA8|addr, reg, d0, d1, d2, CK` writes (only after USR_WRPROT = 0x55, except USR_WRPROT itself). Another address,
# a bad write checksum or a baud rate other than 4800 gets no answer. Answer bytes reach the MCU after their line
# time (10 bits per byte at 4800 baud, counted from the end of the request), on the device clock.
import math
import random
from array import array

import _emu_bus as bus
import _emu_clock as clock
import _emu_grid as grid

_board = bus.config["board"]
_c = _board.get("bl0942", {"shunt_ohm": 0.001, "divider_ohm": [1950000, 510], "vref": 1.218})
ADDRESS = int(_board.get("frontend", {}).get("address", 0))
BAUD = 4800
BYTE_US = 10 * 1000000 // BAUD  # 2083 µs per byte on the line
_vref = float(_c["vref"])
_ratio = _c["divider_ohm"][1] / (_c["divider_ohm"][0] + _c["divider_ohm"][1])
_mv_per_a = float(_c["shunt_ohm"]) * 1000.0
_mv_per_v = _ratio * 1000.0
K_I = 305978.0 * _mv_per_a / _vref  # I_RMS counts per line ampere
K_V = 73989.0 * _mv_per_v / _vref  # V_RMS counts per line volt
K_P = 3537.0 * _mv_per_a * _mv_per_v / (_vref * _vref)  # WATT counts per watt
CF_WATT_S = 1638.4 * 256  # WATT x seconds per CF pulse

_u = grid.draws("bl0942", 8)
G_V = 1.0 + 0.01 * _u[0]
G_I = 1.0 + 0.01 * _u[1]
PHASE_RAD = math.radians(0.05 * _u[2])
FLOOR_I = 0.002 * (_u[3] + 1.0) / 2  # A, added in quadrature
FLOOR_V = 0.05 * (_u[4] + 1.0) / 2  # V
WATT_OFFSET = 60.0 * _u[5]  # counts (< 0.1 W; the default creep threshold is 134 counts)
NOISE_REL = 0.0005
NOISE_I = 0.0002 * K_I  # counts
NOISE_V = 0.01 * K_V
NOISE_W = 0.03 * K_P
_gauss = array("f", grid.gauss_table(64, "bl0942-noise"))
random.seed(int((_u[6] + 1.0) * 1e6) + 7)
_bits = random.getrandbits

I_RMS, V_RMS, I_FAST_RMS, WATT, CF_CNT, FREQ, STATUS = 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09
WA_CREEP, MODE, SOFT_RESET, USR_WRPROT = 0x14, 0x19, 0x1C, 0x1D
_DEFAULTS = {0x11: 0, 0x12: 0, WA_CREEP: 0x0B, 0x15: 0x0FFFFF, 0x16: 0x01, 0x17: 0x03, 0x18: 0x12, MODE: 0x87,
             0x1A: 0x02, SOFT_RESET: 0, USR_WRPROT: 0}
regs = dict(_DEFAULTS)
_cf = [0.0]  # the IC's own energy integral, in CF pulses since power-up
_freq = [20000]


def _creep_counts():
    return regs[WA_CREEP] * 3125.0 / 256.0


def _watt_clean(p, q):
    """WATT counts for true P, Q (W, var) through this IC's gains, phase error and offset; 0 below WA_CREEP."""
    w = K_P * G_V * G_I * (p + q * PHASE_RAD) + WATT_OFFSET
    if -_creep_counts() < w < _creep_counts():
        return 0.0
    return w


def _segment(dt_us, p, q):
    if not p and not q:
        w = _watt_clean(0.0, 0.0)
    else:
        w = _watt_clean(p, q)
    if w:
        _cf[0] += abs(w) * dt_us * 1e-6 / CF_WATT_S


grid.segment_hooks.append(_segment)


def _noise():
    return _gauss[_bits(6)]


def read_reg(reg, now):
    """A register's 24-bit value at device time `now`."""
    if reg == I_RMS or reg == I_FAST_RMS:
        i = math.sqrt(grid.IRMS * grid.IRMS + FLOOR_I * FLOOR_I) * K_I * G_I
        v = i * (1.0 + NOISE_REL * _noise() * (2 if reg == I_FAST_RMS else 1)) + NOISE_I * _noise()
    elif reg == V_RMS:
        x = math.sqrt(grid.VRMS * grid.VRMS + FLOOR_V * FLOOR_V) * K_V * G_V
        v = x * (1.0 + NOISE_REL * _noise()) + NOISE_V * _noise()
    elif reg == WATT:
        w = _watt_clean(grid.P, grid.Q)
        if w:
            w = w * (1.0 + NOISE_REL * _noise()) + NOISE_W * _noise()
        w = -0x800000 if w < -0x800000 else (0x7FFFFF if w > 0x7FFFFF else int(w))  # saturates, signed 24-bit
        return w & 0xFFFFFF
    elif reg == CF_CNT:
        return int(_cf[0]) & 0xFFFFFF
    elif reg == FREQ:
        if grid.VRMS > 10.0:
            _freq[0] = int(1000000.0 / grid.frequency(now) + 0.5)
        return _freq[0] & 0xFFFFFF
    elif reg == STATUS:
        w = _watt_clean(grid.P, grid.Q)
        return (1 if w < 0 else 0) | (2 if w == 0 else 0)  # CF_REVP, CREEP_STATE
    elif reg == 0x01 or reg == 0x02:  # I_WAVE, V_WAVE: 20-bit signed instantaneous samples (scale approximate)
        x = grid.i_at(now) * K_I * G_I if reg == 0x01 else grid.v_at(now) * K_V * G_V
        return int(x / 16) & 0xFFFFF
    else:
        return regs.get(reg, 0) & 0xFFFFFF
    v = int(v)
    return 0 if v < 0 else (0xFFFFFF if v > 0xFFFFFF else v)


def _put24(buf, v):
    buf.append(v & 0xFF)
    buf.append((v >> 8) & 0xFF)
    buf.append((v >> 16) & 0xFF)


def answer(cmd, now):
    """The IC's reply to a complete command (bytes), or None."""
    grid.touch(now)
    rd = 0x58 | ADDRESS
    if len(cmd) == 2 and cmd[0] == rd:
        out = bytearray()
        if cmd[1] == 0xAA:
            out.append(0x55)
            for reg in (I_RMS, V_RMS, I_FAST_RMS, WATT, CF_CNT, FREQ, STATUS):
                _put24(out, read_reg(reg, now))
            t = rd
            for b in out:
                t += b
        else:
            _put24(out, read_reg(cmd[1], now))
            t = rd + cmd[1] + out[0] + out[1] + out[2]
        out.append(~t & 0xFF)
        return out
    if len(cmd) == 6 and cmd[0] == (0xA8 | ADDRESS):
        if (~(cmd[0] + cmd[1] + cmd[2] + cmd[3] + cmd[4]) & 0xFF) != cmd[5]:
            return None
        reg = cmd[1]
        val = cmd[2] | (cmd[3] << 8) | (cmd[4] << 16)
        if reg == USR_WRPROT or (regs[USR_WRPROT] == 0x55 and reg in regs):
            if reg == SOFT_RESET and val == 0x5A5A5A:
                regs.clear()
                regs.update(_DEFAULTS)
                _cf[0] = 0.0
            else:
                regs[reg] = val
    return None


class Port:
    """machine.UART(uarts.metering.id) on a BL0942 board: the MCU's end of the line to the IC."""

    def __init__(self, id, baudrate=9600, **kw):
        self._id = id
        self._rx = bytearray()  # answer bytes not yet read by the firmware
        self._at = []  # device time each of them completes on the line
        self._cmd = bytearray()
        self._last = 0
        self._tx_free = 0
        self.init(baudrate, **kw)

    def init(self, baudrate=9600, **kw):
        self._baud = baudrate

    def deinit(self):
        pass

    def _arrived(self):
        now = clock.now_us()
        n = 0
        at = self._at
        while n < len(at) and at[n] <= now:
            n += 1
        return n

    def any(self):
        return self._arrived()

    def read(self, n=-1):
        k = self._arrived()
        if n is not None and n >= 0 and n < k:
            k = n
        if k == 0:
            return None
        out = bytes(self._rx[:k])
        self._rx = self._rx[k:]
        self._at = self._at[k:]
        return out

    def readinto(self, buf, n=-1):
        want = len(buf) if n is None or n < 0 else min(n, len(buf))
        data = self.read(want)
        if data is None:
            return None
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        k = self._arrived()
        for j in range(k):
            if self._rx[j] == 0x0A:
                return self.read(j + 1)
        return self.read(k) if k else None

    def write(self, buf):
        now = clock.now_us()
        byte_us = 10 * 1000000 // self._baud
        t = self._tx_free if self._tx_free > now else now
        rate = grid.S.get("bl0942.error_rate", 0.0)
        for b in buf:
            t += byte_us
            if self._baud != BAUD:
                continue  # the IC sees framing garbage at another baud rate and never answers
            if t - self._last > 20000:
                self._cmd = bytearray()  # a gap ends a half-received frame
            self._last = t
            c = self._cmd
            if not c and b != (0x58 | ADDRESS) and b != (0xA8 | ADDRESS):
                continue  # not for this IC
            c.append(b)
            if (c[0] & 0xF0) == 0x50 and len(c) == 2 or len(c) == 6:
                self._cmd = bytearray()
                out = answer(c, now)
                if out is not None:
                    ta = t if not self._at or self._at[-1] < t else self._at[-1]
                    for x in out:
                        ta += BYTE_US
                        if rate and random.random() < rate:
                            x ^= 1 << _bits(3)
                        self._rx.append(x)
                        self._at.append(ta)
        self._tx_free = t
        return len(buf)

    def flush(self):
        pass

    def txdone(self):
        return clock.now_us() >= self._tx_free


def info():
    return {"k_i": K_I, "k_v": K_V, "k_p": K_P, "cf_per_kwh": K_P * 3.6e6 / CF_WATT_S, "g_v": G_V, "g_i": G_I,
            "phase_deg": math.degrees(PHASE_RAD), "cf": _cf[0]}
