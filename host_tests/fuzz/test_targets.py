"""Every meter-fuzz target, in the default run: its committed corpus replays with no finding on CPython and in the
MicroPython VM, and a short seeded campaign (a fixed number of inputs, never a time budget: a busy host changes
nothing but the duration) makes no new finding. The campaign's findings folder is kept in pytest's tmp_path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from meter_fuzz import engine, oracle, targets, vm

NAMES = targets.names()
RUNS = 3000  # per target, seeded: a few seconds each
SLOW_MS_SUITE = 5000.0  # the time oracle stays on, with a bound no busy host reaches


def test_every_target_has_seeds_modules_and_documented_errors():
    assert len(NAMES) >= 2
    for t in targets.load_all():
        assert t.seed_inputs(), f"{t.name}: no committed seed corpus in {t.corpus_dir}"
        assert t.modules and all(p.exists() for p in t.module_files), t.name
        assert t.errors and all(issubclass(e, BaseException) for e in t.errors), t.name
        assert t.summary, t.name


@pytest.mark.parametrize("name", NAMES)
def test_committed_corpus_replays_clean_on_cpython(name):
    t = targets.load(name)
    setup = getattr(t.probe, "setup", None)
    if setup is not None:
        setup()
    for k, data in enumerate(t.seed_inputs()):
        v = oracle.execute(t, data, slow_ms=SLOW_MS_SUITE, check_memory=True)
        assert not v.is_finding, f"{name} seed {k}: {v.summary()}\n{v.traceback}"


@pytest.mark.parametrize("name", NAMES)
def test_committed_corpus_replays_clean_in_the_vm(name):
    t = targets.load(name)
    recs = vm.replay(name, t.seed_inputs())
    bad = [r for r in recs if r["verdict"] in oracle.FINDINGS]
    assert not bad, f"{name} in the VM: {bad[:3]}"
    assert len(recs) == len(t.seed_inputs())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_short_seeded_campaign_finds_nothing(name, tmp_path):
    # as a tester runs it, with the default --out (a relative folder: a probe that works in a scratch folder of its
    # own, boot_records, once left libFuzzer without its corpus folder and the run ended at once)
    proc = subprocess.run([sys.executable, "-m", "meter_fuzz.cli", "run", name, "--runs", str(RUNS), "--seed", "1",
                           "--slow-ms", str(SLOW_MS_SUITE), "--json"],
                          capture_output=True, text=True, timeout=280, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    rec = json.loads(proc.stdout)
    assert rec["execs"] >= RUNS and not rec["errors"], rec
    found = [json.loads((Path(f) / "finding.json").read_text())["summary"] for f in rec["new_findings"]]
    assert proc.returncode == 0 and not found, f"{name}: {found}"


@pytest.mark.parametrize("name", NAMES)
def test_the_vm_mutation_loop_finds_nothing(name):
    t = targets.load(name)
    execs, found = vm.mutate_loop(name, t.seed_inputs(), seed=1, runs=RUNS, max_len=engine.MAX_LEN,
                                  dictionary=t.dictionary)
    assert execs == RUNS
    assert not found, f"{name} in the VM: {found[:2]}"


def test_the_probes_wire_group_67_as_the_app_does():
    """meter_fuzz/probes/_appwire.py mirrors lines of app/main.py's _main (inline there for the heap)."""
    import ast

    from meter_fuzz import paths

    src = (paths.FIRMWARE_DIR / "app" / "main.py").read_text()
    tree = ast.parse((paths.PROBES_DIR / "_appwire.py").read_text())
    mirrors = next(ast.literal_eval(n.value) for n in tree.body
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "MIRRORS")
    missing = [line for line in mirrors if line not in src]
    assert not missing, f"app/main.py changed; update meter_fuzz/probes/_appwire.py: {missing}"


def test_dlms_get_seeds_name_the_objects_they_mean():
    """meter_fuzz/host/dlms_get.py picks objects by their place in the probe meter's object list: an object added to
    the model moves the places, so the seeds and the regression input must move with them."""
    from meter_fuzz.host import dlms_get as host

    t = targets.load("dlms_get")
    names = t.probe._NAMES
    obis = t.probe.cosem.obis
    assert [names[k] for k in host.PROFILES] == [(7, obis(f"0.0.99.98.{c}.255")) for c in range(7)]
    assert names[host.POWER] == (7, obis("0.0.99.98.2.255")) and names[host.DAILY] == (7, obis("1.0.99.2.0.255"))
    assert names[63:] == [(cls, obis(name)) for cls, name in host.BY_NAME]  # those reached by name
    regress = (t.corpus_dir / "regress-daily-by-entry").read_bytes()
    assert names[regress[0] & 0x3F] == (7, obis("1.0.99.2.0.255")), regress
