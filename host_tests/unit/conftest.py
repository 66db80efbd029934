"""CPython-only unit tests import firmware modules the way a board does: firmware/lib top-level (`import cbor`),
loader/ and app/ as packages, and the CPython stand-in for MicroPython's `micropython` module."""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
for _p in (_ROOT / "meterkit" / "mpy_compat", _ROOT / "host_tests" / "firmware", _ROOT / "firmware",
           _ROOT / "firmware" / "lib"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import mpy_port  # noqa: E402  (on the path just above)

mpy_port.install()  # os.ilistdir and time.ticks_* for firmware code on CPython
