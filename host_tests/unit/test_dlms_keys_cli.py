"""`ota meter dlms-keys`: the DLMS utility association's keys are checked on this computer before anything reaches
the meter (a JSON object of two 16-byte keys in hex, from a file), and never leave it over a network link: the meter
refuses them over the modem, but by then they would have crossed the APN in the clear (the meter's side:
host_tests/firmware/test_supply.py; a DLMS client using them: host_tests/e2e/test_dlms_optical.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from ota_tool import supply
from ota_tool.cli import main
from ota_tool.errors import BadInput

NO_PORT = "/nonexistent/ttyNOPE"
EK, AK = "00" * 16, "11" * 16


def run(*args: str):
    return CliRunner().invoke(main, ["meter", "dlms-keys", "--port", NO_PORT, *args], catch_exceptions=True)


@pytest.mark.parametrize("content, why", [
    ("not json", "--keys-file"), ("[1, 2]", "nothing else"), (json.dumps({"ek": EK}), "nothing else"),
    (json.dumps({"ek": EK, "ak": AK, "x": 1}), "nothing else"), (json.dumps({"ek": EK[:30], "ak": AK}), "16 bytes"),
    (json.dumps({"ek": "zz" * 16, "ak": AK}), "--keys-file"), (json.dumps({"ek": 5, "ak": AK}), "16 bytes")])
def test_keys_the_meter_could_not_use_are_refused_before_the_port(tmp_path, content, why):
    f = tmp_path / "keys.json"
    f.write_text(content)
    r = run("--keys-file", str(f))
    assert r.exit_code == 2 and why in r.output, r.output


def test_keys_and_clear_are_one_or_the_other_and_good_keys_reach_the_port_problem(tmp_path):
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"ek": EK, "ak": AK}))
    r = run("--keys-file", str(f), "--clear")
    assert r.exit_code == 2 and "one or the other" in r.output, r.output
    assert run("--keys-file", str(f)).exit_code == 3  # the port is the next problem, nothing before it


class UdpLink:
    udp = True


class NoSigning:
    async def envelope(self, *args, **kwargs):
        raise AssertionError("an envelope was made: the keys were about to leave over the network")


def test_keys_never_go_over_a_network_link():
    with pytest.raises(BadInput, match="never over udp"):
        asyncio.run(supply.set_dlms_keys(UdpLink(), NoSigning(), (bytes(16), bytes(16))))  # type: ignore[arg-type]
