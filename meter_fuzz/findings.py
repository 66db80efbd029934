"""One folder per finding: FINDINGS/<target>/<kind>-<signature>/ holding

    input.bin      the input (for an attack: inputs.jsonl, the sequence of steps)
    input.min.bin  the smallest input that still gives the same finding (`meter-fuzz minimize`)
    finding.json   target, kind, summary, exception type and traceback or the violated invariant, where it was
                   raised, board, engine, seed, firmware tree hash, runtime, when, how often it was hit, and the
                   one-line command that reproduces it

The same signature found again only counts a hit (and keeps the smaller input), so a campaign that hits one bug a
million times leaves one folder."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meter_fuzz import paths
from meter_fuzz.oracle import Verdict

DEFAULT_OUT = Path("fuzz-out")


class BadFinding(ValueError):
    pass


@dataclass
class Finding:
    target: str
    kind: str
    signature: str
    summary: str
    error: str = ""
    message: str = ""
    traceback: str = ""
    where: str = ""
    board: str = ""
    engine: str = ""
    seed: int | None = None
    runtime: str = "cpython"
    firmware_tree: str = ""
    found_at: str = ""
    hits: int = 1
    size: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_verdict(cls, target: str, verdict: Verdict, data: bytes, **kw) -> Finding:
        return cls(target=target, kind=verdict.kind, signature=verdict.signature(target), summary=verdict.summary(),
                   error=verdict.error, message=verdict.message, traceback=verdict.traceback, where=verdict.where,
                   firmware_tree=paths.firmware_tree_hash(), size=len(data),
                   found_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **kw)

    def folder(self, out: Path) -> Path:
        return out / "findings" / self.target / f"{self.kind}-{self.signature}"

    def repro_command(self, folder: Path) -> str:
        vm = " --vm" if self.runtime == "vm" else ""
        return f"meter-fuzz repro {folder}{vm}"


def save(finding: Finding, data: bytes, out: Path = DEFAULT_OUT) -> tuple[Path, bool]:
    """Write (or count a hit on) a finding; return its folder and whether it is new."""
    folder = finding.folder(out)
    meta = folder / "finding.json"
    if meta.exists():
        old = load_meta(folder)
        old["hits"] = int(old.get("hits", 1)) + 1
        if len(data) < (folder / "input.bin").stat().st_size:
            _write(folder / "input.bin", data)
            old["size"] = len(data)
        _write(meta, json.dumps(old, indent=2).encode())
        return folder, False
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "input.bin", data)
    rec = asdict(finding)
    rec["repro"] = finding.repro_command(folder)
    _write(meta, json.dumps(rec, indent=2).encode())
    return folder, True


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)  # a finding is never half-written, even when a campaign is killed


def load_meta(folder: Path) -> dict:
    try:
        rec = json.loads((folder / "finding.json").read_text())
    except FileNotFoundError:
        raise BadFinding(f"{folder} is not a finding: it has no finding.json") from None
    except json.JSONDecodeError as e:
        raise BadFinding(f"{folder}/finding.json is not valid JSON: {e}") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("target"), str):
        raise BadFinding(f"{folder}/finding.json names no target")
    return rec


def load_input(folder: Path, *, minimized: bool = True) -> bytes:
    for name in (("input.min.bin", "input.bin") if minimized else ("input.bin",)):
        p = folder / name
        if p.exists():
            return p.read_bytes()
    raise BadFinding(f"{folder} has no input.bin")


def all_findings(out: Path = DEFAULT_OUT) -> list[tuple[Path, dict]]:
    base = out / "findings"
    found = []
    for meta in sorted(base.glob("*/*/finding.json")):
        try:
            found.append((meta.parent, load_meta(meta.parent)))
        except BadFinding:
            continue
    return found
