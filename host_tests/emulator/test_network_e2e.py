"""The app's own network end to end (firmware/app/network.py): a meter-emu meter with its NB-IoT module (`--modem`)
leaves the module off until a signed `meter.headend` names its head-end, then from the next boot serves SMP over UDP
to that head-end with the same groups and the same signing rules as its console, sends its uplink datagram, and
records the link's events. The host is the head-end: `ota --port udp://METER:1337?from=HEADEND_PORT`. Virtual time
at --speed max: nothing here asserts wall-clock timing."""

from __future__ import annotations

import json
import socket
import subprocess

import cbor2
import pytest

from host_tests.emu import BIN
from host_tests.emulator.test_modem_driver_e2e import _free_udp_port
from host_tests.supply_scenario import KEY, SIGNED_FOR
from ota_tool import keys, network
from ota_tool.authority import Authority
from ota_tool.errors import Refused
from ota_tool.link import MeterLink, run


def _ota(*args, expect: int = 0, timeout: float = 180):
    p = subprocess.run([str(BIN / "ota"), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == expect, f"ota {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    if "--json" in args and p.returncode == 0:
        return json.loads(p.stdout)
    return p.stdout + p.stderr


@pytest.fixture
def meter(start_emulator):
    emu = start_emulator("esp32_devkitc", speed="max", seed=7, args=("--modem",))
    emu.wait_boots(1)
    return emu


def test_a_signed_head_end_brings_the_meter_onto_its_network(meter):
    emu = meter
    con = emu.console
    st = _ota("meter", "network", "--port", con, "--json")
    assert (st["fitted"], st["link"], st["headend"], st["next_boot"]) == (True, "none", None, None), st

    # unsigned: refused, nothing stored (exit 9, as every unsigned change on any meter)
    port = _free_udp_port()
    out = _ota("meter", "network", "--port", con, "--headend", f"127.0.0.1:{port}", expect=9)
    assert "not authorised" in out, out
    # signed, but not a value the meter takes: a float port (5 and 5.0 differ), refused by name (exit 14)
    auth = Authority(keys.load_private(KEY, None), ())
    auth.expires_in = SIGNED_FOR

    async def bad() -> str:
        async with MeterLink(con, timeout=10) as link:
            with pytest.raises(Refused) as e:
                await network.set_headend(link, auth, {"ip": "127.0.0.1", "port": float(port), "uplink_s": 0})
            return str(e.value)

    assert "port is not 1..65535" in run(bad())
    assert _ota("meter", "network", "--port", con, "--json")["next_boot"] is None

    st = _ota("meter", "network", "--port", con, "--headend", f"127.0.0.1:{port}", "--uplink", 30, "--key", KEY,
              "--expires-in", SIGNED_FOR, "--json")
    assert st["next_boot"] == {"ip": "127.0.0.1", "port": port, "uplink_s": 30} and st["link"] == "none", st
    _ota("reset", "--port", con)
    emu.wait_boots(2)
    emu.wait_status(lambda s: s["device"].get("modem", {}).get("sockets") == [0], what="the head-end's socket")

    udp = emu.endpoints["udp"]
    url = f"udp://{udp['address']}:{udp['port']}?from={port}"
    info = _ota("info", "--port", url, "--timeout", 30, "--json")
    assert info["app"].startswith("app-"), info
    st = _ota("meter", "network", "--port", url, "--timeout", 30, "--json")
    assert st["link"] == "up" and st["headend"] == {"ip": "127.0.0.1", "port": port, "uplink_s": 30}, st
    assert st["smp"]["answered"] >= 2 and st["modem"]["stat"] == 1, st
    read = _ota("meter", "read", "--port", url, "--timeout", 30, "--json")
    assert read["obis"], read
    # the same signing rules as the console: an unsigned relay command over UDP is refused the same way
    out = _ota("meter", "relay", "disconnect", "--port", url, "--timeout", 30, expect=9)
    assert "not authorised" in out and "no-envelope" in out, out

    # the uplink: every 30 s of device time while the link is up, a CBOR map to the head-end
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
        s.settimeout(60)
        data, src = s.recvfrom(2048)
    assert src == (udp["address"], udp["port"]) and data[0] == 0xA4, (src, data)
    up = cbor2.loads(data)
    assert up["meter"] == info["meter_id"] and up["link"] == "up" and up["seq"] >= 1, up

    # the module stops answering: the meter finds it silent (IS 15959 event 209), pulses it and is back on line
    emu.ctl("modem", "wedge")
    codes: list[int] = []
    for _ in range(4):  # a minute of device time at a go, at --speed max (the meter finds the module silent at its
        # next uplink, up to 30 s on, then pulses it and registers again); polling the console meanwhile would hold
        # device time at 1x for the whole wait
        emu.ctl("run", "--for", "60", "--wait", timeout=120)
        codes = [e["code"] for e in _ota("meter", "events", "--port", con, "--json")["events"]]
        if {209, 435} <= set(codes):
            break
    assert 410 in codes and 431 in codes and 209 in codes and 435 in codes, codes
    assert _ota("echo", "--port", url, "--timeout", 60, "--json", "back") == {"ok": True, "echo": "back"}
