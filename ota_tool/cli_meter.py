"""`ota meter ...`: read a meter's values and registers, calibrate it (library: ota_tool/metering.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from .link import MeterLink, run

PORT_HELP = "Serial port of the meter: /dev/ttyUSB0, /dev/ttyACM0, or an emulator's STATE/console."


def _port(f):
    f = click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for each answer.")(f)
    f = click.option("--baud", default=115200, show_default=True, help="Line rate.")(f)
    return click.option("--port", required=True, help=PORT_HELP)(f)


@click.group()
def meter() -> None:
    """Read a meter's measurements and registers; calibrate it."""


def _table(data: dict) -> str:
    from .metering import ENERGY, INSTANT, NAMES, UNITS

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
@_port
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object (one per line with --watch): {obis: {code: value in SI units}, ...}.")
@click.option("--watch", is_flag=True, help="Read again every --interval seconds until Ctrl-C.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between reads with --watch.")
def read_cmd(port: str, baud: int, timeout: float, as_json: bool, watch: bool, interval: float) -> None:
    """Instantaneous values (V, A, W, var, VA, PF, Hz) and energy registers (Wh, varh, VAh) keyed by OBIS code."""
    from . import metering
    from .cli import _guard

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            while True:
                data = await metering.read(link)
                if as_json:
                    click.echo(json.dumps(data))
                else:
                    if watch:
                        click.echo("\x1b[2J\x1b[H" if sys.stdout.isatty() else "", nl=False)
                        click.echo(time.strftime("%H:%M:%S"))
                    click.echo(_table(data))
                if not watch:
                    return
                import asyncio

                await asyncio.sleep(interval)

    try:
        _guard(lambda: run(go()))
    except KeyboardInterrupt:
        pass


@meter.command()
@_port
@click.option("--step", type=click.Choice(["gain", "phase", "offset"]), required=True,
              help="gain: at PF 1 (sets V, I and P gains); phase: at a low PF such as 0.5 inductive (sampled "
                   "front ends); offset: with no load.")
@click.option("--voltage", type=float, required=True, help="Reference voltage, V RMS.")
@click.option("--current", type=float, required=True, help="Reference current, A RMS (0 for --step offset).")
@click.option("--pf", type=float, default=1.0, show_default=True,
              help="Reference power factor: + inductive (lagging), - capacitive (leading).")
@click.option("--readings", default=10, show_default=True, help="Readings (one a second) to average, 3..60.")
@click.option("--key", "command_key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Command-role private key (a locked meter needs a signed meter.calibrate).")
@click.option("--passphrase-env", metavar="VAR")
@click.option("--envelope", "envelopes", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Pre-signed meter.calibrate envelope; repeatable.")
@click.option("--json", "as_json", is_flag=True)
def calibrate(port: str, baud: int, timeout: float, step: str, voltage: float, current: float, pf: float,
              readings: int, command_key: Path | None, passphrase_env: str | None, envelopes: tuple[Path, ...],
              as_json: bool) -> None:
    """Calibrate one step at reference conditions the meter sees NOW (keep the source steady until it is done).

    \b
    Factory order: --step offset (no load), then --step gain (e.g. 230 V, 5 A, PF 1), then --step phase
    (e.g. 230 V, 5 A, PF 0.5 inductive). The constants go to meter/calibration.json and survive updates.
    Exit 8 when the meter refuses the reference or the readings do not fit it; 9 not authorised.
    """
    from . import metering
    from .cli import _authority, _guard

    authority = _authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, max(timeout, 5.0)) as link:
            if as_json:
                return await metering.calibrate(link, authority, step, voltage, current, pf, readings)
            from rich.progress import BarColumn, MofNCompleteColumn, Progress

            with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                          transient=True) as bar:
                task = bar.add_task(f"calibrating {step}", total=readings)
                return await metering.calibrate(link, authority, step, voltage, current, pf, readings,
                                                progress=lambda got, n: bar.update(task, completed=got, total=n))

    state = _guard(lambda: run(go()))
    if as_json:
        click.echo(json.dumps(state))
    else:
        consts = ", ".join(f"{k}={v:.6g}" for k, v in state["constants"].items())
        click.echo(f"calibrated {step}: {consts}")


@meter.command("calibration")
@_port
@click.option("--json", "as_json", is_flag=True)
def calibration_cmd(port: str, baud: int, timeout: float, as_json: bool) -> None:
    """Show the calibration constants in use and where they come from (board defaults or calibrated)."""
    from . import metering
    from .cli import _guard

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            return await metering.calibration(link)

    state = _guard(lambda: run(go()))
    if as_json:
        click.echo(json.dumps(state))
    else:
        click.echo(f"{state['front']} front end, {state['source']}")
        for k, v in state["constants"].items():
            click.echo(f"  {k:12} {v:.6g}")


# -- the supply: relay, credit, settings, clock, events (library: ota_tool/supply.py) ------------------------------
def _signed(f):
    from .cli import _auth_options

    return _auth_options(f, key_help="Command-role private key (every supply change is signed, on every meter).",
                         expires=True)


def _auth(command_key: Path | None, passphrase_env: str | None, envelopes: tuple[Path, ...], expires_in: int):
    from .cli import _authority

    a = _authority(command_key, passphrase_env, envelopes)
    a.expires_in = expires_in
    return a


def _show_status(st: dict) -> str:
    from .supply import STATES

    relay = st["relay"]
    lines = [f"supply      {'ON' if st['output'] else 'OFF'} — class 70 state {st['state']} "
             f"({STATES.get(st['state'], '?')}), control mode {st['mode']}"
             + (f", because: {st['reason']}" if st["reason"] else ""),
             f"relay       feedback {relay['feedback']}, {relay['operations']} operations"
             + (f", FAULT: {relay['fault']}" if relay["fault"] else "")]
    c = st["credit"]
    if c is None:
        lines.append("credit      none kept on this meter (no tariff set)")
    else:
        left = c["time_left_s"]
        shown = "not falling" if left is None else f"{left / 3600:.1f} h at {c['avg_w'] or 0:.0f} W"
        lines.append(f"credit      balance {c['balance'] / 100:.2f}, allowance {c['allowance'] / 100:.2f}, "
                     f"rate {c['rate'] / 100:.2f}/kWh, time left {shown}")
        em = (f"taken {c['emergency_taken'] / 100:.2f}" if c["emergency_taken"] else
              f"available {c['emergency_available'] / 100:.2f}")
        lines.append(f"            emergency {em}, "
                     f"last token id {c['top_tid']}, {'in' if c['window'] else 'outside'} a no-disconnection window"
                     + ("" if c["record"] == "ok" else ", CREDIT RECORD DAMAGED"))
    lim = st["load_limit"]
    lines.append(f"load limit  {lim['threshold_w']} W" + (" (off)" if not lim["threshold_w"] else "")
                 + f", trips {lim['trips']}" + (", LOCKED until a remote reconnect" if lim["locked"] else "")
                 + (", tripped" if lim["tripped"] else ""))
    clk = st["clock"]
    lines.append("clock       " + (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(st["rtc"])) if st["clock_known"]
                                   else "NOT SET (credit never disconnects until it is)")
                 + (f", last set drift {clk.get('drift_s')} s" if clk.get("sets") else ""))
    cover = st.get("cover")
    if cover is not None:
        lines.append(f"cover       {'OFF (open)' if cover['open'] else 'on'}, {cover['openings']} openings since "
                     "the boot")
    if st["last_refusal"]:
        lines.append(f"last refusal {st['last_refusal']}")
    return "\n".join(lines)


@meter.command("relay")
@_port
@_signed
@click.argument("action", type=click.Choice(["disconnect", "reconnect", "status"]))
@click.option("--json", "as_json", is_flag=True)
def relay_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
              envelopes: tuple[Path, ...], expires_in: int, action: str, as_json: bool) -> None:
    """Remote disconnect or reconnect (signed supply.relay), or show the supply's status.

    \b
    In the prepaid mode 6 a remote reconnect makes the supply ready; the consumer's button closes it.
    Exit 9 not authorised, 14 the control mode allows no such change now.
    """
    from . import supply
    from .cli import _guard

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            if action != "status":
                await supply.relay(link, auth, action)
            return await supply.status(link)

    st = _guard(lambda: run(go()))
    click.echo(json.dumps(st) if as_json else _show_status(st))


@meter.command("topup")
@_port
@_signed
@click.option("--amount", type=click.IntRange(1, 100_000_000), help="Minor currency units (paise): 50000 = 500.00.")
@click.option("--tid", type=click.IntRange(1), help="Token id (default: one above the meter's last).")
@click.option("--token", "token_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A pre-signed token from `ota token` (instead of --key and --amount).")
@click.option("--json", "as_json", is_flag=True)
def topup_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
              envelopes: tuple[Path, ...], expires_in: int, amount: int | None, tid: int | None,
              token_file: Path | None, as_json: bool) -> None:
    """Add credit: sign a token with the command key, or send a pre-signed one (--token).

    Exit 14 when the meter refuses the token (replayed, too old, expired, wrong meter, altered ...: the reason is
    named), 9 when it refuses the signer.
    """
    from . import keys, supply
    from .cli import _guard

    if (token_file is None) == (command_key is None) or (command_key is not None and amount is None):
        raise click.UsageError("give --token FILE, or --key KEY with --amount")

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            if token_file is not None:
                token = token_file.read_bytes()
            else:
                from .meter_info import meter_id

                key = keys.load_private(command_key, keys.passphrase_from_env(passphrase_env))
                n = tid if tid is not None else await supply.next_tid(link)
                token = supply.make_token(key, await meter_id(link), n, amount, expires_in=max(expires_in, 60))
            t0 = time.monotonic()
            r = await supply.topup(link, token)
            r["round_trip_s"] = round(time.monotonic() - t0, 3)
            return r

    r = _guard(lambda: run(go()))
    if as_json:
        click.echo(json.dumps(r))
    else:
        click.echo(f"token {r['tid']}: +{r['amount'] / 100:.2f}, balance {r['balance'] / 100:.2f}, supply "
                   f"{'ON' if r['output'] else 'OFF'}")


@meter.command("tariff")
@_port
@_signed
@click.option("--set", "settings_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="JSON file of supply settings to send (signed supply.config); without it, show them.")
@click.option("--json", "as_json", is_flag=True)
def tariff_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
               envelopes: tuple[Path, ...], expires_in: int, settings_file: Path | None, as_json: bool) -> None:
    """Show or set the supply settings: tariff, no-disconnection windows, allowance, alert thresholds, emergency
    credit, load limit, control mode (docs/relay-and-credit.md). The meter checks them whole and names the first
    bad field (exit 14); nothing changes then."""
    from . import supply
    from .cli import _guard

    new = _json_object(settings_file)
    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            if new is not None:
                await supply.configure(link, auth, new)
            return await supply.settings(link)

    click.echo(json.dumps(_guard(lambda: run(go())), indent=None if as_json else 1))


def _json_object(path: Path | None) -> dict | None:
    """The JSON object in a --set file (None without one); a file that is not one is a usage error (exit 2)."""
    if path is None:
        return None
    try:
        obj = json.loads(path.read_text())
    except ValueError as e:
        raise click.BadParameter(f"{path}: not JSON: {e}", param_hint="--set") from e
    if not isinstance(obj, dict):
        raise click.BadParameter(f"{path}: not a JSON object", param_hint="--set")
    return obj


@meter.command("calendar")
@_port
@_signed
@click.option("--set", "calendar_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="JSON file with any of tz_offset_min, tou, tou_weekend to change (signed meter.calendar); "
                   "without it, show the calendar.")
@click.option("--json", "as_json", is_flag=True)
def calendar_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                 envelopes: tuple[Path, ...], expires_in: int, calendar_file: Path | None, as_json: bool) -> None:
    """Show or change the metering calendar: the local time offset and the TOU zone tables that the energy
    registers and the tariff's TOU rates follow (docs/relay-and-credit.md). Example file:
    {"tou": [["00:00", 1], ["18:00", 2], ["22:00", 1]], "tou_weekend": null}. The meter checks the change whole
    and names the first bad field (exit 14); nothing changes then. It applies from the next reading."""
    from . import supply
    from .cli import _guard

    new = _json_object(calendar_file)
    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            if new is not None:
                return await supply.set_calendar(link, auth, new)
            return await supply.calendar(link)

    cal = _guard(lambda: run(go()))
    if as_json:
        click.echo(json.dumps(cal))
        return
    off = cal["tz_offset_min"]
    click.echo(f"local time  UTC{'+' if off >= 0 else '-'}{abs(off) // 60:02d}:{abs(off) % 60:02d}")
    click.echo("weekdays    " + _zones(cal["tou"]))
    click.echo("weekend     " + (_zones(cal["tou_weekend"]) if cal["tou_weekend"] else "as weekdays"))


def _zones(table: list) -> str:
    return ", ".join(f"{start} zone {zone}" for start, zone in table)


@meter.command("clock")
@_port
@_signed
@click.option("--time", "at", type=int, help="UTC seconds since 1970 (default: this computer's clock).")
@click.option("--json", "as_json", is_flag=True)
def clock_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
              envelopes: tuple[Path, ...], expires_in: int, at: int | None, as_json: bool) -> None:
    """Set the meter's clock (signed clock.set) and show how far it had drifted."""
    from . import supply
    from .cli import _guard

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            return await supply.set_clock(link, auth, at)

    r = _guard(lambda: run(go()))
    was = "not set" if r["drift_s"] is None else f"{r['drift_s']:+d} s off"
    click.echo(json.dumps(r) if as_json else f"clock set; it was {was}")


@meter.command("emergency")
@_port
@_signed
def emergency_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                  envelopes: tuple[Path, ...], expires_in: int) -> None:
    """Grant the consumer's emergency credit (once until the next top-up; the button does the same)."""
    from . import supply
    from .cli import _guard

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            return await supply.emergency(link, auth)

    click.echo(f"balance {_guard(lambda: run(go()))['balance'] / 100:.2f}")


@meter.command("credit-reset")
@_port
@_signed
@click.option("--balance", type=int, required=True, help="The head-end's balance for this meter, minor units.")
@click.option("--top-tid", type=click.IntRange(0), required=True,
              help="The last token id the head-end issued to this meter: no token at or below it counts again.")
@click.option("--force", is_flag=True,
              help="Reset a credit record that is not damaged (signed with the command; the meter refuses a reset of "
                   "a healthy record without it). Token ids the meter has accepted stay spent either way.")
@click.option("--json", "as_json", is_flag=True)
def credit_reset_cmd(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
                     envelopes: tuple[Path, ...], expires_in: int, balance: int, top_tid: int, force: bool,
                     as_json: bool) -> None:
    """Start a new credit record after the meter reported it damaged (event 412, status "CREDIT RECORD DAMAGED"):
    until then it refuses every top-up rather than guess which tokens were spent. On a healthy record the meter
    refuses it (exit 14, "not allowed now") unless --force; it records event 413 with the old and new balance."""
    from . import supply
    from .cli import _guard

    auth = _auth(command_key, passphrase_env, envelopes, expires_in)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            return await supply.credit_reset(link, auth, balance, top_tid, force)

    r = _guard(lambda: run(go()))
    click.echo(json.dumps(r) if as_json else f"credit record reset: balance {r['balance'] / 100:.2f}, "
                                              f"last token id {r['top_tid']}")


@meter.command("events")
@_port
@click.option("--since", default=0, show_default=True, help="Only events with a higher sequence number.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of {seq, code, event, rtc, detail}.")
def events_cmd(port: str, baud: int, timeout: float, since: int, as_json: bool) -> None:
    """The meter's event log (IS 15959 style codes, oldest first)."""
    from . import supply
    from .cli import _guard

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            return await supply.events(link, since)

    evs = _guard(lambda: run(go()))
    if as_json:
        click.echo(json.dumps(evs))
        return
    for e in evs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["rtc"])) if e["rtc"] else "(clock unknown)    "
        click.echo(f"{e['seq']:6} {when} {e['code']} {e['event']:22} {e['detail']}")
