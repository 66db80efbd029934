"""CPython-only unit tests import firmware library modules (e.g. `import cbor`) the way a board does: firmware/lib
top-level."""

import sys
from pathlib import Path

_LIB = str(Path(__file__).resolve().parents[2] / "firmware" / "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)
