"""meter-emu: run the meter firmware on the MicroPython VM as a dev board, and control a running one."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from meterkit.boards import BoardError, list_boards

from . import control
from .errors import EmulatorError
from .statedir import StateDir

EXIT_BOARD = 3


def _fail(e: Exception | str, code: int) -> NoReturn:
    click.echo(f"meter-emu: {e}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Emulated smart-meter dev boards running the unmodified firmware on the real MicroPython VM.

    \b
    Exit codes: 0 ok, 2 usage, 3 unknown or invalid board, 4 corrupt state folder, 5 state folder or port busy,
    6 MicroPython VM missing, 7 no emulator running, 8 request refused by the emulator.
    """


@main.command()
@click.option("--board", required=True, help="Board id from boards/ (see `meter-emu boards`).")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False),
              help="State folder: flash image, RTC, endpoints. Created and provisioned on first run.")
@click.option("--baud", default=115200, show_default=True, type=click.IntRange(300, 4_000_000),
              help="Console line rate; the null-modem pump throttles to baud/10 bytes per second.")
@click.option("--speed", default="1", show_default=True,
              help="Device-time speed: a factor (e.g. 100) or 'max' (idle time is skipped).")
@click.option("--blank", is_flag=True, help="On first run leave the flash empty, like a board just flashed with "
              "MicroPython (then `ota provision` it over the console).")
@click.option("--scenario", "scenario_file", type=click.Path(dir_okay=False), default=None,
              help="Start this scenario file (grid and load steps in device time; docs/emulator.md) at power-up.")
@click.option("--seed", type=click.IntRange(0), default=None,
              help="Fix every random draw: a fresh state folder's unique id (hence the meter's component errors and "
                   "noise) and the console line's faults. Same seed, same inputs: the same run (docs/emulator.md).")
@click.option("--rtc", "rtc_start", default=None, metavar="YYYY-MM-DDTHH:MM:SSZ",
              help="Set a fresh state folder's RTC to this UTC time (default: the host's clock).")
@click.option("--for", "run_for", type=click.FloatRange(0, min_open=True), default=None, metavar="SECONDS",
              help="Halt the board after this many seconds of device time (power cuts count on the RTC) and exit 0: "
                   "a run with a fixed end, the same on an idle and a busy host.")
@click.option("--console-log", type=click.Path(dir_okay=False), default=None,
              help="Append everything the board prints on its console to this file.")
@click.option("--record", "record", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Record every input the board gets (console bytes, ctl settings, power cuts, resets) with the "
                   "device time the firmware met it; `meter-emu replay FILE` runs it again (docs/emulator.md).")
def run(board: str, state_dir: str, baud: int, speed: str, blank: bool, scenario_file: str | None,
        seed: int | None, rtc_start: str | None, run_for: float | None, console_log: str | None,
        record: str | None) -> None:
    """Power up the emulated meter and run it until SIGINT/SIGTERM (or the end given by --for).

    Prints the console pty once the board boots and writes STATE/endpoints.json
    ({"console": "/dev/pts/N", "control": ...}); STATE/console links to the pty.
    """
    from .errors import ControlError
    from .grid import load_scenario
    from .meter import Meter, parse_speed

    rtc_start_ns = None
    if rtc_start is not None:
        try:
            t = datetime.datetime.strptime(rtc_start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            _fail(f"--rtc: expected a UTC time like 2026-01-01T00:00:00Z, got {rtc_start!r}", 2)
        rtc_start_ns = int(t.timestamp()) * 1_000_000_000
    scenario = None
    if scenario_file is not None:
        try:
            scenario = load_scenario(scenario_file)
        except ControlError as e:
            _fail(e, 2)
    try:
        meter = Meter(board, StateDir(state_dir), baud=baud, speed=parse_speed(speed),
                      announce=lambda m: click.echo(m, err=not m.startswith("console:")), blank=blank,
                      scenario=scenario, seed=seed, rtc_start_ns=rtc_start_ns, run_for_s=run_for,
                      console_log=console_log, record=record)
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

    from .errors import ControlError
    from .meter import Meter
    from .recording import Recording, firmware_tree_hash

    try:
        rec = Recording(recording_file)
    except ControlError as e:
        _fail(e, 2)
    tmp = None
    if state_dir is None:
        tmp = tempfile.mkdtemp(prefix="meter-emu-replay-")
        state_dir = str(Path(tmp) / "meter")
    st = StateDir(state_dir)
    if st.exists():
        _fail(f"{state_dir}: already holds a meter; a replay starts from the recording's start", 2)
    fresh = rec.start.get("fresh")
    flash = rec.flash()
    if fresh is None:
        if flash is None or not isinstance(rec.start.get("meta"), dict):
            _fail(f"{recording_file}: the start has neither a fresh meter nor a flash image", 2)
        st.path.mkdir(parents=True, exist_ok=True)
        st.flash.write_bytes(flash)
        st.write_meta(rec.start["meta"])
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


@main.group()
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False),
              help="State folder of the running emulator.")
@click.pass_context
def ctl(ctx: click.Context, state_dir: str) -> None:
    """Control a running emulator (JSON output; exit 7 when none runs, 8 when it refuses)."""
    ctx.obj = StateDir(state_dir)


def _call(st: StateDir, req: dict) -> None:
    from .meter import load_endpoints

    try:
        ep = load_endpoints(st)
        rep = control.request(ep["control"], req)
    except EmulatorError as e:
        _fail(e, e.exit_code)
    click.echo(json.dumps(rep, indent=1))
    if not rep.get("ok"):
        sys.exit(8)


@ctl.command()
@click.pass_obj
def status(st: StateDir) -> None:
    """Power, boots, reset cause, speed, line statistics, device heap and flash operations."""
    _call(st, {"verb": "status"})


@ctl.command()
@click.option("--soft", is_flag=True, help="Soft reset (re-run boot.py and main.py) instead of a hard reset.")
@click.option("--ctrl-c-after", "ctrl_c_after", type=click.FloatRange(0, 60000), default=None, metavar="MS",
              help="Then send one Ctrl-C on the console MS milliseconds after the board starts running boot.py "
                   "(what an attacker on the console tries; a locked meter must ignore it).")
@click.pass_obj
def reset(st: StateDir, soft: bool, ctrl_c_after: float | None) -> None:
    """Reset the board, like its EN/RUN button (hard) or machine.soft_reset() (soft)."""
    req: dict = {"verb": "reset", "kind": "soft" if soft else "hard"}
    if ctrl_c_after is not None:
        req["ctrl_c_after_ms"] = ctrl_c_after
    _call(st, req)


@ctl.command("power-cut")
@click.option("--at-write", type=int, default=None, help="Cut right before the N-th flash program/erase from now.")
@click.option("--torn", type=int, default=0, help="With --at-write: let this many bytes of that write land.")
@click.option("--off", "off", default=None, help="Seconds until power returns, or 'manual' (wait for power-on).")
@click.pass_obj
def power_cut(st: StateDir, at_write: int | None, torn: int, off: str | None) -> None:
    """Cut the board's power now, or at a chosen flash write. Flash keeps exactly what was written."""
    req: dict = {"verb": "power-cut", "torn": torn}
    if at_write is not None:
        req["at_write"] = at_write
    if off is not None:
        req["off"] = None if off == "manual" else float(off)
    _call(st, req)


@ctl.command("power-on")
@click.pass_obj
def power_on(st: StateDir) -> None:
    """Restore power after a cut."""
    _call(st, {"verb": "power-on"})


@ctl.command("set")
@click.argument("pairs", nargs=-1, required=True)
@click.pass_obj
def set_(st: StateDir, pairs: tuple[str, ...]) -> None:
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
@click.argument("scenario_file", metavar="FILE", required=False, type=click.Path(dir_okay=False))
@click.option("--clear", is_flag=True, help="Stop the running scenario (settings stay as its last step left them).")
@click.pass_obj
def scenario(st: StateDir, scenario_file: str | None, clear: bool) -> None:
    """Start a scenario: {"steps": [{"at": s, "set": {"load.current": 5, ...}}, ...], "repeat": false}.

    `at` is device seconds since the scenario starts (now), on the world clock the emulator keeps across power
    cuts; "repeat": true needs "period" (the cycle length, s). `ctl status` shows its progress."""
    from .errors import ControlError
    from .grid import load_scenario

    if clear == (scenario_file is not None):
        raise click.UsageError("give a scenario FILE or --clear")
    req: dict = {"verb": "scenario", "scenario": None}
    if scenario_file is not None:
        try:
            load_scenario(scenario_file)  # the emulator checks it again; a bad file fails here with its path
        except ControlError as e:
            _fail(e, 2)
        req["scenario"] = json.loads(open(scenario_file).read())
        req["source"] = scenario_file
    _call(st, req)


@ctl.command()
@click.argument("input_name", metavar="INPUT", default="button")
@click.option("--for", "hold", type=float, default=0.2, show_default=True, help="Seconds to hold it.")
@click.pass_obj
def press(st: StateDir, input_name: str, hold: float) -> None:
    """Press an input of the board for a while: `button` (the consumer's button), or `cover` (the terminal cover
    is taken off for that long: a tamper event on the meter)."""
    _call(st, {"verb": "press", "input": input_name, "for": hold})


@ctl.command("time")
@click.option("--advance", type=float, default=None, help="Jump device time forward by this many seconds first.")
@click.pass_obj
def time_(st: StateDir, advance: float | None) -> None:
    """The virtual clock: uptime, ticks_ms, RTC reading, speed."""
    _call(st, {"verb": "time", "advance": advance})


def _rtc_seconds(text: str) -> int:
    """An RTC moment: UTC ISO 8601 ("2026-12-02T02:30:00Z") or seconds since 1970."""
    import calendar
    import time

    if text.isdigit():
        return int(text)
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M"):
        try:
            return calendar.timegm(time.strptime(text, fmt))
        except ValueError:
            pass
    raise click.BadParameter(f"{text!r} is not a UTC time like 2026-12-02T02:30:00Z or seconds since 1970",
                             param_hint="--until")


@ctl.command("run")
@click.option("--until", "until", default=None, metavar="TIME",
              help="Run until the board's RTC reads TIME (UTC, 2026-12-02T02:30:00Z, or seconds since 1970).")
@click.option("--for", "for_s", type=float, default=None, metavar="SECONDS", help="Run for this much device time.")
@click.option("--speed", default="max", show_default=True, help="Speed on the way: a factor or 'max'.")
@click.option("--wait", is_flag=True, help="Return only when the run has ended (the board then runs at 1x).")
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds of wall time --wait allows.")
@click.pass_obj
def run_to(st: StateDir, until: str | None, for_s: float | None, speed: str, wait: bool, timeout: float) -> None:
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
        _fail(e, e.exit_code)
    click.echo(json.dumps(rep, indent=1))
    if not rep.get("ok"):
        sys.exit(8)


@ctl.command()
@click.pass_obj
def stop(st: StateDir) -> None:
    """Stop the emulator (as SIGTERM would)."""
    _call(st, {"verb": "stop"})


if __name__ == "__main__":
    main()
