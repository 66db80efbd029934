"""meter-emu: run the meter firmware on the MicroPython VM as a dev board, and control a running one."""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from meterkit.boards import BoardError, list_boards

from . import control
from .control import ADVANCE_MAX_S, RUN_MAX_S
from .errors import EmulatorError
from .statedir import StateDir

EXIT_USAGE = 2
EXIT_BOARD = 3
EXIT_INTERNAL = 70  # a bug in meter-emu (EX_SOFTWARE): one line, METER_EMU_DEBUG=1 for the traceback
RTC_MIN = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)  # a board's RTC reads 2000-01-01 ...
RTC_MAX = datetime.datetime(2099, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)  # ... to 2099-12-31


def _fail(e: Exception | str, code: int) -> NoReturn:
    click.echo(f"meter-emu: {e}", err=True)
    sys.exit(code)


class Number(click.ParamType):
    """A finite number within lo..hi (above lo with lo_open), or one of `words`: NaN and the infinities are refused
    by name (click's FloatRange lets NaN through, and `inf` parses as a float)."""

    name = "number"

    def __init__(self, lo: float, hi: float, lo_open: bool = False, words: tuple[str, ...] = ()):
        self.lo, self.hi, self.lo_open, self.words = lo, hi, lo_open, words

    def _range(self) -> str:
        from .grid import num

        return f"{'more than ' if self.lo_open else ''}{num(self.lo)} to {num(self.hi)}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float) or value is None:
            return value
        if value in self.words:
            return value
        also = "".join(f" or '{w}'" for w in self.words)
        try:
            v = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not a number ({self._range()}{also})", param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number ({self._range()}{also})", param, ctx)
        if v < self.lo or (self.lo_open and v <= self.lo) or v > self.hi:
            self.fail(f"{value!r} is outside {self._range()}{also}", param, ctx)
        return v


class Speed(click.ParamType):
    """A device-time speed: a factor (world.SPEED_MIN..SPEED_MAX) or 'max'."""

    name = "speed"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .errors import ControlError
        from .world import parse_speed

        try:
            return parse_speed(value)
        except ControlError as e:
            self.fail(str(e).removeprefix("speed: "), param, ctx)


def _out_file(path: str | None, option: str, state_dir: str | None = None) -> None:
    """A file the emulator will write (--console-log, --record): refused at once, with exit 2, when it cannot be
    (a file in the state folder `run` is about to make is fine)."""
    if path is None:
        return
    p = Path(path)
    parent = p.parent
    if p.is_dir():
        _fail(f"{option} {path}: is a folder", EXIT_USAGE)
    if state_dir is not None and parent.resolve() == Path(state_dir).resolve() and not parent.exists():
        return
    if not parent.is_dir():
        _fail(f"{option} {path}: no such folder {str(parent)!r}", EXIT_USAGE)
    if not os.access(p if p.exists() else parent, os.W_OK):
        _fail(f"{option} {path}: not writable", EXIT_USAGE)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("meterkit")
    except PackageNotFoundError:
        v = "(not installed: run `make setup`)"
    click.echo(f"meter-emu {v}")
    ctx.exit(0)


class _Cli(click.Group):
    """Errors as one line each: a usage error as `meter-emu CMD: the problem (meter-emu CMD --help)`, exit 2; an
    unexpected exception (a bug) as one line with exit 70 and no traceback unless METER_EMU_DEBUG=1."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # `meter-emu`, `meter-emu ctl`: the help, as click shows it
            e.show()
            sys.exit(e.exit_code)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "meter-emu"
            click.echo(f"{where}: {e.format_message()} (see {where} --help)", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"meter-emu: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("meter-emu: interrupted", err=True)
            sys.exit(130)
        except Exception as e:
            if os.environ.get("METER_EMU_DEBUG"):
                raise
            click.echo(f"meter-emu: internal error, a bug: {type(e).__name__}: {e} (METER_EMU_DEBUG=1 shows where)",
                       err=True)
            sys.exit(EXIT_INTERNAL)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Print meter-emu's version and exit.")
def main() -> None:
    """Emulated smart-meter dev boards running the unmodified firmware on the real MicroPython VM.

    \b
    Exit codes: 0 ok, 1 replay diverged, 2 usage or a bad input file or value, 3 unknown or invalid board,
    4 state folder unusable (corrupt, not an emulator's, not writable), 5 state folder or port busy, 6 MicroPython
    VM missing, 7 no emulator running at the state folder, 8 request refused by the emulator, 70 internal error.
    """


@main.command()
@click.option("--board", required=True, help="Board id from boards/ (see `meter-emu boards`).")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False),
              help="State folder: flash image, RTC, endpoints. Created and provisioned on first run.")
@click.option("--baud", default=115200, show_default=True, type=click.IntRange(300, 4_000_000),
              help="Console line rate; the null-modem pump throttles to baud/10 bytes per second.")
@click.option("--speed", default="1", show_default=True, type=Speed(),
              help="Device-time speed: a factor 0.001..1000000 (e.g. 100) or 'max' (idle time is skipped).")
@click.option("--blank", is_flag=True, help="On first run leave the flash empty, like a board just flashed with "
              "MicroPython (then `ota provision` it over the console).")
@click.option("--scenario", "scenario_file", type=click.Path(dir_okay=False), default=None,
              help="Start this scenario file (grid and load steps in device time; docs/emulator.md) at power-up.")
@click.option("--seed", type=click.IntRange(0), default=None,
              help="Fix every random draw: a fresh state folder's unique id (hence the meter's component errors and "
                   "noise) and the console line's faults. Same seed, same inputs: the same run (docs/emulator.md).")
@click.option("--rtc", "rtc_start", default=None, metavar="YYYY-MM-DDTHH:MM:SSZ",
              help="Set a fresh state folder's RTC to this UTC time (default: the host's clock).")
@click.option("--for", "run_for", type=Number(0, RUN_MAX_S, lo_open=True), default=None, metavar="SECONDS",
              help="Halt the board after this many seconds of device time (power cuts count on the RTC) and exit 0: "
                   "a run with a fixed end, the same on an idle and a busy host.")
@click.option("--console-log", type=click.Path(dir_okay=False), default=None,
              help="Append everything the board prints on its console to this file.")
@click.option("--firmware", "firmware_dir", type=click.Path(file_okay=False, exists=True), default=None,
              metavar="DIR", help="Provision a fresh state folder with this firmware tree (boot.py, main.py, loader/, "
                                  "lib/, app/) instead of firmware/: try a change without building an image.")
@click.option("--record", "record", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Record every input the board gets (console bytes, ctl settings, power cuts, resets) with the "
                   "device time the firmware met it; `meter-emu replay FILE` runs it again (docs/emulator.md).")
@click.option("--modem", is_flag=True,
              help="Fit the NB-IoT module on the board's modem UART (a BC660K model, its radio link and the "
                   "meter's own UDP address in endpoints.json; docs/emulator.md). Off by default while the app does "
                   "not start its modem driver (issue 18): the model's heap would blur the board's heap figures.")
def run(board: str, state_dir: str, baud: int, speed: float | str, blank: bool, scenario_file: str | None,
        seed: int | None, rtc_start: str | None, run_for: float | None, console_log: str | None,
        firmware_dir: str | None, record: str | None, modem: bool) -> None:
    """Power up the emulated meter and run it until SIGINT/SIGTERM (or the end given by --for).

    Prints the console pty and the board once it boots (`console: /dev/pts/N board rpi_pico (rp2040)`) and
    writes STATE/endpoints.json ({"console": "/dev/pts/N", "control": ..., "board": ..., "mcu": ...});
    STATE/console links to the pty. What the board prints (SMP frames left out) goes to STATE/console.log:
    `meter-emu console --state STATE` shows it.
    """
    from .errors import ControlError
    from .grid import load_scenario
    from .meter import Meter
    from .radio import SCENARIO_KEYS

    rtc_start_ns = None
    if rtc_start is not None:
        try:
            t = datetime.datetime.strptime(rtc_start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            _fail(f"--rtc: expected a UTC time like 2026-01-01T00:00:00Z, got {rtc_start!r}", EXIT_USAGE)
        if not RTC_MIN <= t <= RTC_MAX:
            _fail(f"--rtc: a board's RTC reads 2000-01-01T00:00:00Z to 2099-12-31T23:59:59Z, got {rtc_start!r}",
                  EXIT_USAGE)
        rtc_start_ns = int(t.timestamp()) * 1_000_000_000
    scenario = None
    if scenario_file is not None:
        try:
            scenario = load_scenario(scenario_file, SCENARIO_KEYS)
        except ControlError as e:
            _fail(e, EXIT_USAGE)
        if not modem and "link." in json.dumps(scenario):
            _fail(f"{scenario_file}: its steps set link.* keys, which need the NB-IoT module: add --modem", EXIT_USAGE)
    _out_file(console_log, "--console-log", state_dir)
    _out_file(record, "--record", state_dir)
    if firmware_dir is not None:
        missing = [n for n in ("boot.py", "main.py", "loader", "app") if not (Path(firmware_dir) / n).exists()]
        if missing:
            _fail(f"--firmware {firmware_dir}: not a firmware tree (no {', '.join(missing)})", EXIT_USAGE)
    if record is not None and seed is None and not (Path(state_dir) / "meta.json").exists():
        import secrets

        seed = secrets.randbelow(2**31)  # a fresh meter's unique id comes from the seed: recorded, so replayed
    try:
        meter = Meter(board, StateDir(state_dir), baud=baud, speed=speed,
                      firmware_dir=None if firmware_dir is None else Path(firmware_dir).resolve(),
                      announce=lambda m: click.echo(m, err=not m.startswith("console:")), blank=blank,
                      scenario=scenario, seed=seed, rtc_start_ns=rtc_start_ns, run_for_s=run_for,
                      console_log=console_log, record=record, modem=modem)
        meter.run()
    except BoardError as e:
        _fail(e, EXIT_BOARD)
    except EmulatorError as e:
        _fail(e, e.exit_code)


@main.command()
@click.argument("recording_file", metavar="FILE", type=click.Path(dir_okay=False, exists=True))
@click.option("--state", "state_dir", type=click.Path(file_okay=False), default=None,
              help="State folder to replay in (must not exist; default: a temporary one, removed afterwards).")
@click.option("--console-log", type=click.Path(dir_okay=False), default=None,
              help="Write everything the board prints during the replay to this file.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def replay(recording_file: str, state_dir: str | None, console_log: str | None, as_json: bool) -> None:
    """Run a recorded run again (`run --record FILE`): the same start, every input at the same point and device
    time, as fast as the VM goes, with no tools attached. Reports whether the outcome is the same (flash image and
    console transcript) and the first divergence if the firmware changed.

    Exit codes: 0 same outcome, 1 diverged or a different outcome, 2 usage or a malformed recording, 3 unknown
    board, 6 MicroPython VM missing.
    """
    import shutil
    import tempfile

    from meterkit.boards import load_board

    from .errors import ControlError
    from .meter import Meter
    from .recording import Recording, firmware_tree_hash

    try:
        rec = Recording(recording_file)
    except ControlError as e:
        _fail(e, EXIT_USAGE)
    try:
        board = load_board(rec.board)
    except BoardError as e:
        _fail(f"{recording_file}: recorded on a board this emulator cannot run: {e}", EXIT_BOARD)
    _out_file(console_log, "--console-log")
    fresh = rec.start.get("fresh")
    flash = rec.flash()
    if fresh is None:
        size = board["flash"]["block_size"] * board["flash"]["block_count"]
        if flash is None or not isinstance(rec.start.get("meta"), dict):
            _fail(f"{recording_file}: the start has neither a fresh meter nor a flash image", EXIT_USAGE)
        if len(flash) != size:
            _fail(f"{recording_file}: the start's flash image is {len(flash)} bytes, {rec.board} has {size}",
                  EXIT_USAGE)
    tmp = None
    if state_dir is None:
        tmp = tempfile.mkdtemp(prefix="meter-emu-replay-")
        state_dir = str(Path(tmp) / "meter")
    st = StateDir(state_dir)
    if st.exists():
        _fail(f"{state_dir}: already holds a meter; a replay starts from the recording's start", EXIT_USAGE)
    if st.path.is_dir() and any(st.path.iterdir()):
        _fail(f"{state_dir}: not empty; a replay needs a new or an empty folder", EXIT_USAGE)
    if fresh is None:
        assert flash is not None
        try:
            st.path.mkdir(parents=True, exist_ok=True)
            st.flash.write_bytes(flash)
            st.write_meta(rec.start["meta"])
        except OSError as e:
            _fail(f"{state_dir}: cannot write the state folder ({e.strerror or e})", 4)
    from meterkit import layout

    changed = firmware_tree_hash(layout.FIRMWARE_DIR) != rec.firmware_tree
    try:
        meter = Meter(rec.board, st, speed="max", announce=lambda m: None if as_json else click.echo(m, err=True),
                      blank=bool(fresh and fresh.get("blank")), seed=fresh.get("seed") if fresh else None,
                      rtc_start_ns=fresh.get("rtc_ns") if fresh else None, console_log=console_log, replay=rec)
        meter.run()
    except BoardError as e:
        _fail(e, EXIT_BOARD)
    except EmulatorError as e:
        _fail(e, e.exit_code)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    res = dict(meter.replay_result or {"ok": False, "divergence": "the replay did not finish"})
    res["firmware_changed"] = changed
    if as_json:
        click.echo(json.dumps(res, indent=1))
    else:
        if res["ok"]:
            click.echo(f"replayed {res['delivered']} inputs over {res['boots']} boots: same outcome "
                       f"(flash {res['flash_sha256'][:16]}, console {res['console_sha256'][:16]})")
        else:
            click.echo(f"replay diverged: {res.get('divergence') or 'a different outcome'}")
            for k, same in (res.get("same") or {}).items():
                if not same:
                    click.echo(f"  {k.split('_')[0]} differs from the recording's")
        if changed:
            click.echo("note: the firmware tree differs from the one recorded")
    sys.exit(0 if res["ok"] else 1)


@main.command("modem")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False),
              help="The modem's folder: endpoints.json (its pty and address). Created when missing.")
@click.option("--link", "profile", default="none", show_default=True,
              type=click.Choice(["none", "nb1-good", "nb2-good", "nb1-edge"]),
              help="The modem's own radio link (the meter's is set with `ctl set link.*`).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the link's random draws.")
@click.option("--registration", default="home", show_default=True,
              type=click.Choice(["home", "roaming", "searching", "denied"]),
              help="What the network makes of the modem: registered (home or roaming) after 1 s, searching for "
                   "ever, or denied (+CEREG: 3).")
@click.option("--no-sim", is_flag=True, help="No SIM in the modem: AT+CPIN? answers +CME ERROR: 10.")
def field_modem(state_dir: str, profile: str, seed: int, registration: str, no_sim: bool) -> None:
    """A field engineer's USB NB-IoT modem (Quectel BG95 dialect) on a pty, until Ctrl-C: prints
    `modem: PTY address ADDR` and writes STATE/endpoints.json ({"modem": PTY, "address": ADDR, ...}). Its UDP
    sockets ("UDP SERVICE") live on ADDR, its own loopback address; datagrams reach an emulated meter at the
    meter's address (the meter's endpoints.json `udp`)."""
    import signal

    from . import field_modem as fm
    from .errors import ControlError
    from .radio import meter_address

    state = Path(state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
        eps = state / "endpoints.json"
        if eps.exists():
            try:
                pid = int(json.loads(eps.read_text()).get("pid", 0))
                os.kill(pid, 0)
                _fail(f"{state}: a modem is already running there (pid {pid})", 5)
            except (ValueError, OSError, AttributeError):
                pass  # a stale file from a modem that was killed
        address = meter_address(state)
        modem_ = fm.FieldModem(address, profile=profile, seed=seed, registration=registration, sim=not no_sim)
        fm.publish(state, fm.endpoints(modem_.path, address, os.getpid()))
    except ControlError as e:
        _fail(e, 4)
    except OSError as e:
        _fail(f"{state}: not usable ({e.strerror or e})", 4)

    def _stop(*_: object) -> None:
        modem_.stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    click.echo(f"modem: {modem_.path} address {address}")
    sys.stdout.flush()
    try:
        modem_.serve_forever()
    finally:
        modem_.close()
        (state / "endpoints.json").unlink(missing_ok=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def boards(as_json: bool) -> None:
    """List the boards the emulator can run."""
    from meterkit.boards import load_board

    rows = []
    for b in list_boards():
        d = load_board(b)
        rows.append({"id": b, "name": d["name"], "family": d["mcu"]["family"], "heap_bytes": d["heap_bytes"]})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    else:
        for r in rows:
            click.echo(f"{r['id']:24} {r['family']:8} heap {r['heap_bytes']:>7}  {r['name']}")


@main.command("console")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False),
              help="State folder of the emulator (running or not).")
@click.option("--lines", "-n", type=click.IntRange(0, 1_000_000), default=40, show_default=True,
              help="Print the last N lines.")
@click.option("--follow", "-f", is_flag=True, help="Then keep printing what the board prints, until Ctrl-C.")
def console(state_dir: str, lines: int, follow: bool) -> None:
    """What the board printed on its console: the loader's and the app's log lines, a crashing app's traceback, REPL
    output, with the SMP frames left out, and a `--- meter-emu: BOARD boot N, reset cause C ---` line at every boot.

    Kept in STATE/console.log across runs, at most about 2 MB (console.log.1 holds the previous megabyte). Exit 7
    when the folder is not an emulator's state folder."""
    import time

    from .consolelog import Reader
    from .errors import NotRunning

    st = StateDir(state_dir)
    if not st.path.is_dir():
        _fail(NotRunning(f"{st.path}: no such state folder"), NotRunning.exit_code)
    if not st.exists():
        _fail(NotRunning(f"{st.path}: not a meter-emu state folder (no meta.json)"), NotRunning.exit_code)
    reader = Reader(st.console_log_path)
    try:
        click.echo(reader.tail(lines), nl=False)
        while follow:
            text = reader.more()
            if text:
                click.echo(text, nl=False)
            else:
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()


@main.group()
@click.option("--state", "state_dir", type=click.Path(file_okay=False), default=None,
              help="State folder of the running emulator (needed by every verb).")
@click.pass_context
def ctl(ctx: click.Context, state_dir: str | None) -> None:
    """Control a running emulator (JSON output; exit 7 when none runs, 8 when it refuses).

    `meter-emu ctl VERB --help` works without --state."""
    ctx.obj = None if state_dir is None else StateDir(state_dir)


def _state(st: StateDir | None) -> StateDir:
    if st is None:
        raise click.UsageError("give the running emulator's state folder: meter-emu ctl --state DIR VERB ...",
                               ctx=click.get_current_context(silent=True))
    return st


def _call(st: StateDir | None, req: dict) -> None:
    from .meter import load_endpoints

    st = _state(st)
    try:
        ep = load_endpoints(st)
        rep = control.request(ep["control"], req)
    except EmulatorError as e:
        _fail(e if str(st.path) in str(e) else f"{st.path}: {e}", e.exit_code)
    click.echo(json.dumps(rep, indent=1))
    if not rep.get("ok"):
        click.echo(f"meter-emu: refused: {rep.get('error', 'no reason given')}", err=True)
        sys.exit(8)


@ctl.command()
@click.option("--largest-free", is_flag=True,
              help="Also find the largest block the firmware's heap could allocate now (device.heap_largest_free, "
                   "VM bytes: a MemoryError with plenty free means the heap is in small pieces). It tries "
                   "allocations, each failure a collection: for a look now and then, not for polling.")
@click.pass_obj
def status(st: StateDir | None, largest_free: bool) -> None:
    """Power, boots, reset cause, speed, line statistics, device heap and flash operations."""
    # the heap after a collection, as a person reading it expects (the suite's polling asks without: host_tests/emu.py)
    _call(st, {"verb": "status", "collect": True, **({"largest_free": True} if largest_free else {})})


@ctl.command()
@click.option("--soft", is_flag=True, help="Soft reset (re-run boot.py and main.py) instead of a hard reset.")
@click.option("--ctrl-c-after", "ctrl_c_after", type=Number(0, 60000), default=None, metavar="MS",
              help="Then send one Ctrl-C on the console MS milliseconds after the board starts running boot.py "
                   "(what an attacker on the console tries; a locked meter must ignore it).")
@click.pass_obj
def reset(st: StateDir | None, soft: bool, ctrl_c_after: float | None) -> None:
    """Reset the board, like its EN/RUN button (hard) or machine.soft_reset() (soft)."""
    req: dict = {"verb": "reset", "kind": "soft" if soft else "hard"}
    if ctrl_c_after is not None:
        req["ctrl_c_after_ms"] = ctrl_c_after
    _call(st, req)


@ctl.command("power-cut")
@click.option("--at-write", type=click.IntRange(1, 10**9), default=None,
              help="Cut right before the N-th flash program/erase from now.")
@click.option("--torn", type=click.IntRange(0, 1 << 20), default=0,
              help="With --at-write: let this many bytes of that write land.")
@click.option("--off", "off", type=Number(0, 86400, words=("manual",)), default=None,
              help="Seconds until power returns (0..86400), or 'manual' (wait for power-on).")
@click.pass_obj
def power_cut(st: StateDir | None, at_write: int | None, torn: int, off: float | str | None) -> None:
    """Cut the board's power now, or at a chosen flash write. Flash keeps exactly what was written."""
    req: dict = {"verb": "power-cut", "torn": torn}
    if at_write is not None:
        req["at_write"] = at_write
    if off is not None:
        req["off"] = None if off == "manual" else off
    _call(st, req)


@ctl.command("power-on")
@click.pass_obj
def power_on(st: StateDir | None) -> None:
    """Restore power after a cut."""
    _call(st, {"verb": "power-on"})


@ctl.command("set")
@click.argument("pairs", nargs=-1, required=True)
@click.pass_obj
def set_(st: StateDir | None, pairs: tuple[str, ...]) -> None:
    """Set the board's surroundings: KEY=VALUE ... Settings persist in STATE/meta.json (power cuts, restarts).

    \b
    speed                 device-time speed: a factor > 0 or 'max'
    rtc.drift_ppm         RTC crystal error, ppm (signed)
    rtc.lost              1: the RTC battery is dead (the RTC restarts from 2000-01-01 at the next boot)
    power.restore_delay   seconds until power returns after a cut, or 'manual'
    wire.error_rate       probability per byte of a flipped bit on the console line (0..1)
    wire.drop_rate        probability per byte of a lost byte on the console line (0..1)
    adc.<gpio>            static volts at an ADC pin (overrides the grid model; 'model' returns to it)
    grid.voltage          RMS volts (0..600; default the board's nominal)
    grid.frequency        Hz (40..70; default the board's nominal)
    grid.drift_hz         peak of a slow sinusoidal frequency wander, Hz (0..5)
    grid.drift_period_s   its period, s (1..86400; default 600)
    grid.harmonics        ORDER:FRACTION[:PHASE_DEG],...  e.g. 3:0.05,5:0.03:30  ('none' clears)
    grid.sag              FACTOR:SECONDS from now, e.g. 0.7:2 (sag) or 1.15:5 (swell); 'none' ends it
    load.type             resistive | inductive | capacitive | rectifier
    load.current          RMS amperes (0..1000)
    load.pf               displacement power factor 0..1 (inductive lags, capacitive leads)
    load.export           1: power flows to the grid; 0: import
    load.steps            AMPS:SECONDS,... repeated from now, e.g. 5:60,0.5:60 ('none' ends it)
    bl0942.error_rate     probability per byte of a flipped bit in the BL0942's answers (0..1)
    link.profile          the NB-IoT link: none | nb1-good | nb2-good | nb1-edge (resets the other link.* keys)
    link.down_kbps        downlink rate, kbit/s (0..100000; 0: no limit)
    link.up_kbps          uplink rate, kbit/s (0..100000; 0: no limit)
    link.rtt_s            round-trip time range LO:HI seconds (0..120), e.g. 0.5:1.5
    link.loss             probability a datagram is lost (0..1)
    link.dup              probability a datagram arrives twice (0..1)
    link.reorder          probability a datagram is overtaken by later ones (0..1)
    link.idle_s           seconds without traffic until the radio goes idle (0..86400; 0: never)
    link.reconnect_s      range LO:HI seconds an idle radio takes to reconnect (0..120), e.g. 2:15
    link.nat              NAT lifetime of device-initiated flows: seconds 1..86400, 'on' (30) or 'off'

    Example: meter-emu ctl set grid.voltage=253 load.current=5 load.pf=0.5 load.type=inductive
    """
    values = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"{p!r} is not KEY=VALUE", param_hint="PAIRS")
        k, v = p.split("=", 1)
        values[k] = v
    _call(st, {"verb": "set", "values": values})


@ctl.command()
@click.argument("action", metavar="ACTION")
@click.pass_obj
def modem(st: StateDir | None, action: str) -> None:
    """The meter's NB-IoT module: ACTION is remove (pulled out), insert (put back: it powers up), wedge (answers
    nothing until its power key is pulsed), deny (the network refuses registration) or allow."""
    from .errors import ControlError
    from .radio import modem_action

    try:
        modem_action(action)
    except ControlError as e:
        _fail(e, EXIT_USAGE)
    _call(st, {"verb": "modem", "action": action})


@ctl.command()
@click.argument("scenario_file", metavar="FILE", required=False, type=click.Path(dir_okay=False))
@click.option("--clear", is_flag=True, help="Stop the running scenario (settings stay as its last step left them).")
@click.pass_obj
def scenario(st: StateDir | None, scenario_file: str | None, clear: bool) -> None:
    """Start a scenario: {"steps": [{"at": s, "set": {"load.current": 5, ...}}, ...], "repeat": false}.

    `at` is device seconds since the scenario starts (now), on the world clock the emulator keeps across power
    cuts; "repeat": true needs "period" (the cycle length, s). `ctl status` shows its progress."""
    from .errors import ControlError
    from .grid import parse_scenario, read_json_file
    from .radio import SCENARIO_KEYS

    if clear == (scenario_file is not None):
        raise click.UsageError("give a scenario FILE or --clear")
    _state(st)
    req: dict = {"verb": "scenario", "scenario": None}
    if scenario_file is not None:
        try:
            data = read_json_file(scenario_file)
            parse_scenario(data, scenario_file, SCENARIO_KEYS)  # the emulator checks it again; a bad file fails here with its path
        except ControlError as e:
            _fail(e, EXIT_USAGE)
        req["scenario"] = data
        req["source"] = scenario_file
    _call(st, req)


@ctl.command()
@click.argument("input_name", metavar="INPUT", default="button")
@click.option("--for", "hold", type=Number(0, 3600, lo_open=True), default=0.2, show_default=True,
              help="Seconds of device time to hold it (up to 3600): at --speed max a long hold passes fast, and a "
                   "busy host never stretches it. `ctl status` shows what is left of it (held_s).")
@click.pass_obj
def press(st: StateDir | None, input_name: str, hold: float) -> None:
    """Press an input of the board for a while: `button` (the consumer's button), or `cover` (the terminal cover
    is taken off for that long: a tamper event on the meter)."""
    _call(st, {"verb": "press", "input": input_name, "for": hold})


@ctl.command("time")
@click.option("--advance", type=Number(0, ADVANCE_MAX_S), default=None,
              help="Jump device time forward by this many seconds first, with no firmware running between (a day at "
                   "most: a longer jump would wrap a board's ticks; use `ctl run --for` to run through it).")
@click.pass_obj
def time_(st: StateDir | None, advance: float | None) -> None:
    """The virtual clock: uptime, ticks_ms, RTC reading, speed."""
    _call(st, {"verb": "time", "advance": advance})


def _rtc_seconds(text: str) -> int:
    """An RTC moment: UTC ISO 8601 ("2026-12-02T02:30:00Z") or seconds since 1970."""
    import calendar
    import time

    t = None
    if text.isascii() and text.isdigit():
        t = int(text)
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M"):
        if t is not None:
            break
        try:
            t = calendar.timegm(time.strptime(text, fmt))
        except ValueError:
            pass
    if t is None:
        raise click.BadParameter(f"{text!r} is not a UTC time like 2026-12-02T02:30:00Z or seconds since 1970",
                                 param_hint="--until")
    if not RTC_MIN.timestamp() <= t <= RTC_MAX.timestamp():
        raise click.BadParameter(f"{text!r} is outside what a board's RTC reads (2000-01-01 to 2099-12-31)",
                                 param_hint="--until")
    return t


@ctl.command("run")
@click.option("--until", "until", default=None, metavar="TIME",
              help="Run until the board's RTC reads TIME (UTC, 2026-12-02T02:30:00Z, or seconds since 1970).")
@click.option("--for", "for_s", type=Number(0, RUN_MAX_S, lo_open=True), default=None, metavar="SECONDS",
              help="Run for this much device time (up to ten years).")
@click.option("--speed", default="max", show_default=True, type=Speed(), help="Speed on the way: a factor or 'max'.")
@click.option("--wait", is_flag=True, help="Return only when the run has ended (the board then runs at 1x).")
@click.option("--timeout", type=Number(0, 366 * 86400, lo_open=True), default=600.0, show_default=True,
              help="Seconds of wall time --wait allows.")
@click.pass_obj
def run_to(st: StateDir | None, until: str | None, for_s: float | None, speed: float | str, wait: bool,
           timeout: float) -> None:
    """Run device time fast to a moment, then at 1x from exactly there.

    The board decides where to stop, inside its own clock, so the run never overshoots the moment however fast it
    goes (a host polling `ctl time` at --speed max may see half an hour pass between two polls). Readings and
    timers fire at their device times on the way, as they would on a real board. --until reads the RTC (its drift
    included) when the run starts: setting the clock during the run does not move the end. `ctl time` shows
    "running" until the run ends."""
    import time

    from .meter import load_endpoints

    if (until is None) == (for_s is None):
        raise click.UsageError("give --until TIME or --for SECONDS")
    req: dict = {"verb": "run", "speed": speed, "until": None if until is None else _rtc_seconds(until),
                 "for": for_s}
    st = _state(st)
    try:
        ep = load_endpoints(st)
        rep = control.request(ep["control"], req)
        if rep.get("ok") and wait:
            end = time.monotonic() + timeout
            while True:
                t = control.request(ep["control"], {"verb": "time"})
                if t.get("ok") and not t.get("running"):
                    rep = dict(rep, arrived=True, rtc=t["rtc"], uptime_s=t["uptime_s"])
                    break
                if time.monotonic() > end:
                    rep = {"ok": False, "error": f"the run did not end within {timeout} s of wall time",
                           "time": t}
                    break
                time.sleep(0.05)
    except EmulatorError as e:
        _fail(e if str(st.path) in str(e) else f"{st.path}: {e}", e.exit_code)
    click.echo(json.dumps(rep, indent=1))
    if not rep.get("ok"):
        click.echo(f"meter-emu: refused: {rep.get('error', 'no reason given')}", err=True)
        sys.exit(8)


@ctl.command()
@click.pass_obj
def stop(st: StateDir | None) -> None:
    """Stop the emulator (as SIGTERM would)."""
    _call(st, {"verb": "stop"})


if __name__ == "__main__":
    main()
