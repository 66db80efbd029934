"""The board's cellular module (`modem`: type and power-key GPIO, boards/SCHEMA.md): the shipped boards name one,
each mistake gets its own error, and the host's list of module types is the firmware's list of dialects."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest

from meterkit import boards
from meterkit.boards import BoardError, load_board, validate_board

ROOT = Path(__file__).resolve().parents[2]
ESP = "boards/esp32_devkitc.json"
PICO = "boards/rpi_pico.json"


def errors(board_id: str, source: str, mutate) -> list[str]:
    d = copy.deepcopy(load_board(board_id))
    mutate(d)
    with pytest.raises(BoardError) as e:
        validate_board(d, source, file_stem=board_id)
    return e.value.errors


def firmware_dialects() -> tuple:
    tree = ast.parse((ROOT / "firmware" / "app" / "modem.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["DIALECTS"]:
            return ast.literal_eval(node.value)
    raise AssertionError("no DIALECTS in firmware/app/modem.py")


def test_the_host_knows_exactly_the_firmware_s_dialects():
    assert boards.MODEM_TYPES == firmware_dialects()
    for t in boards.MODEM_TYPES:
        assert (ROOT / "firmware" / "app" / f"modem_{t}.py").exists()


def test_the_host_names_every_dialect_s_error_numbers():
    # the firmware keeps the numbers only (AtError.code); what they mean is the host's table
    assert sorted(boards.MODEM_ERRORS) == sorted(boards.MODEM_TYPES)
    assert boards.modem_error_name("bc660k", 302) == "UE busy"
    assert boards.modem_error_name("bc660k", 566) == "connect refused"
    assert boards.modem_error_name("bc660k", 568) == "socket busy"
    assert boards.modem_error_name("bc660k", 304) == "PDN not active"
    assert boards.modem_error_name("bc660k", 50) == "bad parameter"
    assert boards.modem_error_name("bc660k", 9999) == ""
    assert boards.modem_error_name("sim800", 302) == ""
    # the dialect's own use of a number (563: the module still holds a socket id) is in the table
    source = (ROOT / "firmware" / "app" / "modem_bc660k.py").read_text()
    assert "_SOCKET_IN_USE = const(563)" in source and boards.MODEM_ERRORS["bc660k"][563] == "socket id in use"


@pytest.mark.parametrize("board_id", boards.list_boards())
def test_every_shipped_board_names_its_module_and_a_free_output_for_the_power_key(board_id):
    m = load_board(board_id)["modem"]
    assert m["type"] in boards.MODEM_TYPES and isinstance(m["pwrkey"], int)


def test_a_board_without_a_power_key_is_valid_and_one_without_a_modem_entry_is_not():
    d = copy.deepcopy(load_board("esp32_devkitc"))
    d["modem"]["pwrkey"] = None
    validate_board(d, ESP, file_stem="esp32_devkitc")
    # (the firmware still runs, with no modem, from a meter/board.json written before this key existed)
    assert errors("esp32_devkitc", ESP, lambda d: d.pop("modem")) == [f"{ESP}: modem: missing (required)"]


def test_an_unknown_module_type_is_named():
    assert errors("esp32_devkitc", ESP, lambda d: d["modem"].update(type="sim800")) == [
        f'{ESP}: modem.type: expected "bc660k" (the modules the firmware has an AT dialect for), got "sim800"'
    ]


def test_the_power_key_is_a_free_output_gpio():
    assert errors("esp32_devkitc", ESP, lambda d: d["modem"].update(pwrkey=25)) == [
        f"{ESP}: modem.pwrkey: GPIO 25 is already used by pins.relay_set.gpio (a GPIO has one role)"
    ]
    assert errors("esp32_devkitc", ESP, lambda d: d["modem"].update(pwrkey=36)) == [
        f"{ESP}: modem.pwrkey: GPIO 36 is input-only on esp32 (34..39), and modem needs an output"
    ]
    assert errors("rpi_pico", PICO, lambda d: d["modem"].update(pwrkey="2")) == [
        f'{PICO}: modem.pwrkey: expected an integer 0..29 for rp2040, got "2"'
    ]


def test_the_modem_takes_exactly_its_two_keys():
    got = errors("rpi_pico", PICO, lambda d: d.update(modem={"type": "bc660k", "pwrkey": None, "apn": "x"}))
    assert got == [f"{PICO}: modem.apn: unknown key; modem takes: pwrkey, type"]
    got = errors("rpi_pico", PICO, lambda d: d.update(modem={"type": "bc660k"}))
    assert got == [f"{PICO}: modem.pwrkey: missing (required)"]
    got = errors("rpi_pico", PICO, lambda d: d.update(modem="bc660k"))
    assert len(got) == 1 and got[0].startswith(f"{PICO}: modem: expected an object")
