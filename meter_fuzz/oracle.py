"""One execution of a target, judged.

Verdicts: "ok" (accepted), "rejected" (raised one of the target's documented errors), and the findings:
"exception" (any other exception), "violation" (fuzzcore.Violation: an invariant or a differential check broken),
"slow" (above the time bound on three runs in a row: a busy host does not make a finding) and "memory" (traced
peak allocation above the target's bound, CPython's tracemalloc, sampled)."""

from __future__ import annotations

import hashlib
import time
import traceback
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from meter_fuzz import paths
from meter_fuzz.targets import Target

FINDINGS = ("exception", "violation", "slow", "memory", "hang", "crash")
SLOW_MS = 100.0  # an input taking longer than this (three runs in a row) is a finding
SLOW_RUNS = 3
MEM_BASE = 64 * 1024  # default memory bound: MEM_BASE + MEM_PER_BYTE * len(input) bytes
MEM_PER_BYTE = 64


@dataclass
class Verdict:
    kind: str
    error: str = ""  # exception type name
    message: str = ""
    traceback: str = ""
    where: str = ""  # innermost frame in firmware or probe code: "app/bl0942.py:parse"
    seconds: float = 0.0
    peak_bytes: int = 0

    @property
    def is_finding(self) -> bool:
        return self.kind in FINDINGS

    def signature(self, target: str) -> str:
        """What makes two findings the same: target, kind, exception type and where it was raised (not the
        message, which often carries input bytes)."""
        key = "|".join((target, self.kind, self.error, self.where))
        return hashlib.sha256(key.encode()).hexdigest()[:10]

    def summary(self) -> str:
        if self.kind == "slow":
            return f"slow: {self.seconds * 1000:.0f} ms (bound {SLOW_MS:.0f} ms)"
        if self.kind == "memory":
            return f"memory: {self.peak_bytes} B traced peak"
        if self.kind in ("exception", "violation"):
            at = f" at {self.where}" if self.where else ""
            return f"{self.kind}: {self.error}: {self.message}{at}"
        return self.kind


def _where(exc: BaseException) -> str:
    """The innermost traceback frame in firmware or probe code (the place a fix goes), as a path relative to the
    firmware folder or the probes folder, with the function name."""
    best = ""
    for fs in traceback.extract_tb(exc.__traceback__):
        for base in (paths.FIRMWARE_DIR, *paths.probe_dirs(), paths.ROOT):
            try:
                rel = str(Path(fs.filename).resolve().relative_to(base))
            except ValueError:
                continue
            if base == paths.ROOT and not rel.startswith("meter_fuzz"):
                break
            best = f"{rel}:{fs.name}"
            break
    return best


def _failure(e: BaseException) -> Verdict:
    kind = "violation" if type(e).__name__ == "Violation" else "exception"
    return Verdict(kind, type(e).__name__, str(e)[:500], "".join(traceback.format_exception(e))[-6000:], _where(e))


def _run(target: Target, data: bytes) -> tuple[Verdict, object]:
    """The probe alone (what the time and memory oracles measure): its verdict and what it returned or raised."""
    try:
        result = target.probe.run(data)
    except target.errors as e:
        return Verdict("rejected", type(e).__name__, str(e)[:200]), e
    except Exception as e:  # noqa: BLE001 - an undocumented exception is exactly what this oracle looks for
        return _failure(e), None
    return Verdict("ok"), result


def _differential(target: Target, data: bytes, verdict: Verdict, result: object) -> Verdict:
    differential = target.extra("differential")
    if differential is None or verdict.is_finding:
        return verdict
    try:
        differential(data, result)
    except Exception as e:  # noqa: BLE001
        return _failure(e)
    return verdict


def _call(target: Target, data: bytes) -> Verdict:
    verdict, result = _run(target, data)
    return _differential(target, data, verdict, result)


def _traced(target: Target, data: bytes) -> tuple[Verdict, object, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        verdict, result = _run(target, data)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return verdict, result, peak


def execute(target: Target, data: bytes, *, slow_ms: float | None = SLOW_MS, check_memory: bool = False) -> Verdict:
    """Run one input and judge it. `slow_ms=None` turns the time oracle off; `check_memory` runs the probe under
    tracemalloc (several times slower: the engines sample it). Both oracles measure the probe alone, never the host's
    differential check."""
    peak = 0
    t0 = time.perf_counter()
    if check_memory:
        verdict, result, peak = _traced(target, data)
    else:
        verdict, result = _run(target, data)
    elapsed = time.perf_counter() - t0
    verdict = _differential(target, data, verdict, result)
    verdict.seconds = elapsed
    if verdict.is_finding:
        return verdict
    if check_memory:
        # the bytes the firmware was given: the input's, or more where the probe builds them from it (a structure-aware
        # mutation that repeats a string: 97 input bytes made a 393 KB mode file, which its reader must parse)
        size = max(len(data), getattr(target.probe, "mem_size", lambda d: 0)(data))
        bound = getattr(target.probe, "MEM_BASE", MEM_BASE) + getattr(target.probe, "MEM_PER_BYTE", MEM_PER_BYTE) * size
        if peak > bound:  # once more: a first run can pay for lazy imports, caches or the engine's own counters
            peak = min(peak, _traced(target, data)[2])
        if peak > bound:
            return Verdict("memory", message=f"{peak} B traced peak for a {len(data)}-byte input, {size} bytes to the "
                           f"firmware (bound {bound} B)",
                           peak_bytes=peak, seconds=elapsed)
    if slow_ms is not None and elapsed * 1000 > slow_ms:
        best = elapsed
        for _ in range(SLOW_RUNS - 1):
            t0 = time.perf_counter()
            _run(target, data)
            best = min(best, time.perf_counter() - t0)
            if best * 1000 <= slow_ms:
                break
        if best * 1000 > slow_ms:
            return Verdict("slow", message=f"{best * 1000:.0f} ms at best of {SLOW_RUNS} runs for a {len(data)}-byte "
                           f"input (bound {slow_ms:.0f} ms)", seconds=best)
    return verdict
