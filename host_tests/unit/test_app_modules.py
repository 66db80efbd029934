"""Each board gets the app modules it can import, and not the other front end's or another module type's modem driver
(firmware/app/modules.json, read by
meterkit.layout.app_sources for `ota build`, `ota provision` and the emulator); a broken list fails the build with a
message naming the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from meterkit import layout
from meterkit.boards import load_board
from ota_tool import bundle
from ota_tool.errors import BuildFailed

ROOT = Path(__file__).resolve().parents[2]
BOARDS = sorted(p.stem for p in (ROOT / "boards").glob("*.json"))
_FILE = json.loads((ROOT / "firmware" / "app" / "modules.json").read_text())
SPEC = _FILE["frontend"]
MODEMS = _FILE["modem"]
NOT_STARTED = set(_FILE.get("not_started", []))


def names(board_id: str) -> set[str]:
    return {p.name for p in layout.app_sources(load_board(board_id))}


@pytest.mark.parametrize("board_id", BOARDS)
def test_a_board_gets_its_front_end_and_not_the_others(board_id):
    kind = load_board(board_id)["frontend"]["type"]
    got = names(board_id)
    assert set(SPEC[kind]) <= got
    assert not ({m for k, v in SPEC.items() if k != kind for m in v} - set(SPEC[kind])) & got
    every = {p.name for p in (ROOT / "firmware" / "app").glob("*.py")}
    modem = (load_board(board_id).get("modem") or {}).get("type")
    other_modems = {m for k, v in MODEMS.items() if k != modem for m in v} - set(MODEMS.get(modem, []))
    optical = set() if "optical" in load_board(board_id)["uarts"] else set(_FILE["optical"])
    assert every - got == ({m for k, v in SPEC.items() if k != kind for m in v} - set(SPEC[kind])) | NOT_STARTED \
        | other_modems | optical
    assert not NOT_STARTED & got  # built and tested, but no board's app starts them: not shipped


def test_a_board_without_a_modem_gets_no_driver_and_one_with_gets_its_own():
    board = load_board("esp32_devkitc")
    assert board["modem"]["type"] == "bc660k"
    assert set(MODEMS["bc660k"]) <= {p.name for p in layout.app_sources(board)}
    bare = {k: v for k, v in board.items() if k != "modem"}
    got = {p.name for p in layout.app_sources(bare)}
    assert not {m for v in MODEMS.values() for m in v} & got and "network.py" in got


def test_every_front_end_of_the_board_schema_has_an_entry():
    kinds = {load_board(b)["frontend"]["type"] for b in BOARDS}
    assert kinds <= set(SPEC) and len(kinds) >= 2


@pytest.mark.parametrize("board_id", ["esp32_devkitc", "rpi_pico_bl0942"])
def test_the_bundle_carries_exactly_the_boards_modules(board_id):
    b = bundle.unpack(bundle.build(ROOT / "firmware", board_id, "1.0.0", 1))
    assert {Path(p).with_suffix(".py").name for p, _ in b.files} == names(board_id)


@pytest.mark.parametrize("spec, problem", [
    ("{not json", "JSONDecodeError"),
    ('{"frontend": {"adc": "adc_frontend.py", "bl0942": []}}', "list of module file names"),
    ('{"frontend": {"bl0942": ["bl0942.py"]}}', "no entry for front end 'adc'"),
    ('{"frontend": {"adc": ["adc_frontend.py", "nope.py"], "bl0942": []}}', "nope.py"),
    ('{}', "KeyError"),
    ('{"frontend": {"adc": [], "bl0942": []}, "not_started": ["gone.py"]}', "'not_started' lists gone.py"),
    ('{"frontend": {"adc": [], "bl0942": []}, "not_started": "modem.py"}', "'not_started' must be a list"),
    ('{"frontend": {"adc": [], "bl0942": []}, "modem": {"bg95": ["modem.py"]}}', "no entry for modem type 'bc660k'"),
    ('{"frontend": {"adc": [], "bl0942": []}, "modem": {"bc660k": "modem.py"}}', "'modem' must map"),
    ('{"frontend": {"adc": [], "bl0942": []}, "modem": {"bc660k": ["modem_bg.py"]}}', "modem 'bc660k' lists modem_bg"),
])
def test_a_broken_list_fails_the_build_naming_the_problem(tmp_path, spec, problem):
    fw = tmp_path / "firmware"
    shutil.copytree(ROOT / "firmware", fw, ignore=shutil.ignore_patterns("__pycache__"))
    (fw / "app" / "modules.json").write_text(spec)
    with pytest.raises(BuildFailed, match=problem) as e:
        bundle.build(fw, "esp32_devkitc", "1.0.0", 1)
    assert "modules.json" in str(e.value)


def test_only_a_board_with_an_optical_port_gets_the_dlms_modules():
    with_port = names("esp32_devkitc")
    assert set(_FILE["optical"]) <= with_port and "dlms_port.py" in with_port
    assert not set(_FILE["optical"]) & names("esp32_devkitc_bl0942")  # its third UART drives the BL0942
