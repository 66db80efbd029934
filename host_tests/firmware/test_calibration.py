import math
import wave

import fwtest
from app import calibrate, calibration, dsp

PICO = {
    "mcu": {"family": "rp2040"},
    "adc": {"bits": 12, "vref": 3.3},
    "frontend": {"type": "adc"},
    "calibration": {"v_gain": 250.0, "i_gain": 60.0, "phase_deg": 0.0, "v_offset": 0, "i_offset": 0},
    "metering": {"nominal_voltage": 230.0, "nominal_frequency": 50.0, "ib_amps": 5.0, "imax_amps": 60.0},
}
BL = {
    "frontend": {"type": "bl0942"},
    "calibration": {"v_scale": 15873.36, "i_scale": 251213.46, "p_scale": 596.0, "cf_per_kwh": 5115.56},
    "metering": PICO["metering"],
}
N = 11 * wave.RATE // 50 + 8


def _reading(consts, volts, amps, phi, skew_s=0.0, gain_v=1.0, gain_i=1.0):
    """What the DSP reads with `consts` from a front end whose true gains differ by gain_v, gain_i."""
    v, i = wave.samples(N, volts * gain_v, amps * gain_i, phi, skew_s=skew_s)
    out = dsp.Reading()
    dsp.Dsp(wave.RATE, 50.0, 12, N).measure(v, i, N, calibration.AdcScale(PICO, consts), out)
    return (out.voltage, out.current, out.p, out.q)


def test_defaults_come_from_the_board_with_neutral_extras():
    c = calibration.defaults(PICO)
    assert c == {"v_gain": 250.0, "i_gain": 60.0, "phase_deg": 0.0, "p_gain": 1.0, "p_offset_w": 0.0,
                 "i_noise": 0.0}
    assert set(calibration.defaults(BL)) == set(calibration.KEYS["bl0942"])


def test_factory_steps_bring_an_adc_meter_within_a_tenth_of_a_percent():
    c = calibration.defaults(PICO)
    skew = 0.5 / wave.RATE
    args = dict(skew_s=skew, gain_v=1.02, gain_i=0.97)
    c = calibrate.apply(PICO, c, "gain", _reading(c, 230.0, 5.0, 0.0, **args), 230.0, 5.0, 1.0)
    c = calibrate.apply(PICO, c, "phase", _reading(c, 230.0, 5.0, 60.0, **args), 230.0, 5.0, 0.5)
    c = calibrate.apply(PICO, c, "gain", _reading(c, 230.0, 5.0, 0.0, **args), 230.0, 5.0, 1.0)
    for phi, want in ((0.0, 1150.0), (60.0, 575.0), (-36.87, 920.0)):
        got = _reading(c, 230.0, 5.0, phi, **args)[2]
        assert abs(got - want) < 0.001 * want, (phi, got, want)
    assert -20 < c["phase_deg"] < 0  # the skew made the current look late... its sign is what the DSP shifts


def test_bl0942_gain_scales_power_and_pulses_together():
    c = calibration.defaults(BL)
    new = calibrate.apply(BL, c, "gain", (234.6, 4.9, 1138.5, 0.0), 230.0, 5.0, 1.0)
    assert abs(new["v_scale"] / c["v_scale"] - 234.6 / 230.0) < 1e-9
    assert abs(new["p_scale"] / c["p_scale"] - 1138.5 / 1150.0) < 1e-9
    assert abs(new["cf_per_kwh"] - new["p_scale"] * 3.6e6 / (1638.4 * 256)) < 1e-6  # the IC's pulse rate


def test_offset_step_takes_the_no_load_power_and_noise():
    c = calibration.defaults(PICO)
    new = calibrate.apply(PICO, c, "offset", (230.0, 0.03, 0.4, 0.0), 230.0, 0.0, 1.0)
    assert new["p_offset_w"] == 0.4 and abs(new["i_noise"] - 0.03) < 1e-12


def test_references_a_step_cannot_use_are_refused_by_name():
    cases = (
        (PICO, "gain", 230.0, 5.0, 0.5, "gain-needs-pf1-and-current"),
        (PICO, "gain", 400.0, 5.0, 1.0, "reference-voltage"),
        (PICO, "phase", 230.0, 5.0, 1.0, "phase-needs-low-pf-and-current"),
        (BL, "phase", 230.0, 5.0, 0.5, "no-phase-adjustment"),
        (PICO, "offset", 230.0, 1.0, 1.0, "offset-needs-no-load"),
        (PICO, "gain", 230.0, 99.0, 1.0, "reference-current"),
        (PICO, "sideways", 230.0, 5.0, 1.0, "unknown-step"),
    )
    for board, step, v, i, pf, code in cases:
        e = fwtest.raises(calibration.CalibrationError, calibrate.check_reference, board, step, v, i, pf)
        assert e.code == code, (step, e.code)
    c = calibration.defaults(PICO)
    e = fwtest.raises(calibration.CalibrationError, calibrate.apply, PICO, c, "gain", (115.0, 5.0, 575.0, 0.0),
                      230.0, 5.0, 1.0)
    assert e.code == "reading-far-from-reference"


def test_stored_calibration_survives_and_a_foreign_one_is_ignored():
    def body():
        c = calibration.defaults(PICO)
        c["v_gain"] = 251.5
        calibrate.save(PICO, c, ["gain"], 1700000000)
        got, source = calibration.load(PICO)
        assert source == "calibrated" and got["v_gain"] == 251.5
        got, source = calibration.load(BL)  # the file is for another front end
        assert source == "board" and got == calibration.defaults(BL)
        fwtest.write(calibration.PATH, b"{broken")
        assert calibration.load(PICO) == (calibration.defaults(PICO), "board (stored calibration unreadable)")

    fwtest.in_workdir(body, "meter")
    assert math.isfinite(1.0)
