"""Each protocol table is defined once: the host reads the firmware's event codes, class-70 states, counter step and
slot budget from the firmware's source (ota_tool/device_policy.py), its SMP group return codes are enums that match
the firmware's constants, and the docs hold the same tables (docs/smp-groups.md, docs/relay-and-credit.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ota_tool import device_policy, supply
from ota_tool.meter_groups import GROUP_METERING, MeteringRc
from ota_tool.network_groups import GROUP_NETWORK, NetworkRc
from ota_tool.supply_groups import GROUP_SUPPLY, SupplyRc

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware"
DOCS = ROOT / "docs"


def firmware_constants(path: Path, prefix: str) -> dict[str, int]:
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and \
                node.targets[0].id.startswith(prefix):
            v = node.value
            if isinstance(v, ast.Call):
                v = v.args[0]
            assert isinstance(v, ast.Constant)
            out[node.targets[0].id.removeprefix(prefix)] = v.value
    return out


def test_group_numbers_match_the_firmware():
    assert firmware_constants(FW / "app" / "meter_group.py", "GROUP_") == {"METERING": GROUP_METERING}
    assert firmware_constants(FW / "app" / "supply_group.py", "GROUP_") == {"SUPPLY": GROUP_SUPPLY}
    assert firmware_constants(FW / "app" / "main.py", "_GROUP_") == {"NETWORK": GROUP_NETWORK}


def test_group_return_codes_match_the_firmware_and_the_docs():
    fw65 = firmware_constants(FW / "app" / "meter_group.py", "RC_")
    fw66 = firmware_constants(FW / "app" / "supply_group.py", "RC_")
    fw67 = firmware_constants(FW / "app" / "network.py", "RC_")
    assert fw65 == {m.name: m.value for m in MeteringRc if m.value}
    assert fw66 == {m.name: m.value for m in SupplyRc if m.value}
    assert fw67 == {m.name: m.value for m in NetworkRc if m.value}
    doc = (DOCS / "smp-groups.md").read_text().split("## Group return codes", 1)[1]
    rows = {(int(g), int(rc), name) for g, rc, name in re.findall(r"^\| (\d+) \| (\d+) \| ([A-Z_]+) \|", doc, re.M)}
    assert rows == {(GROUP_METERING, v, k) for k, v in fw65.items()} | {(GROUP_SUPPLY, v, k) for k, v in fw66.items()} \
        | {(GROUP_NETWORK, v, k) for k, v in fw67.items()}


def test_event_codes_are_the_firmware_s_and_the_docs_list_them_all():
    codes = device_policy.event_codes()
    assert supply.EVENTS == codes and codes[424] == "rolled back" and codes[413] == "credit reset"
    doc = (DOCS / "relay-and-credit.md").read_text()
    listed = {int(c) for cell in re.findall(r"^\| (\d{3}(?: / \d{3})*) \|", doc, re.M) for c in cell.split("/") if c.strip()}
    assert listed == set(codes)


def test_class70_states_are_the_firmware_s_and_the_docs():
    states = device_policy.class70_states()
    assert supply.STATES == states
    doc = (DOCS / "relay-and-credit.md").read_text()
    m = re.search(r"`control_state`: 0 (\w+), 1 (\w+), 2 (\w+)", doc)
    assert m and [w.replace("_", " ") for w in m.groups()] == [states[0], states[1], "ready for reconnection"]


def test_the_counter_step_and_slot_budget_are_the_firmware_s():
    src = (FW / "loader" / "staging.py").read_text()
    step = int(re.search(r"^MAX_COUNTER_STEP = const\((\d+)\)", src, re.M).group(1))
    dev = device_policy.modules()
    assert dev.max_counter_step == step
    board = {"flash": {"block_size": 4096, "block_count": 512}}
    assert dev.slot_budget(board) == 4096 * 512 // 4


def test_the_dlms_object_table_is_the_meters_object_list():
    """docs/dlms.md lists every object of the public client's association, in the object list's order, under its
    class (firmware/app/dlms_objects.py Objects.names() of a meter with every optional part)."""
    import sys

    for p in (ROOT / "meterkit" / "mpy_compat", FW / "lib", FW, ROOT / "host_tests" / "firmware"):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    import mpy_port

    mpy_port.install()
    import fwtest
    from app import dlms_objects, dsp, events, registers
    from app.tick import Tick

    objects = dlms_objects.Objects(Tick(dsp.Reading(), registers.Registers()), fwtest.disconnect_control(),
                                   b"MKT0000000000042", lambda: 330, events.EventLog(), (b"s", b"i", b"m", b"v", b"r"),
                                   lambda: 1800, fwtest.meter_parts()[2],
                                   ({"ip": "10.64.0.1", "port": 1337, "dlms_port": 4059}, 3, 60))
    want = [(cls, ".".join(str(b) for b in obis)) for cls, obis in objects.names()]
    text = (DOCS / "dlms.md").read_text()
    table = text.split("<!-- dlms-objects")[1].split("<!-- /dlms-objects -->")[0]
    rows = re.findall(r"^\| ([\d.]+) \| (\d+) [a-z]", table, re.M)
    assert [(int(c), ln) for ln, c in rows] == want
