"""Synthetic front-end samples for DSP tests (CPython and the VM): an ideal mains waveform through an ideal 12-bit
ADC biased at mid-scale, with optional harmonics, frequency offset, noise and a V-to-I sample skew. Returns
read_u16()-style codes as a board's ADC would."""
import math
from array import array

RATE = 4000
PER_CODE = 3.3 / 4095  # the Pico's ADC: vref 3.3 V, 12 bits
V_GAIN = 250.0  # line volts per pin volt (boards/rpi_pico.json)
I_GAIN = 60.0


def samples(n, volts, amps, phi_deg, freq=50.0, h3=0.0, h5i=0.0, t0=0.0031, noise=0.0, skew_s=0.0, seed=1,
            export=False):
    """phi_deg: current lags voltage (+ inductive, - capacitive); h3: 3rd voltage harmonic (fraction);
    h5i: 5th current harmonic (fraction, in phase with the 5th of the voltage if any); noise: codes (uniform ±)."""
    v = array("H", bytes(2 * n))
    i = array("H", bytes(2 * n))
    w = 2 * math.pi * freq
    phi = math.radians(phi_deg)
    sign = -1.0 if export else 1.0
    state = seed
    for k in range(n):
        t = t0 + k / RATE
        vv = volts * math.sqrt(2) * (math.sin(w * t) + h3 * math.sin(3 * w * t))
        ti = t + skew_s
        ii = sign * amps * math.sqrt(2) * (math.sin(w * ti - phi) + h5i * math.sin(5 * w * ti))
        dv = di = 0.0
        if noise:
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            dv = noise * ((state >> 8) / (1 << 23) - 0.5) * 2
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            di = noise * ((state >> 8) / (1 << 23) - 0.5) * 2
        cv = int(2048 + vv / V_GAIN / PER_CODE + dv + 0.5)
        ci = int(2048 + ii / I_GAIN / PER_CODE + di + 0.5)
        cv = 0 if cv < 0 else (4095 if cv > 4095 else cv)
        ci = 0 if ci < 0 else (4095 if ci > 4095 else ci)
        v[k] = (cv << 4) | (cv >> 8)
        i[k] = (ci << 4) | (ci >> 8)
    return v, i


class Scale:
    def __init__(self, phase_deg=0.0, p_gain=1.0, p_offset_w=0.0, i_noise=0.0):
        self.kv = V_GAIN * PER_CODE
        self.ki = I_GAIN * PER_CODE
        self.phase_deg = phase_deg
        self.p_gain = p_gain
        self.p_offset_w = p_offset_w
        self.i_noise = i_noise


def true_p(volts, amps, phi_deg, h3=0.0, h5i=0.0):
    return volts * amps * math.cos(math.radians(phi_deg))
