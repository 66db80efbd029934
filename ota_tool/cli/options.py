"""What ota's commands share: the port, key and --json options, and how a result or a failure is shown.

The --json rule: a command given --json prints exactly one JSON object on stdout, on success (`"ok": true` and the
command's fields) and on failure (`"ok": false, "exit", "error", "message"` and, where there is one, `"reason"`);
messages for people go to stderr."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from .. import link_url
from ..errors import BadInput, OtaError
from ..link_url import BAUD_RATES, MAX_TIMEOUT
from .exits import Exit, exit_for, kind

PORT_HELP = ("The meter's link: a serial port (/dev/ttyUSB0, /dev/ttyACM0, an emulator's STATE/console), or "
             "udp://HOST[:1337] (SMP over UDP through an IP route to the meter; raise --timeout on NB-IoT), or "
             "modem:///dev/ttyUSB2?to=ADDR[:1337][&apn=NAME][&from=LPORT] (SMP over UDP through a USB NB-IoT modem's "
             "AT port; raise --timeout).")
JSON_KEY = "ota.json"


class Finite(click.FloatRange):
    """A float range that also refuses nan and the infinities (click's FloatRange lets nan through)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v


class Text(click.ParamType):
    """A non-empty string without control characters (a meter id, a command name)."""

    name = "text"

    def __init__(self, pattern: str | None = None, what: str = "text"):
        import re

        self.pattern = re.compile(pattern) if pattern else None
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        s = str(value)
        if not s.strip() or any(ord(c) < 32 for c in s):
            self.fail(f"{value!r}: give a non-empty {self.what}", param, ctx)
        if self.pattern is not None and not self.pattern.fullmatch(s):
            self.fail(f"{value!r} is not a {self.what}", param, ctx)
        return s


def _json_seen(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[JSON_KEY] = bool(value) or ctx.meta.get(JSON_KEY, False)
    return value


def json_option(f=None, *, help: str = "One JSON object on stdout, on success and on failure (no progress bar)."):
    def deco(f):
        return click.option("--json", "as_json", is_flag=True, is_eager=True, callback=_json_seen, help=help)(f)

    return deco(f) if f is not None else deco


def _timeout(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise click.BadParameter(f"{value:g}: give seconds above 0 and at most {MAX_TIMEOUT:g}")
    return value


def _baud(_ctx: click.Context, _param: click.Parameter, value: int) -> int:
    if value not in BAUD_RATES:
        raise click.BadParameter(f"{value} is not a serial line rate; use one of {', '.join(map(str, BAUD_RATES))}")
    return value


def check_link(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> str | None:
    """--port is a link URL: one line naming what is wrong with it (exit 2), before anything else is done."""
    if value is not None:
        link_url.parse(value)  # BadInput ends in fail(): "ota: ...", exit 2
    return value


def serial_only(port: str, what: str) -> str:
    """Commands that need a serial port (the REPL, the console text): BadInput for any other link."""
    if link_url.parse(port).kind != link_url.SERIAL:
        raise BadInput(f"--port {port}: {what} needs the meter's serial port (a device path)")
    return port


def port_options(f):
    f = click.option("--timeout", type=Finite(0, MAX_TIMEOUT, min_open=True), default=5.0, show_default=True, callback=_timeout,
                     help="Seconds to wait for each answer.")(f)
    f = click.option("--baud", type=int, default=115200, show_default=True, callback=_baud, help="Line rate.")(f)
    return click.option("--port", required=True, callback=check_link, help=PORT_HELP)(f)


def auth_options(f=None, *, key_help: str = "Command-role private key: signs what a locked meter asks to be signed.",
                 expires: bool = False, envelopes: bool = True):
    """--key/--passphrase-env/--envelope (and --expires-in for what --key signs); `@auth_options` or with arguments."""

    def deco(f):
        if expires:
            f = click.option("--expires-in", type=click.IntRange(60, 366 * 86400), default=3600, show_default=True,
                             help="Seconds (meter clock) until what --key signs expires.")(f)
        if envelopes:
            f = click.option("--envelope", "envelopes", multiple=True,
                             type=click.Path(dir_okay=False, exists=True, path_type=Path),
                             help="Pre-signed command envelope from the head-end (`ota envelope`); repeatable.")(f)
        f = click.option("--passphrase-env", metavar="VAR", help="Passphrase variable for --key.")(f)
        return click.option("--key", "command_key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                            help=key_help)(f)

    return deco(f) if f is not None else deco


def authority(command_key: Path | None, passphrase_env: str | None, envelopes: tuple[Path, ...],
              expires_in: int | None = None):
    from .. import keys
    from ..authority import Authority

    key = None
    if command_key is not None:
        key = keys.load_private(command_key, keys.passphrase_from_env(passphrase_env))
    a = Authority(key, envelopes)
    if expires_in is not None:
        a.expires_in = expires_in
    return a


def json_mode() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get(JSON_KEY))


def emit(obj: dict, text: str | Callable[[], str] | None = None) -> None:
    """A command's result: one JSON object with --json, else its text."""
    if json_mode():
        click.echo(json.dumps({"ok": True, **obj}, default=_plain))
    elif text is not None:
        click.echo(text() if callable(text) else text)


def note(message: str) -> None:
    """Something the user should see while a command works (stderr, also with --json)."""
    click.echo(f"ota: note: {message}", err=True)


def _plain(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return v.hex()
    return str(v)


def fail(e: BaseException) -> NoReturn:
    """Show a failure as one line (and one JSON object with --json) and exit with its code."""
    code = exit_for(e)
    if isinstance(e, KeyboardInterrupt):
        message = "interrupted" + (f": {e}" if str(e) else "")  # (where it stood, when the command says)
    elif isinstance(e, click.ClickException):
        message = e.format_message()
    else:
        message = str(e) or type(e).__name__
    if code == Exit.ERROR and not isinstance(e, OtaError | click.ClickException):
        message = f"internal error: {type(e).__name__}: {message} (please report it)"
    lines = message.strip().splitlines() or [""]
    click.echo(f"ota: {lines[0]}", err=True)
    console = getattr(e, "console", None)
    if console and not json_mode():
        click.echo("ota: the meter printed:", err=True)
        for ln in console[-12:]:
            click.echo(f"  | {ln}", err=True)
    if json_mode():
        out: dict = {"ok": False, "exit": int(code), "error": kind(e), "message": " ".join(lines)}
        for attr in ("reason", "tried", "running", "console"):
            v = getattr(e, attr, None)
            if v:
                out[attr] = v
        click.echo(json.dumps(out, default=_plain))
    sys.exit(int(code))


@contextmanager
def bar(description: str, total: int | None, columns: str = "bytes"):
    """A progress bar on stderr (none with --json); yields update(done, total)."""
    if json_mode():
        yield lambda done, total=None: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    cols = ((BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()) if columns == "bytes"
            else (BarColumn(), MofNCompleteColumn()))
    with Progress("[progress.description]{task.description}", *cols, console=Console(stderr=True)) as p:
        task = p.add_task(description, total=total)
        yield lambda done, total=None: p.update(task, completed=done, **({"total": total} if total else {}))


def read_input(path: Path, what: str) -> bytes:
    """An input file's bytes; BadInput naming it when it cannot be read or is empty."""
    from ..errors import BadInput

    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read the {what} ({e.strerror})") from e
    if not data:
        raise BadInput(f"{path}: the {what} file is empty")
    return data


def write_output(path: Path, data: bytes) -> None:
    """Write an output file whole (a temporary file, then a rename); BadInput naming it when it cannot be."""
    import os

    from ..errors import BadInput

    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise BadInput(f"{path}: cannot write it ({e.strerror})") from e
