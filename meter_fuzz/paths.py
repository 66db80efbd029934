"""Where the firmware and the probes are, and how CPython imports firmware modules exactly as a board does
(lib/ modules top-level, loader/ and app/ as packages, MicroPython's own modules from meterkit/mpy_compat)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from meterkit.layout import FIRMWARE_DIR, ROOT

PROBES_DIR = Path(__file__).resolve().parent / "probes"
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"  # committed seed corpora, one folder per target
DICTS_DIR = Path(__file__).resolve().parent / "dicts"  # libFuzzer dictionaries, <target>.dict
MPY_COMPAT = ROOT / "meterkit" / "mpy_compat"

EXTRA_PROBES_ENV = "METER_FUZZ_PROBES"  # more probe folders (os.pathsep-separated): a tester's own targets

_ready = False


def probe_dirs() -> list[Path]:
    """The package's probes, then any folders named in $METER_FUZZ_PROBES (a tester's own targets, which child
    processes and the VM see too)."""
    import os

    extra = [Path(p).resolve() for p in os.environ.get(EXTRA_PROBES_ENV, "").split(os.pathsep) if p]
    return [PROBES_DIR, *extra]


def firmware_on_path() -> None:
    """Put the firmware, the probes and the MicroPython stand-ins on sys.path (once) and give `os`/`time` what
    MicroPython has and CPython lacks."""
    global _ready
    if _ready:
        return
    for p in (FIRMWARE_DIR / "lib", FIRMWARE_DIR, *probe_dirs(), MPY_COMPAT):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    import mpy_port  # type: ignore[import-not-found]  # meterkit/mpy_compat, on the path just above

    mpy_port.install()
    _ready = True


def micropython_path() -> str:
    """MICROPYPATH for the VM: the same import roots as CPython's, minus the stand-ins the VM has natively."""
    import os

    return os.pathsep.join([*map(str, probe_dirs()), str(FIRMWARE_DIR / "lib"), str(FIRMWARE_DIR), ".frozen"])


def firmware_tree_hash() -> str:
    """A hash of every file under firmware/ and the probes (path and content), so a finding names the code it was
    found on even outside a git checkout."""
    h = hashlib.sha256()
    for base in (FIRMWARE_DIR, *probe_dirs()):
        for p in sorted(base.rglob("*.py")) + sorted(base.rglob("*.json")):
            if "__pycache__" in p.parts:
                continue
            h.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]
