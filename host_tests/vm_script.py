"""Run a script in the real MicroPython VM (the package's unix port) and read the one JSON object it prints after
"OUT ": for tests of the emulator's device-side modules on a heap the script itself fills."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FILL = """
for size in %s:  # the firmware's heap, in pieces
    try:
        while True:
            head = [bytearray(size), head]
    except MemoryError:
        pass
"""  # a script's heap filled in pieces of these sizes, kept in `head` (set head = None first)


def run(tmp_path: Path, text: str, heapsize: int = 300000) -> dict:
    script = tmp_path / "t.py"
    script.write_text(text)
    exe = Path(sys.executable).with_name("micropython")
    p = subprocess.run([str(exe), "-X", f"heapsize={heapsize}", str(script)], capture_output=True, text=True,
                       timeout=60)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("OUT ")), None)
    assert p.returncode == 0 and line, p.stdout + p.stderr
    return json.loads(line[4:])
