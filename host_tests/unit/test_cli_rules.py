"""The rules every `ota` command keeps (issue 16): one exit-code table, printed by `ota --help` and held by
docs/field-team.md; --json on every command that talks to a meter, one object on success and on failure; and bad
input — every subcommand, every option, from a table of bad values and bad files — ends in one message naming the
problem and a documented non-zero exit, never a traceback.

The bad-input sweep runs in process (click's test runner) against a port that does not exist: a bad value the
command does not notice would go on to the port and exit 3, so exit 3 counts as a miss except for --port itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ota_tool.cli import main
from ota_tool.cli.exits import MEANING, Exit, table_markdown, table_text

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEV = ROOT / "keys" / "dev"
CMD_KEY = DEV / "command-DEVELOPMENT-ONLY-ed25519.pem"
IMG_KEY = DEV / "image-DEVELOPMENT-ONLY-ed25519.pem"
ROOT_KEY = DEV / "root-DEVELOPMENT-ONLY-ed25519.pem"


def commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    out: dict[tuple[str, ...], click.Command] = {}
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        if isinstance(cmd, click.Group):
            out.update(commands(cmd, (*prefix, name)))
        else:
            out[(*prefix, name)] = cmd
    return out


ALL = commands()
TALKS_TO_A_METER = {path for path, cmd in ALL.items() if any(p.name == "port" for p in cmd.params)}


def run(*args: str | Path) -> click.testing.Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def test_the_exit_code_table_is_one_table():
    doc = (ROOT / "docs" / "field-team.md").read_text()
    block = re.search(r"<!-- exit-codes:.*?-->\n(.*?)\n<!-- /exit-codes -->", doc, re.S)
    assert block and block.group(1) == table_markdown(), "regenerate docs/field-team.md's table from exits.py"
    shown = run("--help").output
    for line in table_text().splitlines():
        assert " ".join(line.split()) in " ".join(shown.split())
    assert set(MEANING) == set(Exit)


def test_each_command_loads_from_the_module_the_table_names():
    """ota loads a command's module only when it runs (ota_tool/cli COMMAND_MODULES): the table names every command
    of every module, and nothing else."""
    import importlib

    from ota_tool.cli import _JOINS, COMMAND_MODULES

    held = {}
    for mod in set(COMMAND_MODULES.values()) | {m for joins in _JOINS.values() for m in joins}:
        for command in importlib.import_module(f"ota_tool.cli.{mod}").COMMANDS:
            held[command.name] = mod
    assert held == COMMAND_MODULES


@pytest.mark.parametrize("argv, kept_out", [
    (["inspect", "--help"], "smpclient"),  # the image tools need no SMP client
    (["keygen", "--help"], "smpclient"),
    (["status", "--help"], "ota_tool.supply_groups"),  # nor the device commands the supply's groups
])
def test_a_command_loads_only_its_own_libraries(argv, kept_out):
    code = (f"import sys\nfrom ota_tool.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print({kept_out!r} in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and re.fullmatch(r"ota \d+\.\d+\.\d+\S*\n", r.output)


@pytest.mark.parametrize("path", sorted(TALKS_TO_A_METER), ids=" ".join)
def test_every_command_that_talks_to_a_meter_takes_json(path, tmp_path):
    cmd = ALL[path]
    if path == ("console",):  # a text stream, not a result
        pytest.skip("ota console shows the meter's own text")
    assert any(p.name == "as_json" for p in cmd.params), f"ota {' '.join(path)} has no --json"
    base_pos, base_opts = BASE[path](Files(tmp_path))
    r = run(*path, *base_pos, *base_opts, "--json")
    assert r.exit_code == Exit.NO_DEVICE, r.output
    out = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(out) == 1, r.stdout
    obj = json.loads(out[0])
    assert obj["ok"] is False and obj["exit"] == 3 and obj["error"] == "no-device" and "NOPE" in obj["message"]


class Files:
    """Valid inputs for each command, made once per test in tmp_path."""

    _image: Path | None = None

    def __init__(self, tmp: Path):
        self.tmp = tmp

    def path(self, name: str) -> Path:
        return self.tmp / name

    @property
    def image(self) -> Path:
        if Files._image is None or not Files._image.exists():
            out = self.tmp.parent / "rules-app.img"
            if not out.exists():
                r = run("build", ROOT / "firmware", "--board", "rpi_pico", "--version", "1.0.0", "--key", IMG_KEY,
                        "-o", out)
                assert r.exit_code == 0, r.output
            Files._image = out
        return Files._image

    @property
    def bundle(self) -> Path:
        out = self.tmp.parent / "rules-app.bundle"
        if not out.exists():
            r = run("build", ROOT / "firmware", "--board", "rpi_pico", "--version", "1.0.0", "-o", out)
            assert r.exit_code == 0, r.output
        return out

    def envelope(self) -> Path:
        out = self.path("reset.cbor")
        if not out.exists():
            assert run("envelope", "--key", CMD_KEY, "--meter", "m1", "--cmd", "os.reset", "-o", out).exit_code == 0
        return out

    def token(self) -> Path:
        out = self.path("token.cbor")
        if not out.exists():
            r = run("token", "--key", CMD_KEY, "--meter", "m1", "--tid", "1", "--amount", "100", "-o", out)
            assert r.exit_code == 0
        return out

    def store(self) -> Path:
        out = self.path("trust.cbor")
        if not out.exists():
            r = run("trust", "create", "--root", ROOT_KEY, "--add", f"{ROOT_KEY}:root", "--add", f"{IMG_KEY}:image",
                    "--add", f"{CMD_KEY}:command", "--counter", "1", "-o", out)
            assert r.exit_code == 0, r.output
        return out


NOPORT = "/nonexistent/ttyNOPE"
P = ["--port", NOPORT]
BASE = {
    ("keygen",): lambda f: ([], ["-o", f.path("new.pem")]),
    ("getpub",): lambda f: ([CMD_KEY], []),
    ("build",): lambda f: ([ROOT / "firmware"], ["--board", "rpi_pico", "--version", "1.0.0", "-o", f.path("o.img")]),
    ("sign",): lambda f: ([f.bundle], ["--key", IMG_KEY, "-o", f.path("s.img")]),
    ("verify",): lambda f: ([f.image], ["--key", IMG_KEY]),
    ("inspect",): lambda f: ([f.image], []),
    ("envelope",): lambda f: ([], ["--key", CMD_KEY, "--meter", "m1", "--cmd", "os.reset", "-o", f.path("e.cbor")]),
    ("token",): lambda f: ([], ["--key", CMD_KEY, "--meter", "m1", "--tid", "1", "--amount", "100", "-o",
                                f.path("t.cbor")]),
    ("trust", "create"): lambda f: ([], ["--root", ROOT_KEY, "--add", f"{ROOT_KEY}:root", "--counter", "1", "-o",
                                         f.path("t.cbor")]),
    ("trust", "show"): lambda f: ([f.store()], []),
    ("info",): lambda f: ([], P), ("echo",): lambda f: ([], P), ("status",): lambda f: ([], P),
    ("confirm",): lambda f: ([], P), ("reset",): lambda f: ([], P), ("erase",): lambda f: ([], P),
    ("console",): lambda f: ([], P),
    ("push",): lambda f: ([f.image], P),
    ("provision",): lambda f: ([], [*P, "--board", "rpi_pico"]),
    ("meter", "read"): lambda f: ([], P), ("meter", "calibration"): lambda f: ([], P),
    ("meter", "events"): lambda f: ([], P), ("meter", "profile"): lambda f: ([], P),
    ("meter", "calibrate"): lambda f: ([], [*P, "--step", "gain", "--voltage", "230", "--current", "5"]),
    ("meter", "relay"): lambda f: (["status"], P),
    ("meter", "topup"): lambda f: ([], [*P, "--token", f.token()]),
    ("meter", "tariff"): lambda f: ([], P), ("meter", "calendar"): lambda f: ([], P),
    ("meter", "clock"): lambda f: ([], P), ("meter", "emergency"): lambda f: ([], P), ("meter", "bill"): lambda f: ([], P),
    ("meter", "network"): lambda f: ([], P),
    ("meter", "credit-reset"): lambda f: ([], [*P, "--balance", "1", "--top-tid", "1"]),
    ("meter", "reader-secret"): lambda f: ([], P), ("meter", "dlms-keys"): lambda f: ([], P),
}

# --port values that are no link (each one line naming the problem, exit 2), and a modem link to no device
BAD_LINKS = ["udp://", "udp://:1337", "udp://10.0.0.1:0", "udp://10.0.0.1:99999", "udp://10.0.0.1:port",
             "udp://10.0.0.1/path", "udp://user@10.0.0.1", "udp://10.0.0.1?from=0", "udp://10.0.0.1?to=5", "udp://no_such..host", "ftp://10.0.0.1",
             "udp:/10.0.0.1", "modem://ttyUSB2?to=10.0.0.1", "modem:///dev/ttyUSB2",
             "modem:///dev/ttyUSB2?to=10.0.0.1&pin=1234", "modem:///dev/ttyUSB2?to=", "bad\x01port"]
NO_MODEM = "modem:///dev/no-such-modem?to=10.64.0.17&apn=meters.example"
BAD_NUMBERS = ["abc", "-5", "nan", "inf", "-inf", "1e309", "99999999999999999999999"]
# values that are valid for a particular option (a balance may be negative: a debt)
VALID = {(("meter", "credit-reset"), "balance", "-5"), (("meter", "clock"), "at", "-5"),
         (("verify",), "board", "")}


def bad_files(tmp: Path) -> dict[str, Path]:
    out = {"missing": tmp / "missing.bin", "a folder": tmp / "folder", "empty": tmp / "empty.bin",
           "random bytes": tmp / "random.bin", "utf-16 text": tmp / "utf16.json", "an image": tmp / "image-copy.img"}
    out["a folder"].mkdir(exist_ok=True)
    out["empty"].write_bytes(b"")
    out["random bytes"].write_bytes(bytes(range(256)) * 3)
    out["utf-16 text"].write_text('{"tou": [["00:00", 1]]}', encoding="utf-16")
    return out


def cases() -> list[tuple[tuple[str, ...], str, str, str]]:
    """(command, parameter, kind of bad input, value or file key) for every parameter of every command."""
    out = []
    for path, cmd in ALL.items():
        for p in cmd.params:
            if p.name in ("help", "as_json") or (isinstance(p, click.Option) and p.is_flag):
                continue
            t = p.type
            if isinstance(t, click.Path):
                for k in ("missing", "a folder", "empty", "random bytes", "utf-16 text"):
                    if getattr(t, "exists", False) or k in ("a folder",):
                        out.append((path, p.name, "file", k))
            elif isinstance(t, click.types.IntParamType | click.types.FloatParamType | click.IntRange |
                            click.FloatRange):
                out += [(path, p.name, "number", v) for v in BAD_NUMBERS if (path, p.name, v) not in VALID]
            elif isinstance(t, click.Choice):
                out.append((path, p.name, "choice", "bogus"))
            elif t.name == "time":  # ota meter profile --from/--to (a UTC time)
                out += [(path, p.name, "time", v) for v in ("yesterday", "2026-13-01", "2026-12-06T25:00:00Z", "-5")]
            elif p.name == "port":
                out += [(path, p.name, "port", v) for v in (NOPORT, NO_MODEM)]
                out += [(path, p.name, "link", v) for v in BAD_LINKS]
            elif isinstance(t, click.types.StringParamType) and p.name not in ("text", "passphrase_env"):
                out += [(path, p.name, "string", v) for v in ("",) if (path, p.name, v) not in VALID]
    return out


def argv(path, param, value, f: Files) -> list:
    pos, opts = BASE[path](f)
    cmd = ALL[path]
    p = next(x for x in cmd.params if x.name == param)
    if isinstance(p, click.Argument):
        i = [x.name for x in cmd.params if isinstance(x, click.Argument)].index(param)
        pos = list(pos) + [None] * (i + 1 - len(pos))
        pos[i] = value
        return [*path, *pos, *opts]
    flag = max(p.opts, key=len)
    needs_key = param in ("passphrase_env", "expires_in") and path != ("token",) and path != ("envelope",)
    extra = ["--key", CMD_KEY] if needs_key else []
    return [*path, *pos, *opts, *extra, flag, value]


CASES = cases()


@pytest.mark.parametrize(("path", "param", "kind", "value"), CASES,
                         ids=[f"{' '.join(c[0])}-{c[1]}-{c[3] or 'empty'}" for c in CASES])
def test_bad_input_gets_one_message_and_a_documented_exit(path, param, kind, value, tmp_path):
    f = Files(tmp_path)
    if kind == "file":
        value = bad_files(tmp_path)[value]
    r = run(*argv(path, param, value, f))
    text = r.output
    assert "Traceback" not in text and "internal error" not in text, text
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code in {int(c) for c in Exit} - {0, 1, 130}, (r.exit_code, text)
    if param != "port":
        assert r.exit_code != Exit.NO_DEVICE, f"the bad {param} went unnoticed to the port: {text}"
    if kind == "link":  # a link URL is checked before anything is opened or read
        assert r.exit_code == Exit.USAGE and "--port" in r.stderr, text
    if value == NO_MODEM:
        assert r.exit_code in (Exit.USAGE, Exit.NO_DEVICE), text
        assert r.exit_code == Exit.USAGE or "no modem at /dev/no-such-modem" in r.stderr, text
    messages = [ln for ln in r.stderr.splitlines() if ln.startswith(("ota:", "Error:"))]
    assert len(messages) == 1, text


def test_no_traceback_for_the_reported_cases(tmp_path):
    """The inputs a new user tried (issue 16 item 5), as a user runs them."""
    f = Files(tmp_path)
    junk = tmp_path / "random.bin"
    junk.write_bytes(os.urandom(300))
    tries = [
        (["trust", "show", f.image], Exit.USAGE),
        (["meter", "relay", "disconnect", "--port", NOPORT, "--envelope", junk], Exit.USAGE),
        (["info", "--port", NOPORT, "--baud", "-5"], Exit.USAGE),
        (["build", ROOT / "firmware", "--board", "rpi_pico", "--version", "1.0.0", "-o", "/nonexistent/x.img"],
         Exit.USAGE),
    ]
    for args, code in tries:
        p = subprocess.run([str(BIN / "ota"), *map(str, args)], capture_output=True, text=True, timeout=120)
        assert p.returncode == code and "Traceback" not in p.stderr, (args, p.returncode, p.stderr)


def test_a_missing_port_fails_at_once_naming_the_ports_that_exist():
    r = run("info", "--port", NOPORT)
    assert r.exit_code == Exit.NO_DEVICE and "no port /nonexistent/ttyNOPE" in r.stderr
    assert "STATE/console" in r.stderr


@pytest.mark.parametrize("path", [("console",), ("provision",)], ids=" ".join)
def test_commands_that_need_a_serial_port_say_so_for_a_udp_link(path, tmp_path):
    pos, opts = BASE[path](Files(tmp_path))
    opts = [o if o != NOPORT else "udp://127.0.0.1" for o in opts]
    r = run(*path, *pos, *opts)
    assert r.exit_code == Exit.USAGE and "needs the meter's serial port" in r.stderr, r.output


def test_a_udp_link_with_no_meter_behind_it_times_out(tmp_path):
    """A udp:// link opens at once (UDP has no connection): no answer within --timeout is exit 4, one line."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))  # a port that takes datagrams and never answers
    try:
        r = run("echo", "--port", f"udp://127.0.0.1:{s.getsockname()[1]}", "--timeout", "0.5", "--json")
    finally:
        s.close()
    assert r.exit_code == Exit.TIMEOUT, r.output
    obj = json.loads(r.stdout.strip().splitlines()[-1])
    assert obj["error"] == "timeout" and "udp://127.0.0.1" in obj["message"]
