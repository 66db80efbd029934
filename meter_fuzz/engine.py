"""A fuzzing campaign on one target: `jobs` child processes (meter_fuzz/child.py), each with its own seed
(seed, seed+1, ...), sharing the writable corpus OUT/corpus/<target> beside the committed seeds. The coverage-guided
engine is atheris (libFuzzer); without it, or with `engine="builtin"`, a seeded mutation engine that needs nothing
but Python (no coverage feedback: it keeps inputs that draw a new kind of answer)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meter_fuzz import findings, stats

MAX_LEN = 4096
MEM_EVERY = 64  # one input in 64 runs under tracemalloc (the memory oracle)


class EngineUnavailable(RuntimeError):
    pass


def atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def pick_engine(engine: str) -> str:
    if engine == "auto":
        return "atheris" if atheris_available() else "builtin"
    if engine == "atheris" and not atheris_available():
        raise EngineUnavailable("atheris is not installed for this Python: pip install 'meterkit[fuzz]' "
                                "(wheels for CPython 3.11-3.13 on x86_64 Linux), or use --engine builtin")
    if engine not in ("atheris", "builtin"):
        raise EngineUnavailable(f"unknown engine {engine!r}: atheris, builtin or auto")
    return engine


@dataclass
class Campaign:
    target: str
    out: Path = findings.DEFAULT_OUT
    engine: str = "auto"
    seed: int = 1
    runs: int | None = None  # per job
    seconds: float | None = None
    jobs: int = 1
    corpus: Path | None = None
    max_len: int = MAX_LEN
    slow_ms: float | None = 100.0
    mem_every: int = MEM_EVERY
    board: str = ""


@dataclass
class Outcome:
    target: str
    engine: str
    execs: int = 0
    seconds: float = 0.0
    edges: int | None = None  # libFuzzer's "cov:" (edges reached), atheris only
    new: list[str] = field(default_factory=list)
    hits: int = 0
    errors: list[str] = field(default_factory=list)  # a child that died: its last lines

    @property
    def exec_per_s(self) -> float:
        return self.execs / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {"target": self.target, "engine": self.engine, "execs": self.execs, "seconds": round(self.seconds, 2),
                "exec_per_s": round(self.exec_per_s), "edges": self.edges, "new_findings": self.new,
                "hits": self.hits, "errors": self.errors}


_COV = re.compile(rb"cov: (\d+)")
_UNITS = re.compile(rb"stat::number_of_executed_units: (\d+)")


def run(c: Campaign, progress: Callable[[int, float, int], None] | None = None) -> Outcome:
    """Run the campaign to its end (runs or seconds per job; neither: until interrupted) and record its figures."""
    engine = pick_engine(c.engine)
    # the children get absolute paths: a probe may work in a scratch folder of its own (boot_records chdirs into its
    # meter's), where `fuzz-out`, the default, named nothing and libFuzzer refused to start
    c = dataclasses.replace(c, out=c.out.resolve(), corpus=c.corpus.resolve() if c.corpus else None)
    work = c.out / ".run"
    work.mkdir(parents=True, exist_ok=True)
    corpus = c.corpus or c.out / "corpus" / c.target
    corpus.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONHASHSEED="0")
    children = []
    t0 = time.monotonic()
    for k in range(c.jobs):
        status = work / f"{c.target}-{k}.status.json"
        status.unlink(missing_ok=True)
        cfg = {"target": c.target, "out": str(c.out), "engine": engine, "seed": c.seed + k, "runs": c.runs,
               "seconds": c.seconds, "corpus": str(corpus), "max_len": c.max_len, "slow_ms": c.slow_ms,
               "mem_every": c.mem_every, "board": c.board, "status": str(status),
               "artifacts": str(work / f"{c.target}-{k}-")}
        log = open(work / f"{c.target}-{k}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "meter_fuzz.child", json.dumps(cfg)], stdout=log,
                                stderr=subprocess.STDOUT, env=env)
        children.append((proc, status, log, k))
    result = Outcome(c.target, engine)
    try:
        while any(p.poll() is None for p, *_ in children):
            time.sleep(0.25)
            if progress is not None:
                execs, new = _poll(children)
                progress(execs, time.monotonic() - t0, new)
    except KeyboardInterrupt:
        for p, *_ in children:
            p.terminate()
        for p, *_ in children:
            p.wait()
    for p, status, log, k in children:
        log.close()
        rec = _status(status)
        text = (work / f"{c.target}-{k}.log").read_bytes()
        units = _UNITS.findall(text)  # libFuzzer's own count: the child's last status can be up to 0.5 s old
        result.execs += int(units[-1]) if units else rec.get("execs", 0)
        result.new += rec.get("new", [])
        result.hits += rec.get("hits", 0)
        cov = _COV.findall(text)
        if cov:
            result.edges = max(result.edges or 0, int(cov[-1]))
        if p.returncode not in (0, -15):
            result.new += _artifacts(c, work, k, text, engine)
            if p.returncode and not list(work.glob(f"{c.target}-{k}-*")):
                result.errors.append(f"job {k} exited {p.returncode}: " + text[-1500:].decode(errors="replace"))
    for k in range(c.jobs):
        result.new += _memory_suspects(c, work / f"{c.target}-{k}-suspects", engine, c.seed + k)
    result.seconds = time.monotonic() - t0
    stats.record(c.out, c.target, {"engine": engine, "jobs": c.jobs, "seed": c.seed, "execs": result.execs,
                                   "seconds": round(result.seconds, 2), "exec_per_s": round(result.exec_per_s),
                                   "edges": result.edges, "new_findings": len(result.new)})
    return result


def _status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _poll(children) -> tuple[int, int]:
    execs = new = 0
    for _, status, *_ in children:
        rec = _status(status)
        execs += rec.get("execs", 0)
        new += len(rec.get("new", []))
    return execs, new


def _artifacts(c: Campaign, work: Path, k: int, log: bytes, engine: str) -> list[str]:
    """libFuzzer's own artifacts (a hang past -timeout, an out-of-memory, a crash of native code) as findings."""
    from meter_fuzz.oracle import Verdict

    made = []
    for art in sorted(work.glob(f"{c.target}-{k}-*")):
        kind = art.name[len(f"{c.target}-{k}-"):].split("-")[0]
        if kind not in ("timeout", "oom", "crash", "leak", "slow"):
            continue
        data = art.read_bytes()
        v = Verdict({"timeout": "hang", "oom": "memory"}.get(kind, "crash"), message=f"libFuzzer {kind}",
                    traceback=log[-4000:].decode(errors="replace"))
        f = findings.Finding.from_verdict(c.target, v, data, engine=engine, seed=c.seed + k, board=c.board)
        folder, is_new = findings.save(f, data, c.out)
        art.unlink()
        if is_new:
            made.append(str(folder))
    return made


def _memory_suspects(c: Campaign, folder: Path, engine: str, seed: int) -> list[str]:
    """Inputs an atheris child saw above the memory bound, checked again without the instrumentation."""
    from meter_fuzz.oracle import Verdict

    files = sorted(folder.glob("*")) if folder.is_dir() else []
    made: list[str] = []
    if not files:
        return made
    proc = subprocess.run([sys.executable, "-m", "meter_fuzz.replay", "--memory", c.target, *map(str, files)],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONHASHSEED="0"))
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue  # the firmware's own prints (a probe's meter logs its update events), not a verdict
        rec = json.loads(line)
        if rec["kind"] == "memory":
            data = Path(rec["file"]).read_bytes()
            v = Verdict("memory", message=rec["message"], peak_bytes=rec["peak"])
            f = findings.Finding.from_verdict(c.target, v, data, engine=engine, seed=seed, board=c.board)
            path, is_new = findings.save(f, data, c.out)
            if is_new:
                made.append(str(path))
    for suspect in files:
        suspect.unlink()
    folder.rmdir()
    return made
