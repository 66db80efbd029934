"""Every `meter-emu` subcommand against a table of bad inputs (files that are missing, folders, binary, empty, UTF-16,
not JSON, JSON of the wrong shape; wrong types; NaN, infinities and numbers out of range; state folders that are not
an emulator's or whose emulator is not running): each is refused with a documented exit code and a short message
on stderr naming the problem, never a traceback. In-process through click's CliRunner: none of these cases gets as
far as starting a VM. `meter-emu --version` and every `ctl` verb's --help (without --state)."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from emulator.cli import main

# the exit codes documented in `meter-emu --help` and docs/emulator.md
DOCUMENTED = {1, 2, 3, 4, 5, 6, 7, 8, 70}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Bad (and a few good) inputs, by name; cases refer to them as {name}."""
    good = {"steps": [{"at": 0, "set": {"load.current": 5}}]}
    f: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        p = tmp_path / name
        p.write_bytes(data)
        f[name.split(".")[0]] = p

    put("utf16.json", json.dumps(good).encode("utf-16"))
    put("utf16nobom.json", json.dumps(good).encode("utf-16-le"))
    put("binary.json", bytes(range(256)) * 3)
    put("empty.json", b"")
    put("blank.json", b"  \n\n")
    put("notjson.json", b"steps: [at 0]\n")
    put("schema.json", b'{"steps": 5}')
    put("toplist.json", b"[1, 2, 3]")
    put("nan.json", b'{"steps": [{"at": NaN, "set": {"load.current": 5}}]}')
    put("infvalue.json", b'{"steps": [{"at": 0, "set": {"load.current": 1e999}}]}')
    put("hugeat.json", b'{"steps": [{"at": 1' + b"0" * 400 + b', "set": {"load.current": 5}}]}')
    put("infperiod.json", b'{"steps": [{"at": 0, "set": {"load.current": 5}}], "repeat": true, "period": 1e999}')
    put("infcut.json", b'{"steps": [{"at": 0, "cut": 1e999}]}')
    put("linknan.json", b'{"steps": [{"at": 0, "set": {"link.loss": NaN}}]}')
    put("linkprofile.json", b'{"steps": [{"at": 0, "set": {"link.profile": "5g"}}]}')
    put("linkgood.json", b'{"steps": [{"at": 0, "set": {"link.profile": "nb1-good"}}]}')
    put("deep.json", b"[" * 100000 + b"]" * 100000)
    put("good.json", json.dumps(good).encode())
    (tmp_path / "folder").mkdir()
    f["folder"] = tmp_path / "folder"
    f["missing"] = tmp_path / "missing.json"
    f["nodir"] = tmp_path / "no" / "such" / "file.txt"
    f["fresh"] = tmp_path / "fresh-state"  # does not exist: `run` would make it
    f["nostate"] = tmp_path / "no-state-here"
    notstate = tmp_path / "notstate"
    notstate.mkdir()
    (notstate / "notes.txt").write_text("someone's files")
    f["notstate"] = notstate
    f["file"] = tmp_path / "good.json"

    def state(name: str, meta: bytes | None, endpoints: bytes | None = None) -> None:
        d = tmp_path / name
        d.mkdir()
        if meta is not None:
            (d / "meta.json").write_bytes(meta)
        if endpoints is not None:
            (d / "endpoints.json").write_bytes(endpoints)
        f[name] = d

    meta = {"format": 1, "board": "esp32_devkitc", "unique_id": "a1b2c3d4e5f6", "world_ns": 0,
            "rtc": {"offset_ns": 0, "valid": True, "drift_ppm": 0.0}}
    state("idle", json.dumps(meta).encode())  # an emulator's folder, nothing running
    state("stale", json.dumps(meta).encode(), json.dumps(
        {"console": "/dev/pts/999", "control": "unix:@meterkit-ctl-test-nobody-listens-here", "pid": 1}).encode())
    state("badendpoints", json.dumps(meta).encode(), b"\xff\xfe garbage")
    state("listendpoints", json.dumps(meta).encode(), b"[1, 2]")
    state("metabinary", bytes(range(256)))
    state("metalist", b"[]")
    state("metanumber", b"5")
    state("metatypes", json.dumps(dict(meta, world_ns="soon", rtc=7)).encode())
    state("metaformat", json.dumps(dict(meta, format=99)).encode())

    def rec(name: str, lines: list) -> None:
        put(name + ".rec", "\n".join(json.dumps(x) for x in lines).encode() + b"\n")

    head = {"recording": 1, "board": "rpi_pico", "firmware_tree": "0" * 64, "created": "2026-01-01T00:00:00Z"}
    rec("rec_badstart", [dict(head, start=[1])])
    rec("rec_badfresh", [dict(head, start={"fresh": {"seed": "x", "rtc_ns": 0, "blank": False}})])
    rec("rec_badflash", [dict(head, start={"meta": meta, "flash_zlib_b64": "!!! not base64 !!!"})])
    rec("rec_shortflash", [dict(head, start={"meta": meta, "flash_zlib_b64": base64.b64encode(
        zlib.compress(b"\xff" * 4096)).decode()})])
    rec("rec_board", [dict(head, board="no_such_board", start={"fresh": {"seed": 1, "rtc_ns": 0, "blank": False}})])
    rec("rec_badline", [dict(head, start={"fresh": {"seed": 1, "rtc_ns": 0, "blank": False}}),
                        {"boot": 1, "n": -4, "us": 0, "in": []}])
    rec("rec_badend", [dict(head, start={"fresh": {"seed": 1, "rtc_ns": 0, "blank": False}}), {"end": 5}])
    rec("rec_good", [dict(head, start={"fresh": {"seed": 1, "rtc_ns": 0, "blank": False}})])
    return {k: str(v) for k, v in f.items()}


RUN = ["run", "--board", "rpi_pico", "--state", "{fresh}"]
CTL = ["ctl", "--state", "{idle}"]
JSON_FILES = [("utf16", "UTF-16"), ("utf16nobom", "UTF-16"), ("binary", "not a UTF-8 text file"),
              ("empty", "empty file"), ("blank", "empty file"), ("notjson", "invalid JSON"),
              ("schema", "steps"), ("toplist", "top level"), ("nan", "NaN"), ("infvalue", "load.current"),
              ("hugeat", "steps[0].at"), ("infperiod", "period"), ("infcut", "steps[0].cut"),
              ("deep", "nested too deeply"), ("missing", "No such file"), ("folder", "folder")]
NON_FINITE = ["nan", "inf", "-inf", "1e309", "NaN", "Infinity"]

CASES: list[tuple[str, list[str], int, str]] = []


def case(name: str, args: list[str], code: int, words: str) -> None:
    CASES.append((name, args, code, words))


# meter-emu run
for v in NON_FINITE + ["0", "-1", "abc", "2e6", ""]:
    case(f"run-speed-{v}", RUN + ["--speed", v], 2, "--speed")
for v in NON_FINITE + ["0", "-5", "abc", "1e12"]:
    case(f"run-for-{v}", RUN + ["--for", v], 2, "--for")
for v in ["0", "abc", "1e9"]:
    case(f"run-baud-{v}", RUN + ["--baud", v], 2, "--baud")
for v in ["-1", "abc", "1.5"]:
    case(f"run-seed-{v}", RUN + ["--seed", v], 2, "--seed")
for v in ["yesterday", "2026-13-01T00:00:00Z", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"]:
    case(f"run-rtc-{v}", RUN + ["--rtc", v], 2, "--rtc")
for name, words in JSON_FILES:
    code_words = "is a directory" if name == "folder" else words  # click refuses a folder for a FILE option
    case(f"run-scenario-{name}", RUN + ["--scenario", "{" + name + "}"], 2, code_words)
case("run-scenario-link-without-modem", RUN + ["--scenario", "{linkgood}"], 2, "add --modem")
case("run-console-log-folder", RUN + ["--console-log", "{folder}"], 2, "--console-log")
case("run-console-log-nodir", RUN + ["--console-log", "{nodir}"], 2, "no such folder")
case("run-record-folder", RUN + ["--record", "{folder}"], 2, "--record")
case("run-record-nodir", RUN + ["--record", "{nodir}"], 2, "no such folder")
case("run-board-unknown", ["run", "--board", "no_such_board", "--state", "{fresh}"], 3, "no_such_board")
case("run-board-empty", ["run", "--board", "", "--state", "{fresh}"], 3, "unknown board")
case("run-board-missing", ["run", "--state", "{fresh}"], 2, "--board")
case("run-state-missing", ["run", "--board", "rpi_pico"], 2, "--state")
case("run-state-file", ["run", "--board", "rpi_pico", "--state", "{file}"], 2, "--state")
case("run-state-not-an-emulators", ["run", "--board", "rpi_pico", "--state", "{notstate}"], 4,
     "not a meter-emu state folder")
case("run-state-other-board", ["run", "--board", "rpi_pico", "--state", "{idle}"], 4, "esp32_devkitc")
for name in ("metabinary", "metalist", "metanumber", "metatypes", "metaformat"):
    case(f"run-state-{name}", ["run", "--board", "esp32_devkitc", "--state", "{" + name + "}"], 4, "meta.json")

# meter-emu replay
for name, words in [("utf16", "UTF-16"), ("binary", "not a UTF-8 text file"), ("empty", "empty file"),
                    ("blank", "empty file"), ("notjson", "not JSON"), ("schema", "not a meter-emu recording"),
                    ("deep", "not JSON"), ("missing", "does not exist"), ("folder", "is a directory"),
                    ("rec_badstart", "start"), ("rec_badfresh", "fresh"), ("rec_badflash", "flash image"),
                    ("rec_shortflash", "flash image"), ("rec_badline", "'n'"), ("rec_badend", "'end'")]:
    case(f"replay-{name}", ["replay", "{" + name + "}"], 2, words)
case("replay-board", ["replay", "{rec_board}"], 3, "no_such_board")
case("replay-state-holds-a-meter", ["replay", "{rec_good}", "--state", "{idle}"], 2, "already holds a meter")
case("replay-state-not-empty", ["replay", "{rec_good}", "--state", "{notstate}"], 2, "not empty")
case("replay-console-log-folder", ["replay", "{rec_good}", "--console-log", "{folder}"], 2, "--console-log")
case("replay-console-log-nodir", ["replay", "{rec_good}", "--console-log", "{nodir}"], 2, "no such folder")

# meter-emu ctl: the state folder
case("ctl-no-state", ["ctl", "status"], 2, "--state")
case("ctl-state-missing-folder", ["ctl", "--state", "{nostate}", "status"], 7, "no such folder")
case("ctl-state-not-an-emulators", ["ctl", "--state", "{notstate}", "status"], 7, "not a meter-emu state folder")
case("ctl-state-not-running", CTL + ["status"], 7, "meter-emu run --board esp32_devkitc --state")
case("ctl-state-stale-endpoints", ["ctl", "--state", "{stale}", "status"], 7, "nothing listens")
case("ctl-state-binary-endpoints", ["ctl", "--state", "{badendpoints}", "status"], 7, "no emulator is running")
case("ctl-state-list-endpoints", ["ctl", "--state", "{listendpoints}", "status"], 7, "endpoints.json")
case("ctl-state-file", ["ctl", "--state", "{file}", "status"], 2, "--state")
for verb in ("status", "power-on", "stop", "time", "press", "set speed=1", "scenario {good}", "reset",
             "power-cut", "run --for 5"):
    case(f"ctl-{verb.split()[0]}-not-running", CTL + verb.split(), 7, "no emulator is running")
case("ctl-unknown-verb", CTL + ["bogus"], 2, "bogus")
# meter-emu ctl: values, checked before any emulator is asked
for v in NON_FINITE + ["-1", "70000", "abc"]:
    case(f"ctl-reset-ctrl-c-after-{v}", CTL + ["reset", "--ctrl-c-after", v], 2, "--ctrl-c-after")
for v in NON_FINITE + ["-1", "90000", "abc", "Manual"]:
    case(f"ctl-power-cut-off-{v}", CTL + ["power-cut", "--off", v], 2, "--off")
for v in ["0", "-1", "abc", "1.5"]:
    case(f"ctl-power-cut-at-write-{v}", CTL + ["power-cut", "--at-write", v], 2, "--at-write")
case("ctl-power-cut-torn-negative", CTL + ["power-cut", "--at-write", "3", "--torn", "-1"], 2, "--torn")
for v in NON_FINITE + ["0", "-1", "3601", "abc"]:
    case(f"ctl-press-for-{v}", CTL + ["press", "--for", v], 2, "--for")
for v in NON_FINITE + ["-1", "abc", "1e10", "86401"]:  # a day at most: a longer jump would wrap a board's ticks
    case(f"ctl-time-advance-{v}", CTL + ["time", "--advance", v], 2, "--advance")
for v in NON_FINITE + ["0", "-1", "abc", "1e10"]:
    case(f"ctl-run-for-{v}", CTL + ["run", "--for", v], 2, "--for")
for v in ["yesterday", "1e9", "-5", "1999-12-31T23:59:59Z", "99999999999", "٣٣٣"]:
    case(f"ctl-run-until-{v}", CTL + ["run", "--until", v], 2, "--until")
for v in NON_FINITE + ["0", "abc"]:
    case(f"ctl-run-speed-{v}", CTL + ["run", "--for", "5", "--speed", v], 2, "--speed")
for v in NON_FINITE + ["0", "-1"]:
    case(f"ctl-run-timeout-{v}", CTL + ["run", "--for", "5", "--wait", "--timeout", v], 2, "--timeout")
case("ctl-run-neither", CTL + ["run"], 2, "--until")
case("ctl-run-both", CTL + ["run", "--for", "5", "--until", "2026-01-01T00:00:00Z"], 2, "--until")
case("ctl-set-no-pairs", CTL + ["set"], 2, "PAIRS")
case("ctl-set-not-a-pair", CTL + ["set", "speed"], 2, "KEY=VALUE")
case("ctl-scenario-neither", CTL + ["scenario"], 2, "--clear")
case("ctl-scenario-both", CTL + ["scenario", "{good}", "--clear"], 2, "--clear")
for name, words in JSON_FILES:
    case(f"ctl-scenario-{name}", CTL + ["scenario", "{" + name + "}"], 2,
         "is a directory" if name == "folder" else words)
# the radio link and the modems
case("run-scenario-link-nan", RUN + ["--scenario", "{linknan}"], 2, "NaN")
case("run-scenario-link-profile", RUN + ["--scenario", "{linkprofile}"], 2, "link.profile: expected one of")
case("ctl-scenario-link-profile", CTL + ["scenario", "{linkprofile}"], 2, "link.profile: expected one of")
case("ctl-modem-not-running", CTL + ["modem", "wedge"], 7, "no emulator is running")
case("ctl-modem-bad-action", CTL + ["modem", "explode"], 2, "explode")
case("ctl-modem-no-action", CTL + ["modem"], 2, "ACTION")
case("modem-no-state", ["modem"], 2, "--state")
case("modem-state-file", ["modem", "--state", "{file}"], 2, "--state")
case("modem-link-unknown", ["modem", "--state", "{nostate}", "--link", "5g"], 2, "--link")
case("modem-registration-unknown", ["modem", "--state", "{nostate}", "--registration", "maybe"], 2, "--registration")
for v in ["-1", "abc", "1e10", "4294967296"]:
    case(f"modem-seed-{v}", ["modem", "--state", "{nostate}", "--seed", v], 2, "--seed")

# meter-emu console
case("console-no-state", ["console"], 2, "--state")
case("console-state-missing-folder", ["console", "--state", "{nostate}"], 7, "no such state folder")
case("console-state-not-an-emulators", ["console", "--state", "{notstate}"], 7, "not a meter-emu state folder")
case("console-state-file", ["console", "--state", "{file}"], 2, "--state")
for v in ["-1", "abc"]:
    case(f"console-lines-{v}", ["console", "--state", "{idle}", "--lines", v], 2, "--lines")

# meter-emu itself
case("unknown-command", ["bogus"], 2, "bogus")
case("unknown-option", ["--bogus"], 2, "--bogus")
case("boards-extra-argument", ["boards", "extra"], 2, "extra")


@pytest.mark.parametrize(("args", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_it_with_a_documented_exit_code(files, args, code, words):
    argv = [a.format(**files) for a in args]
    r = CliRunner().invoke(main, argv, prog_name="meter-emu")
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    assert isinstance(r.exception, SystemExit), (r.exception, out)  # not an exception escaping the CLI
    assert r.exit_code == code, (argv, r.exit_code, out)
    assert r.exit_code in DOCUMENTED
    err = r.stderr.strip()
    assert err and len(err.splitlines()) == 1, err
    assert err.startswith("meter-emu"), err
    assert words in err, (words, err)


def test_documented_exit_codes_are_the_ones_in_the_help():
    text = CliRunner().invoke(main, prog_name="meter-emu", args=["--help"]).stdout
    for code in DOCUMENTED - {1}:  # 1: replay's own (see `meter-emu replay --help`)
        assert f"{code} " in text.split("Exit codes:")[1], code
    docs = (Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text()
    for code in DOCUMENTED:
        assert f"| {code} |" in docs, code


def test_version():
    from importlib.metadata import version

    r = CliRunner().invoke(main, prog_name="meter-emu", args=["--version"])
    assert r.exit_code == 0 and r.stdout == f"meter-emu {version('meterkit')}\n"


@pytest.mark.parametrize("verb", ["status", "reset", "power-cut", "power-on", "set", "scenario", "press", "time",
                                  "run", "stop"])
def test_ctl_verb_help_needs_no_state(verb):
    r = CliRunner().invoke(main, prog_name="meter-emu", args=["ctl", verb, "--help"])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"Usage: meter-emu ctl {verb} ")
    r = CliRunner().invoke(main, prog_name="meter-emu", args=["ctl", "--help"])
    assert r.exit_code == 0 and verb in r.stdout


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch):
    """A bug (here: a board list that raises) is reported in one line with exit 70; METER_EMU_DEBUG=1 re-raises."""
    import emulator.cli as cli

    def broken():
        raise KeyError("boards")

    monkeypatch.setattr(cli, "list_boards", broken)
    r = CliRunner().invoke(main, prog_name="meter-emu", args=["boards"])
    assert r.exit_code == 70 and "Traceback" not in r.stdout + r.stderr
    assert r.stderr.strip() == "meter-emu: internal error, a bug: KeyError: 'boards' (METER_EMU_DEBUG=1 shows where)"
    monkeypatch.setenv("METER_EMU_DEBUG", "1")
    r = CliRunner().invoke(main, prog_name="meter-emu", args=["boards"])
    assert isinstance(r.exception, KeyError)


@pytest.mark.parametrize("args", [[], ["ctl"]])
def test_no_command_shows_the_help(args):
    r = CliRunner().invoke(main, prog_name="meter-emu", args=args)
    assert r.exit_code == 2 and "Usage: meter-emu" in r.stdout + r.stderr and "Commands:" in r.stdout + r.stderr


def test_a_log_or_recording_in_the_state_folder_run_is_about_to_make_is_fine(tmp_path):
    from emulator.cli import _out_file

    state = tmp_path / "new-meter"
    _out_file(str(state / "crash.rec"), "--record", str(state))  # no exit: run makes the folder first
    with pytest.raises(SystemExit) as e:
        _out_file(str(tmp_path / "other" / "crash.rec"), "--record", str(state))
    assert e.value.code == 2
