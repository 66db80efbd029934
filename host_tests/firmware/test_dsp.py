import math
import wave

from app import dsp

N = 11 * wave.RATE // 50 + 8


def _measure(v, i, scale=None, acc=None):
    d = dsp.Dsp(wave.RATE, 50.0, 12, N)
    if acc is not None:
        d.acc = acc
    out = dsp.Reading()
    d.measure(v, i, N, scale or wave.Scale(), out)
    return out


def _close(got, want, rel, what):
    assert abs(got - want) <= rel * abs(want), "%s: %r, want %r (±%g %%)" % (what, got, want, rel * 100)


def test_unity_power_factor():
    r = _measure(*wave.samples(N, 230.0, 5.0, 0.0))
    _close(r.voltage, 230.0, 0.002, "V")
    _close(r.current, 5.0, 0.002, "I")
    _close(r.p, 1150.0, 0.002, "P")
    assert abs(r.q) < 0.01 * r.s and abs(r.pf - 1.0) < 0.001
    assert r.cycles == 10 and abs(r.frequency - 50.0) < 0.01


def test_inductive_and_capacitive_signs():
    lag = _measure(*wave.samples(N, 230.0, 5.0, 60.0))
    _close(lag.p, 575.0, 0.003, "P at 0.5L")
    assert lag.q > 0 and abs(lag.pf - 0.5) < 0.003
    lead = _measure(*wave.samples(N, 230.0, 5.0, -36.87))
    _close(lead.p, 920.0, 0.003, "P at 0.8C")
    assert lead.q < 0 and abs(lead.pf - 0.8) < 0.003


def test_export_gives_negative_power_and_pf():
    r = _measure(*wave.samples(N, 230.0, 5.0, 0.0, export=True))
    _close(r.p, -1150.0, 0.002, "P exported")
    assert r.pf < -0.99


def test_frequency_from_zero_crossings_follows_the_grid():
    for f in (47.5, 49.9, 50.0, 50.4, 52.0):
        r = _measure(*wave.samples(N, 230.0, 5.0, 0.0, freq=f))
        assert abs(r.frequency - f) < 0.01, (f, r.frequency)
        _close(r.p, 1150.0, 0.003, "P at %g Hz" % f)  # whole cycles, whatever the frequency


def test_harmonics_count_in_rms_and_noise_does_not_add_crossings():
    r = _measure(*wave.samples(N, 230.0, 5.0, 0.0, h3=0.1, noise=6.0))
    _close(r.voltage, 230.0 * math.sqrt(1.01), 0.003, "V with 10 % third harmonic")
    assert r.cycles == 10 and abs(r.frequency - 50.0) < 0.02
    _close(r.p, 1150.0, 0.004, "P")


def test_no_voltage_measures_the_whole_burst_at_zero():
    r = _measure(*wave.samples(N, 0.0, 0.0, 0.0))
    assert r.cycles == 0 and r.frequency == 0.0
    assert r.voltage < 0.5 and r.current < 0.01 and abs(r.p) < 0.1


def test_phase_correction_removes_a_sample_skew():
    skew = 1.0 / wave.RATE * 0.4  # the I sample taken 0.4 samples after V (the ADC's read time)
    v, i = wave.samples(N, 230.0, 5.0, 60.0, skew_s=skew)
    raw = _measure(v, i)
    assert abs(raw.p - 575.0) > 0.02 * 575.0  # uncorrected: several % off at PF 0.5
    shift = -skew * 50.0 * 360.0  # degrees of the current to take back
    fixed = _measure(v, i, wave.Scale(phase_deg=shift))
    _close(fixed.p, 575.0, 0.003, "P after phase correction")


def test_float32_accumulators_match_double_precision():
    from array import array

    v, i = wave.samples(N, 253.0, 60.0, 60.0, noise=1.0)
    single = _measure(v, i)
    double = _measure(v, i, acc=array("d", [0.0] * 8))
    _close(single.p, double.p, 1e-5, "P float32 vs float64")
    _close(single.voltage, double.voltage, 1e-5, "V float32 vs float64")
    _close(single.current, double.current, 1e-5, "I float32 vs float64")
