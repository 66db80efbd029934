"""Per-target campaign figures, kept in OUT/stats/<target>.json: every run's engine, execs, seconds, exec/s,
libFuzzer's edge coverage and findings, and the totals `meter-fuzz report` shows."""

from __future__ import annotations

import json
import time
from pathlib import Path


def path(out: Path, target: str) -> Path:
    return out / "stats" / f"{target}.json"


def load(out: Path, target: str) -> dict:
    try:
        rec = json.loads(path(out, target).read_text())
        if isinstance(rec, dict) and isinstance(rec.get("runs"), list):
            return rec
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    return {"target": target, "runs": []}


def record(out: Path, target: str, run: dict) -> dict:
    rec = load(out, target)
    run = dict(run, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    rec["runs"].append(run)
    rec["execs"] = sum(int(r.get("execs", 0)) for r in rec["runs"])
    rec["seconds"] = round(sum(float(r.get("seconds", 0)) for r in rec["runs"]), 1)
    p = path(out, target)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=2))
    tmp.replace(p)
    return rec
