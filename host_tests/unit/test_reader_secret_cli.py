"""`ota meter reader-secret`: the DLMS meter reader's secret is checked on this computer before anything reaches the
meter (8 to 32 printable ASCII characters, from one source), and only its SHA-256 salted with the meter's id is what
the signed command carries
(the meter's side: host_tests/firmware/test_supply.py; a DLMS client using it: host_tests/e2e/test_dlms_optical.py)."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from ota_tool import supply
from ota_tool.cli import main

NO_PORT = "/nonexistent/ttyNOPE"


def run(*args: str, env: dict | None = None, stdin: str | None = None):
    return CliRunner().invoke(main, ["meter", "reader-secret", "--port", NO_PORT, *args], env=env, input=stdin,
                              catch_exceptions=True)


@pytest.mark.parametrize("secret", ["short", "x" * 33, "tab\there!", "ünïcödé secret", " " * 3])
def test_a_secret_the_meter_reader_could_not_use_is_refused_before_the_port(secret):
    r = run("--set", "--secret-env", "S", env={"S": secret})
    assert r.exit_code == 2 and "8 to 32 printable ASCII characters" in r.output, r.output


def test_the_secret_comes_from_one_place_and_only_with_set(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("reader 2468\nsecond line ignored\n")
    for args, why in ((["--set", "--clear"], "one or the other"),
                      (["--secret-env", "S"], "go with --set"),
                      (["--set", "--secret-env", "S", "--secret-file", str(f)], "one or the other"),
                      (["--set", "--secret-env", ""], "an empty variable name"),
                      (["--set", "--secret-env", "UNSET_VAR_FOR_THIS_TEST"], "empty or unset"),
                      (["--set", "--json"], "no prompt for a script")):
        r = run(*args, env={"S": "reader 2468"})
        assert r.exit_code == 2 and why in r.output, (args, r.output)
    # a good secret from a file, or typed twice: the port is the next problem (exit 3), nothing before it
    assert run("--set", "--secret-file", str(f)).exit_code == 3
    assert run("--set", stdin="reader 2468\nreader 2468\n").exit_code == 3
    r = run("--set", stdin="reader 2468\nreader 2469\nreader 2468\nreader 2468\n")  # a mistyped repeat: asked again
    assert r.exit_code == 3 and "do not match" in r.output.lower(), r.output


def test_only_the_sha256_of_the_secret_leaves_this_computer():
    assert supply.reader_digest("MTR-1", b"reader 2468") == hashlib.sha256(b"MTR-1\x00reader 2468").digest()
    assert supply.reader_digest("MTR-2", b"reader 2468") != supply.reader_digest("MTR-1", b"reader 2468")
