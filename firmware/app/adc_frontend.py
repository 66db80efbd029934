# The sampled front end: the MCU's ADC reads the voltage divider and the current sensor in pairs (V, then I) at
# frontend.rate_hz, in bursts of frontend.burst_cycles mains cycles (plus one for the cycle boundaries), once per
# measurement period. Bursts rather than continuous sampling: neither port gives MicroPython a timer-paced ADC with
# DMA for two channels, and a paced loop in Python leaves no time for the DSP at 4 kHz, so the loop samples, then
# the DSP runs, then the CPU is free for the console until the next period.
import time
from array import array

from app import calibration, dsp


class AdcFrontend:
    kind = "adc"

    def __init__(self, board, consts, adcs=None):
        fe = board["frontend"]
        self.board = board
        nominal = board["metering"]["nominal_frequency"]
        self.rate = fe["rate_hz"]
        self.n = (fe["burst_cycles"] + 1) * self.rate // int(nominal) + 8
        self.period_us = 1000000 // self.rate
        # made from a range: one block each at its size (from bytes, a copy of a temporary block as large)
        self.v = array("H", range(self.n))
        self.i = array("H", range(self.n))
        self.dsp = dsp.Dsp(self.rate, nominal, board["adc"]["bits"], self.n)
        if adcs is None:
            adcs = _adcs(board)
        self.read_v = adcs[0].read_u16
        self.read_i = adcs[1].read_u16
        self.set_constants(consts)
        self.errors = {}

    def set_constants(self, consts):
        self.c = consts
        self.scale = calibration.AdcScale(self.board, consts)

    def burst(self):
        rv = self.read_v
        ri = self.read_i
        v = self.v
        i = self.i
        period = self.period_us
        ticks_us = time.ticks_us
        ticks_add = time.ticks_add
        ticks_diff = time.ticks_diff
        sleep_us = time.sleep_us
        t = ticks_us()
        for k in range(self.n):
            v[k] = rv()
            i[k] = ri()
            t = ticks_add(t, period)
            d = ticks_diff(t, ticks_us())
            if d > 0:
                sleep_us(d)

    async def measure(self, out):
        self.burst()
        self.dsp.measure(self.v, self.i, self.n, self.scale, out)
        return True

    def take_energy(self, r, dt_ms):
        """The active energy of the interval in integer mJ (signed: export negative): this front end has no energy
        counter, so it is the reading's power over the interval, rounded half away from zero."""
        e = r.p * dt_ms
        return int(e + 0.5) if e >= 0 else -int(-e + 0.5)


def _adcs(board):
    import machine

    ch = board["adc"]["channels"]
    out = []
    for name in ("voltage", "current"):
        pin = machine.Pin(ch[name]["gpio"])
        if board["mcu"]["family"] == "esp32":
            att = {0: 0, 2.5: 1, 6: 2, 11: 3}[board["adc"]["attenuation_db"]]
            out.append(machine.ADC(pin, atten=att))
        else:
            out.append(machine.ADC(pin))
    return out
