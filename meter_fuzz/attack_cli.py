"""`meter-fuzz attack`: the stateful black-box attacker (meter_fuzz/attack.py) as a command.

Exit codes: 0 no findings (replay: the finding did not come back), 1 findings (replay: it came back), 2 usage or a
bad finding folder, 3 the meter or the emulator could not be reached."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from meter_fuzz import attack as atk
from meter_fuzz import findings


def _progress_line(as_json: bool, label: str):
    def show(s: dict) -> None:
        if as_json:
            return
        click.echo(f"\r{label}: {s['inputs']} inputs, echoes {s['answered']}/{s['echoes']} answered, reboots "
                   f"{s['reboots']}, findings {s['findings']}, {s['elapsed_s']:.0f} s   ", err=True, nl=False)
    return show


def _summary(stats: atk.Stats, label: str, seed: int) -> None:
    s = stats
    rate = s.inputs / s.elapsed_s if s.elapsed_s else 0.0
    click.echo("", err=True)
    click.echo(f"{label} (the meter says {s.mode}{', held to locked rules' if s.locked else ''}), seed {seed}: "
               f"{s.inputs} inputs in {s.elapsed_s:.1f} s ({rate:.1f} inputs/s); {s.replies} SMP "
               f"replies; echoes {s.answered}/{s.echoes} answered; reboots {s.reboots} ({s.expected_reboots} after "
               f"resets sent); findings {s.findings}")
    click.echo("  inputs by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(s.by_kind.items())))
    if s.events_new:
        click.echo("  new meter events: " + ", ".join(f"{k} x{n}" for k, n in sorted(s.events_new.items())))
    for c in s.record_changes:
        click.echo("  protected record changed: {}".format(c["record"]))
    for f in s.new_findings:
        click.echo("  FINDING {}: {}\n    {}".format(f["kind"], f["summary"], f["folder"]))


@click.command()
@click.option("--port", help="A real meter's serial port (pyserial).")
@click.option("--emulator", "board", metavar="BOARD", help="Start a fresh meter-emu of this board and attack it.")
@click.option("--locked", is_flag=True, help="With --emulator: lock the meter first (mode file written at its REPL, as "
              "a tester with a cable would), so the prompt and record monitors apply.")
@click.option("--expect-locked", is_flag=True, help="Hold the meter to a locked meter's rules whatever it reports "
              "(a development meter then fails the prompt monitor: the monitors' own check).")
@click.option("--udp", is_flag=True, help="With --emulator: also attack over the meter's SMP-over-UDP port (the "
              "emulator runs with --modem; its head-end, this host, is set with the development command key before "
              "the meter is locked; such a run is not recorded).")
@click.option("--time", "seconds", type=click.FloatRange(min=1), help="Stop after this many seconds.")
@click.option("--inputs", type=click.IntRange(min=1), help="Stop after this many inputs (what tests use: the time an "
              "input takes depends on the machine).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Every random choice comes "
              "from it (recorded in each finding).")
@click.option("--out", type=click.Path(path_type=Path), default=findings.DEFAULT_OUT, show_default=True,
              help="Findings go to OUT/findings/attack-<board>[-locked]/.")
@click.option("--echo-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="A liveness echo every this many inputs.")
@click.option("--hang-bound", type=click.FloatRange(min=1), default=45.0, show_default=True,
              help="Seconds a meter may stay silent (retried echoes) before it is an unrecovered hang.")
@click.option("--no-record", is_flag=True, help="With --emulator: do not record the run (meter-emu --record); "
              "starts faster with --locked (no restart after locking).")
@click.option("--replay", type=click.Path(path_type=Path, file_okay=False), help="Send a finding's steps "
              "(inputs.jsonl) again to a fresh emulator of its board (or --port) and say whether it comes back.")
@click.option("--kinds", default=",".join(atk.WEIGHTS), show_default=True,
              help="The input kinds to send (comma-separated), in their usual shares.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def attack(port, board, locked, expect_locked, udp, seconds, inputs, seed, out, echo_every, hang_bound, no_record,
           replay, kinds, as_json):
    """Attack a running meter as a black box: fuzzed SMP sessions for every group, upload sequences with bad
    offsets and state writes mid-upload, console noise, Ctrl-C/D/A/B/E and CR/LF bursts swept across resets and boot
    timing; monitors liveness (SMP echo), reboots, prompts from a locked meter, the event log and protected records."""
    steps = None
    meta: dict = {}
    if replay is not None:
        try:
            meta, steps = atk.load_steps(replay)
        except findings.BadFinding as e:
            click.echo(f"meter-fuzz attack: {e}", err=True)
            sys.exit(atk.EXIT_USAGE)
        if not port and not board:
            board = meta.get("board") or None
            if not board:
                _usage("the finding was made on a serial port: give --port")
        extra = meta.get("extra") or {}
        locked = bool(extra.get("emulator_locked", extra.get("locked"))) and bool(board) and not port
        expect_locked = expect_locked or bool(extra.get("locked"))
        seed = int(meta.get("seed") or 0)
        udp = udp or bool(extra.get("udp"))
    else:
        if seconds is None and inputs is None:
            _usage("give --time SECONDS or --inputs N")
    if bool(port) == bool(board):
        _usage("give exactly one of --port and --emulator")
    if locked and port:
        _usage("--locked makes an emulated meter locked; a real meter is what it is (use --expect-locked)")
    if udp and port:
        _usage("--udp goes with --emulator (the attacker sets the head-end of a meter it starts)")
    if board:
        from meterkit.boards import list_boards

        if board not in list_boards():
            _usage(f"unknown board {board!r} (meter-emu boards lists them)")
    chosen = [k.strip() for k in kinds.split(",") if k.strip()]
    if not chosen or any(k not in atk.WEIGHTS for k in chosen):
        _usage(f"--kinds takes some of {', '.join(atk.WEIGHTS)}")
    label = f"attack {board or port}{' (locked)' if locked else ''}{' +udp' if udp else ''}"
    if replay is not None:
        out_dir = Path(tempfile.mkdtemp(prefix="meter-fuzz-replay-"))
    else:
        out_dir = out
    opts = atk.Options(port=port, board=board, locked=locked, expect_locked=True if expect_locked else None,
                       seconds=seconds, inputs=inputs, seed=seed, out=out_dir, record=not no_record and replay is None,
                       echo_every=echo_every, hang_bound_s=hang_bound, progress=_progress_line(as_json, label),
                       replay_steps=steps, weights={k: atk.WEIGHTS[k] for k in chosen}, udp=udp)
    try:
        stats = atk.Attack(opts).run()
    except atk.Unreachable as e:
        click.echo(f"\nmeter-fuzz attack: the meter could not be reached: {e}", err=True)
        sys.exit(atk.EXIT_UNREACHABLE)
    if replay is not None:
        sig = meta.get("signature")
        back = [f for f in stats.new_findings if f["kind"] == meta.get("kind") and f["signature"] == sig]
        doc = {"replay": str(replay), "kind": meta.get("kind"), "signature": sig, "reproduced": bool(back),
               "steps": len(steps or []), "findings": stats.new_findings, "out": str(out_dir)}
        if as_json:
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo("", err=True)
            verdict = "REPRODUCED" if back else "did not come back"
            click.echo(f"{replay}: {verdict} ({len(steps or [])} steps sent again)")
            for f in stats.new_findings:
                click.echo("  {}: {}".format(f["kind"], f["summary"]))
        sys.exit(atk.EXIT_FOUND if back else atk.EXIT_OK)
    if as_json:
        d = dict(stats.__dict__)
        d.update({"target": label, "seed": seed, "board": board, "port": port, "udp": udp,
                  "inputs_per_s": round(stats.inputs / stats.elapsed_s, 2) if stats.elapsed_s else 0.0})
        click.echo(json.dumps(d, indent=2, default=str))
    else:
        _summary(stats, label, seed)
    sys.exit(atk.EXIT_FOUND if stats.findings else atk.EXIT_OK)


def _usage(msg: str) -> None:
    click.echo(f"meter-fuzz attack: {msg}", err=True)
    sys.exit(atk.EXIT_USAGE)
