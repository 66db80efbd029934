"""Board definitions: the shipped boards validate, and every kind of mistake in a board file gets its own clear error
naming the file, the JSON path and what was expected."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterkit import boards
from meterkit.boards import BoardError, list_boards, load_board, validate_board

SHIPPED = ("esp32_devkitc", "esp32_devkitc_bl0942", "rpi_pico", "rpi_pico_bl0942")
PICO = "boards/rpi_pico.json"
ESP = "boards/esp32_devkitc.json"


def board(board_id: str) -> dict:
    return copy.deepcopy(load_board(board_id))


def errors_of(data: dict, source: str, stem: str | None = None) -> list[str]:
    with pytest.raises(BoardError) as e:
        validate_board(data, source, file_stem=stem)
    return e.value.errors


def pico_errors(mutate) -> list[str]:
    d = board("rpi_pico")
    mutate(d)
    return errors_of(d, PICO, "rpi_pico")


def esp_errors(mutate) -> list[str]:
    d = board("esp32_devkitc")
    mutate(d)
    return errors_of(d, ESP, "esp32_devkitc")


def set_in(d: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        d = d[key]
    d[last] = value


def delete_in(d: dict, path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        d = d[key]
    del d[last]


def delete_in_copy(d: dict, path: str) -> dict:
    d = copy.deepcopy(d)
    delete_in(d, path)
    return d


def leaf_paths(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        p = f"{prefix}.{k}" if prefix else k
        out.append(p)
        if isinstance(v, dict):
            out += leaf_paths(v, p)
    return out


# -- the shipped boards ------------------------------------------------------------------------------------------

def test_shipped_boards_are_listed():
    assert set(SHIPPED) <= set(list_boards())
    assert list_boards() == sorted(list_boards())


@pytest.mark.parametrize("board_id", SHIPPED)
def test_shipped_board_validates_and_is_the_plain_json(board_id):
    path = boards.BOARDS_DIR / f"{board_id}.json"
    d = load_board(board_id)
    assert d == json.loads(path.read_text())  # what the device reads is exactly what the host checked
    assert d["id"] == board_id
    assert d["mcu"]["arch"] == boards.ARCH_OF_FAMILY[d["mcu"]["family"]]
    assert load_board(path) == d
    assert load_board(str(path)) == d


def test_shipped_board_facts():
    esp, pico = load_board("esp32_devkitc"), load_board("rpi_pico")
    assert esp["flash"]["block_count"] * esp["flash"]["block_size"] == 2 * 1024 * 1024
    assert pico["flash"]["block_count"] * pico["flash"]["block_size"] == 1408 * 1024
    assert pico["pins"]["led"]["gpio"] == 25
    assert {c["gpio"] for c in esp["adc"]["channels"].values()} <= set(range(32, 40))
    assert {c["gpio"] for c in pico["adc"]["channels"].values()} <= {26, 27, 28}
    assert pico["uarts"]["console"] == {"id": boards.USB_CONSOLE}
    assert esp["uarts"]["console"]["id"] == 0 and esp["uarts"]["console"]["baud"] == 115200
    assert pico["adc"].get("attenuation_db") is None and esp["adc"]["attenuation_db"] == 11


def test_module_cli_validates_every_board(capsys):
    assert boards.main([]) == 0
    assert capsys.readouterr().out.split("\n")[:4] == [f"{b}: ok" for b in SHIPPED]


# -- missing, wrong type, unknown keys ---------------------------------------------------------------------------

OPTIONAL = {"notes", "uarts.optical", "pins.cover", "flash.erase_cycles", "flash.erase_us", "flash.page_program_us", "adc.nonlinearity", "adc.bias_volts", "adc.read_us", "metering.accuracy"}
OPTIONAL_BL0942 = {"frontend.address", "frontend.period_ms"}


@pytest.mark.parametrize("board_id", SHIPPED)
def test_every_required_field_reports_missing(board_id):
    original = board(board_id)
    optional = OPTIONAL | ({"adc.attenuation_db"} if original["mcu"]["family"] == boards.RP2040 else set())
    if original["frontend"]["type"] == "bl0942":
        optional |= OPTIONAL_BL0942
    source = f"boards/{board_id}.json"
    for path in leaf_paths(original):
        d = copy.deepcopy(original)
        delete_in(d, path)
        if path in optional:
            validate_board(d, source, file_stem=board_id)
            continue
        errors = errors_of(d, source, board_id)
        assert any(e.startswith(f"{source}: {path}: missing (required") for e in errors), (path, errors)


def test_missing_attenuation_on_esp32_says_which_values():
    assert esp_errors(lambda d: delete_in(d, "adc.attenuation_db")) == [
        f"{ESP}: adc.attenuation_db: missing (required for esp32: one of 0, 2.5, 6, 11)"]


def test_wrong_type_names_file_path_and_expectation():
    assert pico_errors(lambda d: set_in(d, "pins.led.gpio", "25")) == [
        f'{PICO}: pins.led.gpio: expected an integer 0..29 for rp2040, got "25"']


@pytest.mark.parametrize("path, value, message", [
    ("heap_bytes", 1.5e5, "heap_bytes: expected an integer 16384..270336 for rp2040, got 150000.0"),
    ("uarts.modem.id", 1.0, "uarts.modem.id: expected one of 0, 1 for rp2040, got 1.0"),
    ("pins.relay_set.gpio", True, "pins.relay_set.gpio: expected an integer 0..29 for rp2040, got true"),
    ("pins.led.active", "hi", 'pins.led.active: expected one of "high", "low", got "hi"'),
    ("pins.button.pull", "none", 'pins.button.pull: expected one of "up", "down", null, got "none"'),
    ("pins.led", 25, "pins.led: expected an object, got 25"),
    ("name", "", 'name: expected a non-empty string, got ""'),
    ("calibration.v_gain", 0, "calibration.v_gain: expected a number > 0 and <= 1000000, got 0"),
    ("calibration.v_gain", "250", 'calibration.v_gain: expected a number > 0 and <= 1000000, got "250"'),
    ("calibration.i_offset", 0.5, "calibration.i_offset: expected an integer -65535..65535 (read_u16 counts), got 0.5"),
    ("metering.nominal_frequency", 55, "metering.nominal_frequency: expected one of 50.0, 60.0, got 55"),
    ("metering.imax_amps", 5, "metering.imax_amps: expected a number greater than ib_amps (5), got 5"),
    ("flash.block_size", 512, "flash.block_size: expected 4096 (the flash erase sector littlefs uses on esp32 and "
                              "rp2040), got 512"),
    ("mcu.freq_hz", 300_000_000, "mcu.freq_hz: expected an integer 10000000..250000000 for rp2040, got 300000000"),
    ("adc.bits", 16, "adc.bits: expected 12 for rp2040, got 16"),
    ("adc.vref", -3.3, "adc.vref: expected a number > 0 and <= 5, got -3.3"),
    ("frontend.type", "dsp", 'frontend.type: expected one of "adc", "bl0942", got "dsp"'),
    ("frontend.rate_hz", 100, "frontend.rate_hz: expected an integer 500..20000 (samples per second per channel), got 100"),
    ("metering.accuracy.starting_ib", 0, "metering.accuracy.starting_ib: expected a number > 0 and < 1 (a fraction "
                                         "of ib_amps), got 0"),
    ("metering.accuracy.pf1_from_ib", 1, "metering.accuracy.pf1_from_ib: expected a number > 0 and < 1 (a fraction "
                                         "of ib_amps), got 1"),
    ("adc.bias_volts", 3.3, "adc.bias_volts: expected a number > 0 and < 3.3 (adc.vref, the ADC's full scale), "
                            "got 3.3"),
    ("adc.read_us", 0, "adc.read_us: expected an integer 1..1000 (µs per ADC.read_u16 call), got 0"),
    ("notes", {"a": 1}, 'notes: expected a string or a list of strings, got {"a": 1}'),
    ("id", "Pico-1", 'id: expected a board id: lowercase letters, digits and _, starting with a letter, at most 32 '
                     'characters, got "Pico-1"'),
])
def test_wrong_value(path, value, message):  # noqa: D103
    assert pico_errors(lambda d: set_in(d, path, value)) == [f"{PICO}: {message}"]


def test_esp32_bias_must_sit_inside_the_attenuated_range():
    assert esp_errors(lambda d: set_in(d, "adc.bias_volts", 3.2)) == [
        f"{ESP}: adc.bias_volts: expected a number > 0 and < 3.1 (the ADC's full scale at 11 dB), got 3.2"]


def test_esp32_frequency_is_one_the_port_accepts():
    assert esp_errors(lambda d: set_in(d, "mcu.freq_hz", 200_000_000)) == [
        f"{ESP}: mcu.freq_hz: expected one of 80000000, 160000000, 240000000 for esp32, got 200000000"]


def test_unknown_key_is_named_with_a_suggestion():
    def typo(d):
        d["pins"]["button"]["pul"] = d["pins"]["button"].pop("pull")

    errors = pico_errors(typo)
    assert errors[0] == (f'{PICO}: pins.button.pul: unknown key (did you mean "pull"?); pins.button takes: active, '
                         "gpio, pull")
    assert errors[1:] == [f"{PICO}: pins.button.pull: missing (required)"]


def test_unknown_top_level_key():
    errors = pico_errors(lambda d: d.update(colour="green"))
    assert len(errors) == 1
    assert errors[0].startswith(f"{PICO}: colour: unknown key; a board takes: adc, bl0942, calibration, flash, frontend, ")


# -- GPIO rules --------------------------------------------------------------------------------------------------

def test_gpio_out_of_range():
    assert esp_errors(lambda d: set_in(d, "pins.relay_set.gpio", 40)) == [
        f"{ESP}: pins.relay_set.gpio: expected an integer 0..39 for esp32, got 40"]
    assert pico_errors(lambda d: set_in(d, "pins.button.gpio", 30)) == [
        f"{PICO}: pins.button.gpio: expected an integer 0..29 for rp2040, got 30"]


@pytest.mark.parametrize("gpio, why", [(7, "is wired to the module's SPI flash (GPIO 6..11)"),
                                       (24, "does not exist on the ESP32 (no GPIO 20, 24, 28..31)")])
def test_esp32_pins_a_board_cannot_use(gpio, why):
    assert esp_errors(lambda d: set_in(d, "pins.led.gpio", gpio)) == [
        f"{ESP}: pins.led.gpio: GPIO {gpio} {why}, so a board cannot use it"]


@pytest.mark.parametrize("path, owner", [("pins.relay_set.gpio", "pins.relay_set"), ("pins.led.gpio", "pins.led"),
                                         ("uarts.modem.tx", "uarts.modem")])
def test_esp32_input_only_pin_as_output(path, owner):
    assert esp_errors(lambda d: set_in(d, path, 38)) == [
        f"{ESP}: {path}: GPIO 38 is input-only on esp32 (34..39), and {owner} needs an output"]


def test_esp32_input_only_pin_is_fine_as_input_without_pull():
    d = board("esp32_devkitc")
    d["pins"]["relay_feedback"] = {"gpio": 36, "active": "low", "pull": None}
    d["uarts"]["modem"]["rx"] = 39
    validate_board(d, ESP, file_stem="esp32_devkitc")
    d["pins"]["relay_feedback"]["pull"] = "up"
    assert errors_of(d, ESP) == [f"{ESP}: pins.relay_feedback.gpio: GPIO 36 has no internal pull resistors on esp32 "
                                 "(34..39): set pull to null and fit an external resistor"]


def test_adc_pins_per_family():
    assert esp_errors(lambda d: set_in(d, "adc.channels.voltage.gpio", 4)) == [
        f"{ESP}: adc.channels.voltage.gpio: expected an ADC1 pin 32..39 for esp32 (ADC2 cannot be read while Wi-Fi "
        "is on), got 4"]
    assert pico_errors(lambda d: set_in(d, "adc.channels.current.gpio", 29)) == [
        f"{PICO}: adc.channels.current.gpio: expected an ADC pin 26..28 for rp2040 (GPIO 29 is VSYS/3 on the Pico), "
        "got 29"]


def test_pin_conflict_names_both_roles():
    assert pico_errors(lambda d: set_in(d, "pins.relay_reset.gpio", 16)) == [
        f"{PICO}: pins.relay_reset.gpio: GPIO 16 is already used by pins.relay_set.gpio (a GPIO has one role)"]


def test_pin_conflict_across_sections():
    assert pico_errors(lambda d: set_in(d, "pins.button.gpio", 26)) == [
        f"{PICO}: adc.channels.voltage.gpio: GPIO 26 is already used by pins.button.gpio (a GPIO has one role)"]
    assert esp_errors(lambda d: set_in(d, "uarts.modem.rx", 27)) == [
        f"{ESP}: uarts.modem.rx: GPIO 27 is already used by pins.relay_feedback.gpio (a GPIO has one role)"]


# -- MCU, id, schema ---------------------------------------------------------------------------------------------

def test_arch_must_match_family():
    assert pico_errors(lambda d: set_in(d, "mcu.arch", "xtensawin")) == [
        f'{PICO}: mcu.arch: expected "armv6m" for rp2040 (mpy-cross -march), got "xtensawin"']
    assert esp_errors(lambda d: set_in(d, "mcu.arch", "armv6m")) == [
        f'{ESP}: mcu.arch: expected "xtensawin" for esp32 (mpy-cross -march), got "armv6m"']
    assert pico_errors(lambda d: set_in(d, "mcu.arch", "x64")) == [
        f'{PICO}: mcu.arch: expected one of "xtensawin", "armv6m" (mpy-cross -march), got "x64"']


def test_unknown_family_skips_family_rules_but_checks_types():
    errors = pico_errors(lambda d: (set_in(d, "mcu.family", "stm32"), set_in(d, "pins.led.gpio", -1)))
    assert errors == [f'{PICO}: mcu.family: expected one of "esp32", "rp2040", got "stm32"',
                      f"{PICO}: pins.led.gpio: expected an integer 0..39, got -1"]


def test_id_must_equal_file_stem(tmp_path):
    d = board("rpi_pico")
    assert errors_of(d, PICO, "rpi_pico_w") == [
        f'{PICO}: id: expected "rpi_pico_w" (the file name without .json), got "rpi_pico"']
    copy_path = tmp_path / "my_pico.json"
    copy_path.write_text(json.dumps(d))
    with pytest.raises(BoardError, match=r'my_pico\.json: id: expected "my_pico" .* got "rpi_pico"'):
        load_board(copy_path)


def test_other_schema_version_stops_validation():
    assert pico_errors(lambda d: (set_in(d, "schema", 2), d.update(extra=1))) == [
        f"{PICO}: schema: expected 1 (the only board schema this tool reads), got 2"]


def test_top_level_must_be_an_object():
    assert errors_of([1, 2], PICO) == [f"{PICO}: expected a JSON object at the top level, got [1, 2]"]


def test_all_problems_are_reported_at_once():
    def many(d):
        d["pins"]["led"]["gpio"] = 99
        d["mcu"]["arch"] = "xtensawin"
        del d["metering"]["ib_amps"]

    errors = pico_errors(many)
    assert [e.split(": ")[1] for e in errors] == ["mcu.arch", "pins.led.gpio", "metering.ib_amps"]
    with pytest.raises(BoardError) as e:
        validate_board(board("rpi_pico") | {"heap_bytes": 0, "name": 3}, PICO)
    assert str(e.value) == "\n".join(e.value.errors) and len(e.value.errors) == 2
    assert isinstance(e.value, ValueError)


# -- ADC and UARTs per family ------------------------------------------------------------------------------------

def test_rp2040_has_no_attenuator():
    assert pico_errors(lambda d: set_in(d, "adc.attenuation_db", 11)) == [
        f"{PICO}: adc.attenuation_db: must be absent or null for rp2040 (its ADC has no attenuator), got 11"]
    d = board("rpi_pico")
    del d["adc"]["attenuation_db"]
    validate_board(d, PICO)


def test_esp32_attenuation_values():
    d = board("esp32_devkitc")
    d["adc"]["attenuation_db"] = 11.0  # the same number as 11
    validate_board(d, ESP)
    assert esp_errors(lambda d: set_in(d, "adc.attenuation_db", 12)) == [
        f"{ESP}: adc.attenuation_db: expected one of 0, 2.5, 6, 11 for esp32, got 12"]


def test_usb_console_takes_only_the_id():
    assert pico_errors(lambda d: d["uarts"]["console"].update(baud=115200, tx=0)) == [
        f'{PICO}: uarts.console.baud: not allowed with "id": "usb" (a USB CDC console has no pins and no baud rate)',
        f'{PICO}: uarts.console.tx: not allowed with "id": "usb" (a USB CDC console has no pins and no baud rate)']


def test_usb_only_for_the_console_and_only_on_rp2040():
    assert pico_errors(lambda d: set_in(d, "uarts.modem", {"id": "usb"})) == [
        f'{PICO}: uarts.modem.id: "usb" is only for uarts.console; expected a UART id']
    assert esp_errors(lambda d: set_in(d, "uarts.console", {"id": "usb"})) == [
        f"{ESP}: uarts.console.id: esp32 has no USB device of its own; expected a UART id 0..2 (the board's "
        "USB-serial bridge is a UART)"]


def test_uart_ids_per_family_and_unique():
    assert pico_errors(lambda d: set_in(d, "uarts.console", {"id": 2, "baud": 115200, "tx": 8, "rx": 9})) == [
        f'{PICO}: uarts.console.id: expected one of 0, 1 for rp2040 (or "usb" for the console), got 2']
    assert esp_errors(lambda d: set_in(d, "uarts.modem.id", 2)) == [
        f"{ESP}: uarts.optical.id: UART 2 is already used by uarts.modem"]


def test_rp2040_uart_pin_functions():
    assert pico_errors(lambda d: set_in(d, "uarts.optical.rx", 6)) == [
        f"{PICO}: uarts.optical.rx: GPIO 6 cannot be UART1 RX on rp2040; UART1 RX is on GPIO 5, 9, 21, 25"]
    d = board("rpi_pico")
    d["uarts"]["modem"].update(tx=12, rx=13)  # UART0's other pin pair
    validate_board(d, PICO)


def test_uart_baud_range():
    assert esp_errors(lambda d: set_in(d, "uarts.optical.baud", 0)) == [
        f"{ESP}: uarts.optical.baud: expected an integer 300..5000000, got 0"]


def test_the_metering_uart_is_required_by_an_ic_front_end_only_and_the_optical_port_is_optional():
    errors = errors_of(delete_in_copy(board("esp32_devkitc_bl0942"), "uarts.metering"), ESP, "esp32_devkitc")
    assert any("uarts.metering: missing (required when frontend.type is \"bl0942\"" in e for e in errors), errors
    validate_board(delete_in_copy(board("esp32_devkitc"), "uarts.optical"), ESP, file_stem="esp32_devkitc")


# -- loading: files, JSON errors, ids ----------------------------------------------------------------------------

def test_unknown_board_id_lists_known_ones():
    with pytest.raises(BoardError) as e:
        load_board("esp32_devkit")
    assert str(e.value) == ('unknown board "esp32_devkit": no such file in boards; known boards: esp32_devkitc, '
                            'esp32_devkitc_bl0942, rpi_pico, rpi_pico_bl0942')


def test_invalid_json_gives_line_and_column(tmp_path):
    text = (boards.BOARDS_DIR / "rpi_pico.json").read_text()
    bad = text.replace('"heap_bytes": 190000,', '"heap_bytes": 190000,,', 1)
    line = bad[: bad.index(",,")].count("\n") + 1
    column = bad.index(",,") - bad.rfind("\n", 0, bad.index(",,")) + 1
    path = tmp_path / "rpi_pico.json"
    path.write_text(bad)
    with pytest.raises(BoardError) as e:
        load_board(path)
    assert str(e.value) == f"{path}: invalid JSON at line {line}, column {column}: Expecting property name enclosed " \
                           "in double quotes"
    assert line == 6


def test_duplicate_keys_and_nan_are_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"schema": 1, "schema": 1}')
    with pytest.raises(BoardError, match='key "schema" appears twice'):
        load_board(path)
    path.write_text('{"schema": NaN}')
    with pytest.raises(BoardError, match="NaN is not JSON"):
        load_board(path)


def test_unreadable_file(tmp_path):
    with pytest.raises(BoardError, match=r"nothere\.json: cannot read: No such file"):
        load_board(tmp_path / "nothere.json")


def test_boards_dir_argument_and_env_override(tmp_path):
    (tmp_path / "rpi_pico.json").write_text((boards.BOARDS_DIR / "rpi_pico.json").read_text())
    assert list_boards(tmp_path) == ["rpi_pico"]
    assert load_board("rpi_pico", tmp_path)["id"] == "rpi_pico"
    with pytest.raises(BoardError, match="known boards: rpi_pico$"):
        load_board("esp32_devkitc", tmp_path)
    out = subprocess.run([sys.executable, "-c", "from meterkit import boards; print(boards.list_boards())"],
                         env={**os.environ, "METERKIT_BOARDS": str(tmp_path)}, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['rpi_pico']"


def test_default_boards_dir_is_the_repository_folder():
    if os.environ.get("METERKIT_BOARDS"):
        pytest.skip("METERKIT_BOARDS overrides the default")
    assert boards.BOARDS_DIR == Path(boards.__file__).resolve().parents[1] / "boards"


# -- robustness: any JSON value anywhere gives a BoardError or passes, never another exception --------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(board_id=st.sampled_from(SHIPPED), index=st.integers(min_value=0), value=json_values)
def test_any_value_at_any_path_gives_a_board_error_or_passes(board_id, index, value):
    d = board(board_id)
    paths = leaf_paths(d)
    path = paths[index % len(paths)]
    set_in(d, path, value)
    source = f"boards/{board_id}.json"
    try:
        validate_board(d, source, file_stem=board_id)
    except BoardError as e:
        assert e.errors and all(line.startswith(f"{source}: ") for line in e.errors)


def test_bl0942_front_end_needs_its_circuit_and_its_own_calibration_keys():
    bl = board("rpi_pico_bl0942")
    src = "boards/rpi_pico_bl0942.json"
    d = copy.deepcopy(bl)
    del d["bl0942"]
    assert errors_of(d, src, "rpi_pico_bl0942") == [
        f'{src}: bl0942: missing (required when frontend.type is "bl0942": the IC\'s circuit)']
    d = copy.deepcopy(bl)
    d["calibration"] = board("rpi_pico")["calibration"]
    errs = errors_of(d, src, "rpi_pico_bl0942")
    assert f"{src}: calibration.v_scale: missing (required)" in errs
    assert any(e.startswith(f"{src}: calibration.v_gain: unknown key") for e in errs)
    assert pico_errors(lambda x: x.update(bl0942=bl["bl0942"])) == [
        f'{PICO}: bl0942: only for frontend.type "bl0942" (this board\'s is "adc")']
    d = copy.deepcopy(bl)
    d["frontend"]["rate_hz"] = 4000
    assert errors_of(d, src, "rpi_pico_bl0942") == [
        f"{src}: frontend.rate_hz: not used by a bl0942 front end (it takes: address, period_ms)"]
