# The calibration steps (docs/metering.md): refuse reference conditions a step cannot use, compute new constants from
# readings averaged at a reference, and save them. A pure function per step, tested on CPython and in the VM. A
# calibration is a factory step: app/metering.py imports this module for one and takes it off the heap after, so the
# meter's run holds only app/calibration.py (the constants and what each reading uses).
import math

from app.calibration import (
    ADC,
    CF_COUNT_SECONDS,
    KIND,
    PATH,
    STEP_GAIN,
    STEP_OFFSET,
    STEP_PHASE,
    STEPS,
    VERSION,
    CalibrationError,
    frontend,
)
from loader import store, strict


def save(board, consts, steps, at):
    store.write_record(PATH, KIND, VERSION, {"frontend": frontend(board), "constants": consts, "steps": steps,
                                             "at": at})



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
