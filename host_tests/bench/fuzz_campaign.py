"""Report: a recorded meter-fuzz campaign (issue 19's benchmark). For every target (or those named): a coverage-
guided run of --time seconds per target (atheris, one job), then the VM's own mutation loop for --vm-runs inputs,
then line/branch coverage of the target's firmware modules by its committed seeds plus the campaign's corpus
(coverage.py). Prints a table and, with --json, writes every figure; findings land in OUT/findings as in any
`meter-fuzz run`.

The issue's goals, checked in the table: ≥ 10k exec/s on the small parsers (cbor_decode, smp_deframe, at_response),
≥ 2k exec/s on the structured SMP handler targets, ≥ 90 % line coverage, 0 findings. One million execs per target
takes `--time` of 1e6 / (exec/s) seconds: `--until-execs 1000000` runs each target that long (hours in all).

Usage: python -m host_tests.bench.fuzz_campaign [--time S | --until-execs N] [--vm-runs N] [--out DIR]
       [--json FILE] [TARGET ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from meter_fuzz import cover, engine, targets, vm

SMALL = {"cbor_decode", "smp_deframe", "at_response", "bl0942_frame"}
STRUCTURED = {"smp_dispatch_dev", "smp_dispatch_locked"}


def goal(name: str) -> int | None:
    return 10_000 if name in SMALL else 2_000 if name in STRUCTURED else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*")
    ap.add_argument("--time", type=float, default=60.0, help="seconds of coverage-guided fuzzing per target")
    ap.add_argument("--until-execs", type=int, help="instead of --time: run each target until this many execs")
    ap.add_argument("--vm-runs", type=int, default=20000, help="inputs of the VM's mutation loop per target")
    ap.add_argument("--out", type=Path, default=Path("fuzz-bench"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    names = args.targets or targets.names()
    rows = []
    for name in names:
        if args.until_execs:
            c = engine.Campaign(target=name, out=args.out, runs=args.until_execs)
        else:
            c = engine.Campaign(target=name, out=args.out, seconds=args.time)
        o = engine.run(c)
        t = targets.load(name)
        t0 = time.monotonic()
        vm_execs, vm_found = vm.mutate_loop(name, t.seed_inputs(), seed=1, runs=args.vm_runs,
                                            max_len=engine.MAX_LEN, dictionary=t.dictionary)
        vm_s = time.monotonic() - t0
        cov = cover.measure(name, [t.corpus_dir, args.out / "corpus" / name])
        row = {"target": name, "engine": o.engine, "execs": o.execs, "seconds": round(o.seconds, 1),
               "exec_per_s": round(o.exec_per_s), "edges": o.edges, "findings": o.new,
               "vm_execs": vm_execs, "vm_exec_per_s": round(vm_execs / max(vm_s, 1e-6)), "vm_findings": vm_found,
               "lines": cov["lines"], "branches": cov["branches"], "files": cov["files"], "goal_exec_per_s": goal(name)}
        rows.append(row)
        g = goal(name)
        print(f"{name:22} {o.execs:>10,} execs {row['exec_per_s']:>8,}/s"
              + (f" (goal {g:,}: {'met' if row['exec_per_s'] >= g else 'NOT met'})" if g else "")
              + f"  edges {o.edges}  lines {cov['lines']}%  branches {cov['branches']}%"
              + f"  VM {row['vm_exec_per_s']:,}/s  findings {len(o.new)} + VM {len(vm_found)}", flush=True)
    meta = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, {platform.python_implementation()} "
                       f"{platform.python_version()}", "date": time.strftime("%Y-%m-%d"),
            "atheris": engine.atheris_available(), "time_per_target": args.time, "until_execs": args.until_execs}
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "targets": rows}, indent=2))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
