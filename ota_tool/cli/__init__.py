"""ota: the field and firmware tool for meterkit meters. The commands live by subject (image, trust, device,
meter, supply); they parse options, call the library (ota_tool/*.py) and render its results and failures
(options.py: the --json rule; exits.py: the exit codes)."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Any

import click

from .exits import table_text
from .options import JSON_KEY, fail


def _version() -> str:
    try:
        return _dist_version("meterkit")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


# The module (ota_tool/cli/NAME.py) that holds each command, imported when the command runs or for --help: a
# command loads its own libraries only (`ota sign` no SMP client, `ota info` no image parser), so ota starts in half
# the time. The `meter` group's subcommands are spread over the modules in _JOINS. test_cli_rules checks this table
# against every module's COMMANDS.
COMMAND_MODULES = {
    **dict.fromkeys(("keygen", "getpub", "build", "sign", "verify", "inspect", "envelope", "token"), "image"),
    "trust": "trust",
    **dict.fromkeys(("info", "echo", "status", "push", "confirm", "reset", "erase", "console", "provision"), "device"),
    "meter": "meter",
}
_JOINS = {"meter": ("network", "supply")}


class OtaGroup(click.Group):
    """Every failure below ends here: one line (one JSON object with --json) and a documented exit code, never a
    traceback. Commands load lazily (COMMAND_MODULES)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            from importlib import import_module

            mod = COMMAND_MODULES[cmd_name]
            for name in (mod, *_JOINS.get(mod, ())):
                for command in import_module(f"{__name__}.{name}").COMMANDS:
                    self.add_command(command)
        return self.commands.get(cmd_name)

    def main(self, args: Any = None, *a: Any, **kw: Any) -> Any:
        self._raw = list(sys.argv[1:] if args is None else args)
        return super().main(args, *a, **kw)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except click.ClickException as e:
            if "--json" in getattr(self, "_raw", []):
                ctx.meta[JSON_KEY] = True
                fail(e)
            raise
        except OSError as e:
            from ..errors import BadInput

            name = f"{e.filename}: " if e.filename else ""
            fail(BadInput(f"{name}{e.strerror or e}"))
        except BaseException as e:  # noqa: BLE001 - the one place that turns any failure into an exit code
            fail(e)


@click.group(cls=OtaGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="\b\nExit codes (docs/field-team.md):\n" + table_text())
@click.version_option(_version(), "-V", "--version", prog_name="ota", message="%(prog)s %(version)s")
def main() -> None:
    """Field and firmware tool for meterkit meters: keys, build, sign, verify, inspect; push images and read
    and operate meters over a serial port. Every command that talks to a meter takes --json."""
    # smpclient logs every retried timeout with the whole request; ota reports lost frames itself
    logging.getLogger("smpclient").setLevel(logging.CRITICAL)



__all__ = ["main"]
