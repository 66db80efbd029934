"""`ota meter ...`: read a meter's values and registers, calibrate it, read its event log (library:
ota_tool/metering.py, supply.py). The supply's commands (relay, credit, settings, clock) are in supply.py."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..link import MeterLink, run
from ..supply_groups import LOGS
from .options import Finite, auth_options, authority, bar, emit, json_option, note, port_options


@click.group()
def meter() -> None:
    """Read a meter's measurements, registers and events; calibrate it; operate its supply."""


def _table(data: dict) -> str:
    from ..metering import ENERGY, INSTANT, NAMES, UNITS

    lines = []
    obis = data["obis"]
    order = [c for c in (*INSTANT, *ENERGY) if c in obis] + sorted(c for c in obis if c not in NAMES)
    for code in order:
        value = obis[code]
        unit = UNITS.get(code, "")
        if code in ENERGY:
            shown = f"{value:14.3f}"
        elif code == "1.0.13.7.0.255":
            shown = f"{value:14.3f}"
        else:
            shown = f"{value:14.2f}"
        lines.append(f"{code:16} {NAMES.get(code, ''):38} {shown} {unit}")
    clock = "clock set" if data["clock_known"] else "CLOCK NOT SET"
    lines.append(f"front end {data['front']}, {data['calibration']}, TOU zone {data['zone']}, {clock}, "
                 f"reading {data['age_ms']} ms old, registers saved {data['saved_ms_ago'] / 1000:.0f} s ago "
                 f"({data['registers']})" + (f", errors {data['errors']}" if data["errors"] else ""))
    return "\n".join(lines)



@meter.command("read")
@port_options
@json_option(help="One JSON object (one per line with --watch): {obis: {code: value in SI units}, ...}; on failure "
                  "one object with ok false.")
@click.option("--watch", is_flag=True, help="Read again every --interval seconds until Ctrl-C.")
@click.option("--interval", type=Finite(0.2, 86400), default=1.0, show_default=True,
              help="Seconds between reads with --watch.")
def read_cmd(port: str, baud: int, timeout: float, as_json: bool, watch: bool, interval: float) -> None:
    """Instantaneous values (V, A, W, var, VA, PF, Hz) and energy registers (Wh, varh, VAh) keyed by OBIS code."""
    import asyncio

    from .. import metering

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            while True:
                data = await metering.read(link)
                if watch and not as_json:
                    click.echo("\x1b[2J\x1b[H" if sys.stdout.isatty() else "", nl=False)
                    click.echo(time.strftime("%H:%M:%S"))
                emit(data, lambda data=data: _table(data))
                if not watch:
                    return
                await asyncio.sleep(interval)

    try:
        run(go())
    except KeyboardInterrupt:
        if not watch:
            raise


@meter.command()
@port_options
@click.option("--step", type=click.Choice(["gain", "phase", "offset"]), required=True,
              help="gain: at PF 1 (sets V, I and P gains); phase: at a low PF such as 0.5 inductive (sampled "
                   "front ends); offset: with no load.")
@click.option("--voltage", type=Finite(0, 1000), required=True, help="Reference voltage, V RMS.")
@click.option("--current", type=Finite(0, 1000), required=True,
              help="Reference current, A RMS (0 for --step offset).")
@click.option("--pf", type=Finite(-1, 1), default=1.0, show_default=True,
              help="Reference power factor: + inductive (lagging), - capacitive (leading).")
@click.option("--readings", type=click.IntRange(3, 60), default=10, show_default=True,
              help="Readings (one a second) to average.")
@auth_options(key_help="Command-role private key (a locked meter needs a signed meter.calibrate).")
@json_option
def calibrate(port: str, baud: int, timeout: float, step: str, voltage: float, current: float, pf: float,
              readings: int, command_key: Path | None, passphrase_env: str | None, envelopes: tuple[Path, ...],
              as_json: bool) -> None:
    """Calibrate one step at reference conditions the meter sees NOW (keep the source steady until it is done).

    \b
    Factory order: --step offset (no load), then --step gain (e.g. 230 V, 5 A, PF 1), then --step phase
    (e.g. 230 V, 5 A, PF 0.5 inductive). The constants go to meter/calibration.json and survive updates.
    Exit 14 when the meter refuses the reference or the readings do not fit it; 9 not authorised.
    """
    from .. import metering

    auth = authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, max(timeout, 5.0), note=note) as link:
            with bar(f"calibrating {step}", readings, columns="count") as progress:
                return await metering.calibrate(link, auth, step, voltage, current, pf, readings, progress=progress)

    state = run(go())
    emit(state, lambda: f"calibrated {step}: " + ", ".join(f"{k}={v:.6g}" for k, v in state["constants"].items()))


@meter.command("calibration")
@port_options
@json_option
def calibration_cmd(port: str, baud: int, timeout: float, as_json: bool) -> None:
    """Show the calibration constants in use and where they come from (board defaults or calibrated)."""
    from .. import metering

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            return await metering.calibration(link)

    state = run(go())
    emit(state, lambda: "\n".join([f"{state['front']} front end, {state['source']}"]
                                  + [f"  {k:12} {v:.6g}" for k, v in state["constants"].items()]))


def event_line(e: dict) -> str:
    """One event as `ota meter events` prints it: number, time, code and name, then a ring event's detail or a logged
    event's supply figures (each "?" where the meter had none)."""
    if "voltage" not in e:
        tail = e.get("detail", "")
    elif all(e[k] is None for k in ("voltage", "current", "pf", "import_wh")):
        tail = ""
    else:
        def fig(k: str, form: str) -> str:
            return "?" if e[k] is None else format(e[k], form)
        tail = f"{fig('voltage', '.2f')} V {fig('current', '.3f')} A PF {fig('pf', '+.3f')} {fig('import_wh', '.3f')} Wh"
    return (f"{e['seq']:6} "
            + (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["rtc"])) if e["rtc"] else "(clock unknown)    ")
            + f" {e['code']} {e['event']:22} {tail}").rstrip()


@meter.command("events")
@port_options
@click.option("--since", type=click.IntRange(0, 2**40), default=0, show_default=True,
              help="Only events with a higher sequence number.")
@click.option("--log", "log", type=click.Choice(LOGS), default=None,
              help="One of IS 15959's event logs instead of the recent events of every kind: the meter keeps each "
                   "category apart (the newest 50; non-rollover: the first 10 cover openings for its life).")
@json_option(help="One JSON object {events: [{seq, code, event, rtc, detail}]} (with --log: {log, total, depth, "
                  "events: [{seq, code, event, rtc, voltage, current, pf, import_wh}]}: the supply at each event, "
                  "null where the meter had no reading), or the failure.")
def events_cmd(port: str, baud: int, timeout: float, since: int, log: str | None, as_json: bool) -> None:
    """The meter's events (IS 15959 style codes, oldest first): the newest 64 of every kind, or one IS 15959 event
    log with --log."""
    from .. import supply

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            if log is None:
                return {"events": await supply.events(link, since)}
            return await supply.event_log(link, log, since)

    got = run(go())

    def text() -> str:
        lines = [event_line(e) for e in got["events"]]
        if log is not None:
            kept = f"{got['total']} logged, the first {got['depth']} kept" if log == "non-rollover" else \
                f"{got['total']} logged, the newest {got['depth']} kept"
            lines.insert(0, f"{log} event log: {kept}")
        return "\n".join(lines)

    emit(got, text)


class UtcTime(click.ParamType):
    """A moment as UTC, the way the meter's events print them: 2026-12-06T10:30:00Z (or a date, its midnight), or
    seconds since 1970."""

    name = "time"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        import calendar

        s = str(value).strip()
        if s.isdigit():
            return int(s)
        for form in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%d"):
            try:
                return calendar.timegm(time.strptime(s, form))
            except ValueError:
                pass
        self.fail(f"{value!r}: give a UTC time as 2026-12-06T10:30:00Z, a date as 2026-12-06, or seconds since 1970",
                  param, ctx)


def profile_line(kind: str, r: dict) -> str:
    """One load profile row as `ota meter profile` prints it."""
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["rtc"]))
    if kind == "block":
        return (f"{when}  {r['voltage']:7.2f} V {r['current']:8.3f} A  import {r['import_wh']:10.3f} Wh  "
                f"apparent {r['apparent_vah']:10.3f} VAh  export {r['export_wh']:10.3f} Wh")
    if kind == "billing":
        md_at = "when not known" if r["max_demand_rtc"] is None else \
            time.strftime("at %Y-%m-%d %H:%M", time.gmtime(r["max_demand_rtc"]))
        zones = " ".join(f"{r[f'import_zone_{z}_wh']:.3f}" for z in range(1, 9))
        return (f"{when}  import {r['import_wh']:14.3f} Wh  apparent {r['apparent_vah']:14.3f} VAh  "
                f"export {r['export_wh']:14.3f} Wh  PF {r['power_factor']:.3f}  max demand {r['max_demand_w']} W "
                f"{md_at}\n{'':18}import by TOU zone 1-8, Wh: {zones}")
    return (f"{when}  import {r['import_wh']:14.3f} Wh  apparent {r['apparent_vah']:14.3f} VAh  "
            f"export {r['export_wh']:14.3f} Wh")


@meter.command("profile")
@port_options
@click.option("--daily", is_flag=True, help="The daily load profile (the registers at each local midnight, 64 days "
                                           "or more) instead of the block load profile (each demand period's "
                                           "average V and I and energies, 12 days).")
@click.option("--billing", is_flag=True, help="The billing profile (a row per month, stamped with its billing date: "
                                             "the registers then, by TOU zone too, the month's average power factor "
                                             "and maximum demand; 12 months or more).")
@click.option("--from", "since", type=UtcTime(), default=None, help="Only rows stamped after this time (UTC).")
@click.option("--to", "until", type=UtcTime(), default=None, help="Only rows stamped up to this time (UTC).")
@json_option(help="One JSON object {kind, held, rows: [{rtc, voltage, current, import_wh, apparent_vah, export_wh}]} "
                  "(daily rows: {rtc, import_wh, apparent_vah, export_wh}; billing rows: {rtc, power_factor, "
                  "import_wh, import_zone_1_wh ... import_zone_8_wh, apparent_vah, export_wh, max_demand_w, "
                  "max_demand_rtc}), or the failure.")
def profile_cmd(port: str, baud: int, timeout: float, daily: bool, billing: bool, since: int | None,
                until: int | None, as_json: bool) -> None:
    """IS 15959's stored profiles, oldest first: the block load profile (a row per demand period, stamped with its
    end: average voltage and current, and the energy imported, apparent and exported in it); with --daily the daily
    load profile (the energy registers at each local midnight); with --billing the billing profile (a row per month,
    stamped with its billing date, the month's first local midnight). The same rows a DLMS client reads from
    1.0.99.1.0.255, 1.0.99.2.0.255 and 1.0.98.1.0.255 (docs/dlms.md); times in UTC."""
    from .. import metering

    if daily and billing:
        raise click.BadParameter("give --daily or --billing, not both", param_hint="--billing")
    kind = "daily" if daily else "billing" if billing else "block"
    if since is not None and until is not None and until < since:
        raise click.BadParameter("--to is before --from", param_hint="--to")

    async def go():
        async with MeterLink(port, baud, timeout, note=note) as link:
            with bar(f"{kind} profile", None, columns="count") as progress:
                return await metering.profile(link, kind, since or 0, until, progress=progress)

    got = run(go())
    what = "billing profile" if kind == "billing" else f"{kind} load profile"
    emit(got, lambda: "\n".join([f"{what}: {len(got['rows'])} rows of {got['held']} held"]
                                 + [profile_line(kind, r) for r in got["rows"]]))


COMMANDS = [meter]
