"""`meter-fuzz`: fuzz every parser the meter exposes (docs/security-testing.md).

Exit codes: 0 done and nothing found (repro: the finding no longer reproduces), 1 a finding (new in a run, still
reproducing in repro), 2 bad usage or a bad finding folder, 3 the engine or the VM is not available."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from meter_fuzz import engine, findings, minimize, oracle, stats, targets, vm
from meter_fuzz.attack_cli import attack

EXIT_FOUND = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

out_option = click.option("--out", type=click.Path(path_type=Path), default=findings.DEFAULT_OUT, show_default=True,
                          help="Where findings (OUT/findings), the campaign corpus (OUT/corpus) and figures "
                               "(OUT/stats) go.")
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout, for scripts.")


def _console() -> Console:
    return Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Fuzz the meter's parsers (CBOR, SMP, images, bundles, commands, trust, tokens, settings, BL0942, AT) with
    the firmware's own code, on CPython (coverage-guided) and in the MicroPython VM, and keep every finding with a
    one-line reproducer."""


@main.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """The targets: what each feeds, the firmware modules it covers, its seeds and oracles."""
    rows: list[dict[str, Any]] = []
    for t in targets.load_all():
        rows.append({"target": t.name, "summary": t.summary, "modules": list(t.modules), "seeds": len(t.seed_inputs()),
                     "dictionary": t.dictionary is not None,
                     "differential": t.extra("differential") is not None,
                     "mutator": t.extra("mutator") is not None,
                     "errors": [e.__name__ for e in t.errors]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="meter-fuzz targets")
    for col in ("target", "modules", "seeds", "oracles", "what it feeds"):
        table.add_column(col)
    for r in rows:
        oracles = ["errors", "time", "memory"] + (["differential"] if r["differential"] else [])
        table.add_row(r["target"], "\n".join(r["modules"]), str(r["seeds"]), ", ".join(oracles),
                      r["summary"][:90] + ("…" if len(r["summary"]) > 90 else ""))
    Console().print(table)


def _targets_arg(name: str) -> list[str]:
    if name == "all":
        return targets.names()
    if name not in targets.names():
        raise click.BadParameter(f"no target {name!r}; `meter-fuzz list` names them", param_hint="TARGET")
    return [name]


@main.command()
@click.argument("target")
@click.option("--time", "seconds", type=click.FloatRange(min=0.1), help="Stop after this many seconds per target "
              "(per job). With neither --time nor --runs, run until Ctrl-C.")
@click.option("--runs", type=click.IntRange(min=1), help="Stop after this many inputs per job (deterministic with "
              "--seed: what CI uses).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Parallel processes, seeds "
              "SEED, SEED+1, ...")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--corpus", type=click.Path(path_type=Path), help="The campaign's writable corpus "
              "[default: OUT/corpus/TARGET]; the committed seeds are always read too.")
@click.option("--engine", "engine_name", type=click.Choice(["auto", "atheris", "builtin"]), default="auto",
              show_default=True, help="atheris: coverage-guided (libFuzzer); builtin: seeded mutation, no coverage.")
@click.option("--vm", is_flag=True, help="The VM's own mutation loop (MicroPython's ints, floats, exceptions); "
              "needs --runs.")
@click.option("--max-len", type=click.IntRange(min=1), default=engine.MAX_LEN, show_default=True)
@click.option("--slow-ms", type=click.FloatRange(min=1), default=oracle.SLOW_MS, show_default=True,
              help="The time oracle's bound (best of three runs).")
@out_option
@json_option
def run(target: str, seconds: float | None, runs: int | None, jobs: int, seed: int, corpus: Path | None,
        engine_name: str, vm: bool, max_len: int, slow_ms: float, out: Path, as_json: bool) -> None:
    """Fuzz TARGET (a name from `list`, or `all`). Exit 1 when a new finding was made."""
    results = []
    for name in _targets_arg(target):
        if vm:
            r = _run_vm(name, seed=seed, runs=runs or 10000, max_len=max_len, out=out)
            results.append(r)
            if not as_json:
                _console().print(f"{name}: {r['execs']:,} execs in the VM in {r['seconds']:.1f} s "
                                 f"({r['exec_per_s']:,}/s, vm-builtin), {len(r['new_findings'])} new findings")
                for f in r["new_findings"]:
                    _console().print(f"  [red]finding[/] {f}  (reproduce: meter-fuzz repro {f} --vm)")
            continue
        c = engine.Campaign(target=name, out=out, engine=engine_name, seed=seed, runs=runs, seconds=seconds,
                            jobs=jobs, corpus=corpus, max_len=max_len, slow_ms=slow_ms)
        try:
            if as_json or not sys.stderr.isatty():
                o = engine.run(c)
            else:
                with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                              TimeElapsedColumn(), console=_console()) as bar:
                    total = seconds if seconds else None
                    task = bar.add_task(name, total=total, info="")

                    def show(execs: int, elapsed: float, new: int, task=task, bar=bar, total=total) -> None:
                        bar.update(task, completed=elapsed if total else None,
                                   info=f"{execs:,} execs  {execs / max(elapsed, 1e-3):,.0f}/s  {new} new findings")

                    o = engine.run(c, show)
        except engine.EngineUnavailable as e:
            _console().print(f"[red]error:[/] {e}")
            sys.exit(EXIT_UNAVAILABLE)
        results.append(o.as_dict())
        if not as_json:
            _console().print(f"{name}: {o.execs:,} execs in {o.seconds:.1f} s ({o.exec_per_s:,.0f}/s, {o.engine}"
                             + (f", {o.edges} edges" if o.edges else "") + f"), {len(o.new)} new findings, "
                             f"{o.hits} repeat hits")
            for f in o.new:
                _console().print(f"  [red]finding[/] {f}  (reproduce: meter-fuzz repro {f})")
            for err in o.errors:
                _console().print(f"  [red]job failed[/] {err}")
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
    if any(r["errors"] for r in results):
        sys.exit(EXIT_UNAVAILABLE)
    if any(r["new_findings"] for r in results):
        sys.exit(EXIT_FOUND)


def _run_vm(name: str, *, seed: int, runs: int, max_len: int, out: Path) -> dict:
    import time

    t = targets.load(name)
    t0 = time.monotonic()
    try:
        execs, found = vm.mutate_loop(name, t.seed_inputs(), seed=seed, runs=runs, max_len=max_len,
                                      dictionary=t.dictionary)
    except vm.VmUnavailable as e:
        _console().print(f"[red]error:[/] {e}")
        sys.exit(EXIT_UNAVAILABLE)
    seconds = time.monotonic() - t0
    new = []
    for rec in found:
        data = bytes.fromhex(rec["input"])
        v = oracle.Verdict(rec["verdict"], rec.get("error", ""), rec.get("message", ""), rec.get("tb", ""),
                           where=_vm_where(rec.get("tb", "")))
        f = findings.Finding.from_verdict(name, v, data, engine="vm-builtin", seed=seed, runtime="vm")
        folder, is_new = findings.save(f, data, out)
        if is_new:
            new.append(str(folder))
    stats.record(out, name, {"engine": "vm-builtin", "jobs": 1, "seed": seed, "execs": execs,
                             "seconds": round(seconds, 2), "exec_per_s": round(execs / max(seconds, 1e-6)),
                             "edges": None, "new_findings": len(new)})
    return {"target": name, "engine": "vm-builtin", "execs": execs, "seconds": round(seconds, 2),
            "exec_per_s": round(execs / max(seconds, 1e-6)), "edges": None, "new_findings": new, "hits": 0,
            "errors": []}


def _vm_where(tb: str) -> str:
    """The innermost `File "...", line N, in f` of a MicroPython traceback, relative to the firmware/probes."""
    import re

    from meter_fuzz import paths

    last = ""
    for m in re.finditer(r'File "([^"]+)", line \d+, in (\S+)', tb):
        p = Path(m.group(1))
        for base in (paths.FIRMWARE_DIR, *paths.probe_dirs()):
            try:
                last = f"{p.resolve().relative_to(base)}:{m.group(2)}"
                break
            except ValueError:
                continue
    return last


def _finding(folder: Path) -> tuple[dict, bytes, targets.Target]:
    try:
        meta = findings.load_meta(folder)
        data = findings.load_input(folder)
        t = targets.load(meta["target"])
    except (findings.BadFinding, targets.UnknownTarget) as e:
        _console().print(f"[red]error:[/] {e}")
        sys.exit(EXIT_USAGE)
    return meta, data, t


@main.command()
@click.argument("finding", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--vm", is_flag=True, help="Replay in the MicroPython VM instead of CPython.")
@json_option
def repro(finding: Path, vm: bool, as_json: bool) -> None:
    """Replay FINDING (a folder under OUT/findings). Exit 1 while it still reproduces, 0 once it is fixed. An
    attacker's finding (inputs.jsonl) is replayed by `meter-fuzz attack --replay FINDING` against a meter."""
    if (finding / "inputs.jsonl").exists():
        meta = findings.load_meta(finding)
        _console().print(f"{finding} is a black-box attacker's finding: its steps are replayed against a running meter "
                         f"with: {meta.get('repro') or f'meter-fuzz attack --replay {finding}'}")
        sys.exit(EXIT_USAGE)
    meta, data, t = _finding(finding)
    if vm:
        try:
            rec = globals()["vm"].replay(t.name, [data])[0]
        except globals()["vm"].VmUnavailable as e:
            _console().print(f"[red]error:[/] {e}")
            sys.exit(EXIT_UNAVAILABLE)
        verdict = rec["verdict"]
        still = verdict in oracle.FINDINGS
        detail = rec.get("tb") or rec.get("message", "")
    else:
        v = oracle.execute(t, data, check_memory=meta.get("kind") == "memory")
        verdict = v.kind
        still = v.is_finding
        detail = v.traceback or v.message
    res = {"finding": str(finding), "target": t.name, "runtime": "vm" if vm else "cpython", "verdict": verdict,
           "reproduces": still, "was": meta.get("summary", ""), "detail": detail}
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        c = _console()
        c.print(f"{t.name}: was {meta.get('summary', '?')}")
        c.print(f"now ({res['runtime']}): {verdict}" + (" — [red]still reproduces[/]" if still else " — fixed"))
        if still and detail:
            c.print(detail, markup=False, highlight=False)
    sys.exit(EXIT_FOUND if still else 0)


@main.command("minimize")
@click.argument("finding", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--max-tests", type=click.IntRange(min=1), default=20000, show_default=True)
@json_option
def minimize_cmd(finding: Path, max_tests: int, as_json: bool) -> None:
    """Shrink FINDING's input to the smallest that gives the same signature; writes input.min.bin beside it."""
    meta, _, t = _finding(finding)
    data = findings.load_input(finding, minimized=False)
    want = meta.get("signature")
    memory = meta.get("kind") == "memory"

    def still_fails(candidate: bytes) -> bool:
        v = oracle.execute(t, candidate, check_memory=memory)
        return v.is_finding and v.signature(t.name) == want

    if not still_fails(data):
        _console().print(f"{finding}: the input no longer gives this finding; nothing to minimise")
        sys.exit(0)
    small = minimize.ddmin(data, still_fails, max_tests=max_tests)
    (finding / "input.min.bin").write_bytes(small)
    res = {"finding": str(finding), "size": len(data), "minimized": len(small), "file": str(finding / "input.min.bin")}
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        _console().print(f"{len(data)} -> {len(small)} bytes: {finding / 'input.min.bin'}")


@main.command()
@click.argument("target")
@click.option("--to", "dest", type=click.Path(path_type=Path, file_okay=False),
              help="Where to write them [default: the target's committed corpus folder].")
@json_option
def seeds(target: str, dest: Path | None, as_json: bool) -> None:
    """Write TARGET's generated seeds (its host extra's seeds()) into its corpus, one file per input named by its
    hash; existing files are kept (regression inputs among them)."""
    import hashlib

    written = []
    for name in _targets_arg(target):
        t = targets.load(name)
        gen = t.extra("seeds")
        if gen is None:
            _console().print(f"{name}: no seeds() in its host extra; its corpus is written by hand")
            continue
        folder = dest or t.corpus_dir
        folder.mkdir(parents=True, exist_ok=True)
        for data in gen():
            p = folder / f"seed-{hashlib.sha1(data).hexdigest()[:12]}"
            if not p.exists():
                p.write_bytes(data)
                written.append(str(p))
    if as_json:
        click.echo(json.dumps({"written": written}, indent=2))
    else:
        _console().print(f"{len(written)} new seed files")


@main.command()
@out_option
@click.option("--coverage/--no-coverage", default=True, show_default=True,
              help="Measure line/branch coverage of each target's modules by its seeds and campaign corpus.")
@json_option
def report(out: Path, coverage: bool, as_json: bool) -> None:
    """Per target: execs, exec/s of the last run, coverage, findings."""
    from meter_fuzz import cover

    found = findings.all_findings(out)
    rows = []
    for t in targets.load_all():
        st = stats.load(out, t.name)
        last = st["runs"][-1] if st["runs"] else {}
        row = {"target": t.name, "execs": st.get("execs", 0), "seconds": st.get("seconds", 0),
               "exec_per_s": last.get("exec_per_s"), "engine": last.get("engine"), "edges": last.get("edges"),
               "findings": [str(f) for f, m in found if m["target"] == t.name]}
        if coverage:
            row["coverage"] = cover.measure(t.name, [t.corpus_dir, out / "corpus" / t.name])
        rows.append(row)
    if as_json:
        click.echo(json.dumps({"targets": rows, "findings": len(found)}, indent=2))
        return
    table = Table(title=f"meter-fuzz report ({out})")
    for col in ("target", "execs", "exec/s", "engine", "lines", "branches", "findings"):
        table.add_column(col, justify="right" if col not in ("target", "engine") else "left")
    for r in rows:
        cov = r.get("coverage") or {}
        table.add_row(r["target"], f"{r['execs']:,}", f"{r['exec_per_s']:,}" if r["exec_per_s"] else "-",
                      r["engine"] or "-", f"{cov['lines']}%" if cov else "-", f"{cov['branches']}%" if cov else "-",
                      str(len(r["findings"])))
    Console().print(table)
    for f, m in found:
        Console().print(f"{m['target']}: {m.get('summary', '')} ({m.get('hits', 1)} hits) — "
                        f"{m.get('repro') or f'meter-fuzz repro {f}'}")


main.add_command(attack)

if __name__ == "__main__":
    main()
