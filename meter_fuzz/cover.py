"""Line and branch coverage (coverage.py) of a target's firmware modules by a corpus: what `meter-fuzz report`
shows and the benchmark records. The corpus is replayed in a child process, so the measurement starts cold."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from meter_fuzz import paths


def measure(target: str, corpus_dirs: list[Path], timeout: float = 1800) -> dict:
    """{"files": {module: {"lines": %, "branches": %}}, "lines": %, "branches": %, "inputs": n} over every file of
    the given corpus folders (the committed seeds and a campaign's corpus)."""
    from meter_fuzz import targets

    t = targets.load(target)
    with tempfile.TemporaryDirectory(prefix="meter-fuzz-cov-") as tmp:
        data_file = Path(tmp) / ".coverage"
        report = Path(tmp) / "cov.json"
        include = ",".join(str(p) for p in t.module_files)
        proc = subprocess.run([sys.executable, "-m", "coverage", "run", "--branch", f"--data-file={data_file}",
                               f"--include={include}", "-m", "meter_fuzz.replay", target, *map(str, corpus_dirs)],
                              capture_output=True, text=True, timeout=timeout, cwd=str(paths.ROOT))
        if proc.returncode != 0:
            raise RuntimeError(f"coverage run of {target} failed: {proc.stderr[-2000:]}")
        n_inputs = int(proc.stdout.strip().splitlines()[-1])
        subprocess.run([sys.executable, "-m", "coverage", "json", f"--data-file={data_file}", "-o", str(report),
                        f"--include={include}"], capture_output=True, text=True, timeout=timeout, check=True)
        rec = json.loads(report.read_text())
    files = {}
    lines = covered = branches = covered_b = 0
    for name, f in rec.get("files", {}).items():
        s = f["summary"]
        rel = str(Path(name).resolve().relative_to(paths.FIRMWARE_DIR))
        files[rel] = {"lines": _pct(s["covered_lines"], s["num_statements"]),
                      "branches": _pct(s.get("covered_branches", 0), s.get("num_branches", 0))}
        lines += s["num_statements"]
        covered += s["covered_lines"]
        branches += s.get("num_branches", 0)
        covered_b += s.get("covered_branches", 0)
    for m in t.modules:
        files.setdefault(m, {"lines": 0.0, "branches": 0.0})
    return {"files": files, "lines": _pct(covered, lines), "branches": _pct(covered_b, branches), "inputs": n_inputs}


def _pct(a: int, b: int) -> float:
    return round(100.0 * a / b, 1) if b else 100.0
