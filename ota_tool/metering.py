"""Reading a meter and calibrating it over SMP group 65 (firmware/app/meter_group.py, docs/smp-groups.md).

Readings come back keyed by OBIS code strings in SI units: V, A, W, var, VA, Hz, and Wh / varh / VAh for registers
(the meter sends integer milli-units so that large registers stay exact; they are divided here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .authority import Authority
from .errors import DeviceRefused, NotAuthorised, OtaError, Refused
from .link import READ_RETRIES, MeterLink
from .meter_groups import GROUP_METERING, CalibrateWrite, CalibrationRead, MeteringRc, MeterRead, ProfileRead

CMD_CALIBRATE = "meter.calibrate"
# register OBIS codes (integer milli-units on the wire) and their units
ENERGY = {
    "1.0.1.8.0.255": ("active energy import", "Wh"),
    "1.0.2.8.0.255": ("active energy export", "Wh"),
    "1.0.3.8.0.255": ("reactive energy import", "varh"),
    "1.0.4.8.0.255": ("reactive energy export", "varh"),
    "1.0.9.8.0.255": ("apparent energy", "VAh"),
    **{f"1.0.1.8.{z}.255": (f"active energy import, TOU zone {z}", "Wh") for z in range(1, 9)},
}
INSTANT = {
    "1.0.12.7.0.255": ("voltage", "V"),
    "1.0.11.7.0.255": ("current", "A"),
    "1.0.1.7.0.255": ("active power (+ import, - export)", "W"),
    "1.0.3.7.0.255": ("reactive power (+ lagging)", "var"),
    "1.0.9.7.0.255": ("apparent power", "VA"),
    "1.0.13.7.0.255": ("power factor (signed)", ""),
    "1.0.14.7.0.255": ("frequency", "Hz"),
    "1.0.1.6.0.255": ("maximum demand, import", "W"),
}
UNITS = {**{k: u for k, (_, u) in INSTANT.items()}, **{k: u for k, (_, u) in ENERGY.items()}}
NAMES = {**{k: n for k, (n, _) in INSTANT.items()}, **{k: n for k, (n, _) in ENERGY.items()}}
STEPS = ("gain", "phase", "offset")
POLL_S = 2.5  # seconds between calibration state reads


class CalibrationFailed(Refused):
    """The meter refused the reference conditions, or the readings did not fit them."""


def _group_refusal(e: DeviceRefused, what: str) -> OtaError:
    if e.group != GROUP_METERING:
        return e
    if e.rc == MeteringRc.NOT_AUTHORISED:
        return NotAuthorised(f"{what}: not authorised (a locked meter needs a signed {CMD_CALIBRATE} envelope: "
                             "--key or --envelope)", "no-envelope")
    if e.rc == MeteringRc.NOT_READY:
        return DeviceRefused(what, e.rc, e.group, "the meter has no reading yet (it measures once a second after "
                                                   "boot)")
    if e.rc == MeteringRc.BAD_REFERENCE:
        return CalibrationFailed(f"{what}: the meter refused the reference conditions")
    return e


def convert(raw: dict) -> dict:
    """The meter's read response as one JSON-ready object: `obis` in SI units, the rest as sent."""
    obis = {}
    for code, value in raw["obis"].items():
        obis[code] = value / 1000.0 if code in ENERGY else value
    out = {k: v for k, v in raw.items() if k != "obis"}
    out["obis"] = obis
    return out


# IS 15959's stored load profiles (firmware/app/load_profile.py) as group 65 command 3 sends their rows: the time (RTC
# s), then integer figures; here in SI units, named as `ota meter profile --json` gives them
PROFILE_COLUMNS = {
    "block": (("voltage", 100), ("current", 1000), ("import_wh", 1000), ("apparent_vah", 1000), ("export_wh", 1000)),
    "daily": (("import_wh", 1000), ("apparent_vah", 1000), ("export_wh", 1000)),
    # a billing period's row, stamped with its billing date (its end): the average power factor, the registers then
    # (import, import by TOU zone 1-8, apparent, export), the maximum demand (W) and when it was set (RTC s, None when
    # not known); scale 1: kept an integer
    "billing": (("power_factor", 1000), ("import_wh", 1000)) + tuple((f"import_zone_{z}_wh", 1000) for z in range(1, 9))
    + (("apparent_vah", 1000), ("export_wh", 1000), ("max_demand_w", 1), ("max_demand_rtc", 1)),
}


def profile_row(kind: str, row: object) -> dict:
    """One profile row as sent ([time, figures...], integers) in SI units; Refused for a row of another shape."""
    cols = PROFILE_COLUMNS[kind]
    if not (isinstance(row, list) and len(row) == len(cols) + 1
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row)):
        raise Refused(f"profile read: the meter sent a {kind} row of another shape: {row!r}")
    out: dict = {"rtc": row[0]}
    for (name, scale), v in zip(cols, row[1:], strict=True):
        out[name] = v / scale if scale != 1 else v
    if kind == "billing" and not out["max_demand_rtc"]:
        out["max_demand_rtc"] = None  # (0: the meter did not know when)
    return out


async def profile(link: MeterLink, kind: str, since: int = 0, until: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """The meter's block load, daily load or billing profile rows stamped after `since` (RTC s) and up to `until`,
    oldest first, page by page: {kind, held, rows: [{rtc, figures...}]}."""
    rows: list[dict] = []
    held = 0
    while True:
        try:
            rsp = await link.request(ProfileRead(kind=kind, since=since), "profile read", retries=READ_RETRIES)
        except DeviceRefused as e:
            raise _group_refusal(e, "profile read") from e
        if rsp.kind != kind:
            raise Refused(f"profile read: asked for the {kind} profile, the meter sent its {rsp.kind!r}")
        held = rsp.held
        page = [profile_row(kind, r) for r in rsp.rows]
        if any(r["rtc"] <= since for r in page):  # (a next page asked from the same time would never end)
            raise Refused(f"profile read: the meter sent rows stamped at or before {since}, which were not asked for")
        rows += [r for r in page if until is None or r["rtc"] <= until]
        since = max((r["rtc"] for r in page), default=since)  # the next page: rows stamped after this one's latest
        if until is not None and since > until:
            return {"kind": kind, "held": held, "rows": rows}
        if progress is not None:
            progress(len(rows), held)
        if not rsp.more or not page:
            return {"kind": kind, "held": held, "rows": rows}


async def read(link: MeterLink) -> dict:
    try:
        rsp = await link.request(MeterRead(), "meter read", retries=READ_RETRIES)
    except DeviceRefused as e:
        raise _group_refusal(e, "meter read") from e
    return convert(rsp.model_dump(exclude={"header", "version", "sequence", "smp_data"}))


async def calibration(link: MeterLink) -> dict:
    rsp = await link.request(CalibrationRead(), "calibration read", retries=READ_RETRIES)
    return rsp.model_dump(exclude={"header", "version", "sequence", "smp_data"})


async def calibrate(link: MeterLink, authority: Authority, step: str, v: float, i: float, pf: float, n: int = 10,
                    progress: Callable[[int, int], None] | None = None) -> dict:
    """Start a calibration step and wait until the meter has averaged `n` readings and stored new constants.
    Returns the meter's calibration state ({state: done, constants, measured, ...}); CalibrationFailed otherwise."""
    args = {"step": step, "v": float(v), "i": float(i), "pf": float(pf), "n": int(n)}
    env = await authority.envelope(link, CMD_CALIBRATE, args)
    try:
        await link.request(CalibrateWrite(step=step, v=float(v), i=float(i), pf=float(pf), n=int(n), envelope=env),
                           "calibrate")
    except DeviceRefused as e:
        err = _group_refusal(e, "calibrate")
        if isinstance(err, CalibrationFailed):
            state = await calibration(link)
            last = state.get("last") or {}
            raise CalibrationFailed(f"calibrate {step}: refused ({last.get('error', 'bad request')})") from e
        raise err from e
    deadline = time.monotonic() + n * 3 + 10
    while True:
        # not faster: each exchange holds an emulated meter's clock to real time for 2 s (docs/emulator.md)
        await asyncio.sleep(POLL_S)
        state = await calibration(link)
        last = state.get("last") or {}
        if progress is not None:
            progress(int(last.get("got", n if last.get("state") == "done" else 0)), n)
        if last.get("state") == "done":
            return state
        if last.get("state") in ("failed", "refused"):
            raise CalibrationFailed(f"calibrate {step}: {last.get('error')} (measured V, I, P, Q = "
                                    f"{last.get('measured')})")
        if time.monotonic() > deadline:
            raise CalibrationFailed(f"calibrate {step}: the meter did not finish ({last})")
