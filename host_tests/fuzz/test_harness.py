"""The harness itself: every oracle can fail (a planted target, host_tests/fuzz/planted, loaded through
$METER_FUZZ_PROBES as a tester's own target would be), findings are kept once per signature with a reproducer that
works on CPython and in the VM, minimisation keeps the signature, the built-in engine is deterministic, and the CLI's
exit codes mean what docs/security-testing.md says."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from meter_fuzz import findings, minimize, mutate, oracle, paths, targets

PLANTED = Path(__file__).resolve().parent / "planted"


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.setenv(paths.EXTRA_PROBES_ENV, str(PLANTED))
    paths._ready = False  # the probe folder joins sys.path
    paths.firmware_on_path()
    return targets.load("planted_bugs")


def cli(*args: str, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{paths.EXTRA_PROBES_ENV: str(PLANTED)})
    return subprocess.run([sys.executable, "-m", "meter_fuzz.cli", *args], capture_output=True, text=True,
                          timeout=240, env=env, cwd=out.parent)


def test_each_oracle_can_fail(planted):
    assert oracle.execute(planted, b"nothing").kind == "rejected"
    v = oracle.execute(planted, b"crash:")
    assert (v.kind, v.error) == ("exception", "KeyError") and v.where.endswith("planted_bugs.py:run")
    assert oracle.execute(planted, b"lie:").kind == "violation"
    assert oracle.execute(planted, b"differ:").kind == "violation"  # the host extra's differential
    assert oracle.execute(planted, b"hog:", check_memory=True).kind == "memory"
    assert oracle.execute(planted, b"hog:").kind == "ok"  # memory is only judged when sampled
    assert oracle.execute(planted, b"slow:", slow_ms=1).kind == "slow"
    assert oracle.execute(planted, b"slow:", slow_ms=None).kind == "ok"


def test_a_finding_is_kept_once_per_signature_with_the_smaller_input(planted, tmp_path):
    v = oracle.execute(planted, b"crash:" + b"A" * 50)
    f = findings.Finding.from_verdict("planted_bugs", v, b"crash:" + b"A" * 50, engine="builtin", seed=1)
    folder, new = findings.save(f, b"crash:" + b"A" * 50, tmp_path)
    assert new
    v2 = oracle.execute(planted, b"crash:B")
    assert v2.signature("planted_bugs") == v.signature("planted_bugs")  # the message's bytes don't split findings
    folder2, new2 = findings.save(findings.Finding.from_verdict("planted_bugs", v2, b"crash:B"), b"crash:B", tmp_path)
    meta = findings.load_meta(folder)
    assert folder2 == folder and not new2 and meta["hits"] == 2 and meta["size"] == 7
    assert (folder / "input.bin").read_bytes() == b"crash:B"
    for key in ("target", "kind", "signature", "summary", "traceback", "where", "seed", "engine", "firmware_tree",
                "found_at", "repro"):
        assert meta[key] not in (None, ""), key
    assert meta["repro"] == f"meter-fuzz repro {folder}"
    assert [p for p, _ in findings.all_findings(tmp_path)] == [folder]


def test_minimize_keeps_the_signature(planted):
    rng = random.Random(3)
    data = bytes(rng.randrange(256) for _ in range(40)) + b"crash:" + bytes(rng.randrange(256) for _ in range(90))
    want = oracle.execute(planted, data[40:]).signature("planted_bugs")

    def still(c: bytes) -> bool:
        v = oracle.execute(planted, c)
        return v.is_finding and v.signature("planted_bugs") == want

    assert not still(data)  # the prefix hides it: ddmin must not be asked to invent a finding
    small = minimize.ddmin(data[40:], still)
    assert small == b"crash:"


def test_the_builtin_mutations_are_deterministic_and_bounded():
    seeds = [b"\xa2\x61a\x01\x61b\x82\x01\x02", b"hello"]
    runs = []
    for _ in range(2):
        rng = random.Random(7)
        runs.append([mutate.mutate(seeds[k % 2], rng, 64, [b"\xff", b"ab"], seeds[1]) for k in range(500)])
    assert runs[0] == runs[1]
    assert all(len(x) <= 64 for x in runs[0]) and len(set(runs[0])) > 300
    assert mutate.parse_dictionary('# c\nkw="\\x01A\\\\"\n"OK"\n') == [b"\x01A\\", b"OK"]


def test_cli_run_finds_reproduces_and_minimizes(tmp_path):
    out = tmp_path / "fuzz-out"
    corpus = tmp_path / "camp"
    corpus.mkdir()
    (corpus / "c").write_bytes(b"crash:" + b"x" * 30)
    p = cli("run", "planted_bugs", "--engine", "builtin", "--runs", "300", "--corpus", str(corpus), "--out", str(out),
            "--json", out=out)
    assert p.returncode == 1, p.stderr  # exit 1: a new finding
    rec = json.loads(p.stdout)
    assert rec["execs"] == 300 and rec["new_findings"]
    folder = next(Path(f) for f in rec["new_findings"] if "exception-" in f)
    p = cli("repro", str(folder), "--json", out=out)
    assert p.returncode == 1 and json.loads(p.stdout)["reproduces"]
    p = cli("repro", str(folder), "--vm", "--json", out=out)  # the same input breaks the probe in the VM too
    assert p.returncode == 1 and json.loads(p.stdout)["verdict"] == "exception", p.stdout + p.stderr
    assert "KeyError" in json.loads(p.stdout)["detail"]
    p = cli("minimize", str(folder), "--json", out=out)
    assert p.returncode == 0 and (folder / "input.min.bin").read_bytes() == b"crash:"
    (folder / "input.min.bin").write_bytes(b"fine now")  # what a fixed target would do with the input
    p = cli("repro", str(folder), out=out)
    assert p.returncode == 0 and "fixed" in p.stderr
    p = cli("report", "--no-coverage", "--out", str(out), "--json", out=out)
    assert p.returncode == 0
    row = next(r for r in json.loads(p.stdout)["targets"] if r["target"] == "planted_bugs")
    assert row["execs"] == 300 and len(row["findings"]) >= 1


@pytest.mark.skipif(not __import__("meter_fuzz.engine").engine.atheris_available(), reason="atheris not installed")
def test_the_coverage_guided_engine_reports_findings_and_keeps_going(tmp_path):
    out = tmp_path / "fuzz-out"
    corpus = tmp_path / "camp"
    corpus.mkdir()
    (corpus / "c").write_bytes(b"crash:")
    (corpus / "l").write_bytes(b"lie:")
    p = cli("run", "planted_bugs", "--engine", "atheris", "--runs", "2000", "--corpus", str(corpus), "--out", str(out),
            "--json", out=out)
    assert p.returncode == 1, p.stderr
    rec = json.loads(p.stdout)
    kinds = {Path(f).name.split("-")[0] for f in rec["new_findings"]}
    assert {"exception", "violation"} <= kinds and rec["execs"] == 2000, rec  # both, in one campaign


def test_cli_usage_errors(tmp_path):
    out = tmp_path / "fuzz-out"
    p = cli("run", "no_such_target", "--runs", "1", "--out", str(out), out=out)
    assert p.returncode == 2 and "no target" in p.stderr
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    p = cli("repro", str(bogus), out=out)
    assert p.returncode == 2 and "no finding.json" in p.stderr
