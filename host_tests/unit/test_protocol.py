"""The bus kinds in emulator/protocol.py are the ones both sides use: every kind the VM's shims or the host send or
handle is in the table, and every kind in the table is used."""

from __future__ import annotations

import re
from pathlib import Path

from emulator import protocol
from emulator.gate import GATED

ROOT = Path(__file__).resolve().parents[2]
DEVICE = ROOT / "emulator" / "device"
HOST = [ROOT / "emulator" / n for n in ("meter.py", "gate.py", "bus.py")]


def kinds(paths, pattern: str) -> set[str]:
    out: set[str] = set()
    for p in paths:
        out |= set(re.findall(pattern, p.read_text()))
    return out


def test_every_kind_the_vm_sends_or_handles_is_in_the_table():
    dev = list(DEVICE.glob("*.py"))
    assert kinds(dev, r'"t": "([a-z_]+)"') <= set(protocol.FROM_DEVICE)
    assert kinds(dev, r'\bon\("([a-z_]+)"') | {"config"} == set(protocol.TO_DEVICE)


def test_every_kind_the_host_sends_or_handles_is_in_the_table():
    sent = kinds(HOST, r'\{"t": "([a-z_]+)"')
    handled = kinds(HOST, r'\bt == "([a-z_]+)"') | kinds(HOST, r'\bt in \(("[^)]*)\)')
    handled = {k.strip(' "') for x in handled for k in x.split(",")}
    assert sent <= set(protocol.TO_DEVICE) | {"config"}
    assert handled <= set(protocol.FROM_DEVICE)
    assert set(protocol.FROM_DEVICE) - handled <= {"installed"}  # read by the install step's own loop
    assert GATED <= set(protocol.TO_DEVICE)
