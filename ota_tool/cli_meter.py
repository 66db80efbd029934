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
