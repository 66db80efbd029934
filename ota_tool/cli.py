"""ota: talk to meters over a serial port (issue-by-issue this grows keys, build, sign, verify, push)."""

from __future__ import annotations

import json
import sys

import click

from . import meter_info
from .errors import OtaError
from .link import MeterLink, run

PORT_HELP = "Serial port of the meter: /dev/ttyUSB0, /dev/ttyACM0, or an emulator's STATE/console."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Field and firmware tool for meterkit meters.

    \b
    Exit codes: 0 ok, 1 other error, 2 usage, 3 no device (port missing or busy), 4 the meter did not answer
    in time, 5 the meter refused the request (its SMP error code is shown).
    """


def _port_options(f):
    f = click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for each answer.")(f)
    f = click.option("--baud", default=115200, show_default=True, help="Line rate.")(f)
    return click.option("--port", required=True, help=PORT_HELP)(f)


def _guard(fn):
    try:
        return fn()
    except OtaError as e:
        click.echo(f"ota: {e}", err=True)
        sys.exit(e.exit_code)


@main.command()
@_port_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def info(port: str, baud: int, timeout: float, as_json: bool) -> None:
    """Show what the meter is: board, meter id, app version, MicroPython version, SMP buffer size."""

    async def go() -> dict:
        async with MeterLink(port, baud, timeout) as link:
            return await meter_info.read_info(link)

    data = _guard(lambda: run(go()))
    if as_json:
        click.echo(json.dumps(data))
    else:
        width = max(len(k) for k in data)
        for k, v in data.items():
            click.echo(f"{k:<{width}}  {v}")


@main.command()
@_port_options
@click.argument("text", default="hello")
def echo(port: str, baud: int, timeout: float, text: str) -> None:
    """Send TEXT to the meter's SMP echo and print what comes back (a link check)."""

    async def go() -> str:
        async with MeterLink(port, baud, timeout) as link:
            return await meter_info.echo(link, text)

    click.echo(_guard(lambda: run(go())))


if __name__ == "__main__":
    main()
