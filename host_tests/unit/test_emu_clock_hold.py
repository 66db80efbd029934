"""The device clock's hold for a peer outside the VM (emulator/device/_emu_clock.py hold_for/hold_end), in the real
MicroPython VM: after the meter answers a host on the network or a DLMS client on the optical port, device time runs
at most at 1x, and idle waits are not skipped at --speed max, until that peer's next datagram or bytes come (at most
the hold's wall time). So a head-end slow to answer on a loaded machine never finds the meter's association timed
out by skipped idle time (the CI failure of f4ebca0), and the link's own delays are still skipped once it has."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "host_tests" / "vm" / "emu_stubs"

BODY = """
import utime
out = {}
clock.set_speed("max")
out["free_before"] = clock.can_skip()
clock.hold_for(5000000, "net")
out["held"] = not clock.can_skip()
out["left_s"] = clock.hold_left_us() // 1000000
clock.hold_end("optical")  # another peer's bytes: not the answer this hold waits for
out["held_after_other"] = not clock.can_skip()
clock.hold_end("net")
out["free_after_answer"] = clock.can_skip() and clock.hold_left_us() == 0
clock.hold_for(2000, "optical")  # a client that never answers: the hold ends with its wall time
utime.sleep_ms(10)
out["free_after_time"] = clock.can_skip()
clock.set_speed(1)
clock.hold_for(5000000, "net")
clock.hold_end("net")
out["rate_at_1x"] = clock.rate()
print("OUT " + json.dumps(out))
"""


def test_a_hold_ends_at_its_own_peer_s_answer_or_its_wall_time(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(ROOT / "emulator" / "device" / "_emu_clock.py", real)  # the real clock, the stub bus beside it
    script = tmp_path / "t.py"
    script.write_text("import json\nimport _emu_clock as clock\n" + textwrap.dedent(BODY))
    exe = Path(sys.executable).with_name("micropython")
    (tmp_path / "cfg.json").write_text("{}")  # (the stub bus reads a configuration; the clock needs none)
    env = dict(os.environ, MEMU_CONFIG=str(tmp_path / "cfg.json"),
               MICROPYPATH=os.pathsep.join([str(real), str(STUBS), ".frozen"]))
    p = subprocess.run([str(exe), str(script)], capture_output=True, text=True, env=env, timeout=60)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("OUT ")), None)
    assert p.returncode == 0 and line, p.stdout + p.stderr
    out = json.loads(line[4:])
    assert out == {"free_before": True, "held": True, "left_s": 4, "held_after_other": True,
                   "free_after_answer": True, "free_after_time": True, "rate_at_1x": 1.0}, out
