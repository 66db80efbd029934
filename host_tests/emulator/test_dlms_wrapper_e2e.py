"""DLMS/COSEM through the meter's NB-IoT module (issue 20's test 2): a meter-emu ESP32 with its BC660K module
(`--modem`) is given, by signed commands, its utility keys (`ota meter dlms-keys`) and a head-end with a DLMS port
(`ota meter network --headend IP:PORT --dlms-port P`); from its next boot it serves DLMS through the IEC 62056-47 UDP
wrapper on its port 4059 to that head-end (firmware/app/dlms_wrapper.py WrapperPort, started by app/network_link.py).
The head-end here is gurux-dlms's client in its wrapper mode (host_tests/dlms_client.py DlmsUdpClient): the utility
settings' association (HLS-GMAC, every APDU authenticated and encrypted) calls remote_disconnect then
remote_reconnect, attribute 2 and the relay follow (control mode 6: the consumer's button completes the reconnect),
301/302 appear in the control event log; a client with the wrong keys is rejected, and said (event 426). Virtual
time at --speed max: nothing here asserts wall-clock timing."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("gurux_dlms")
from gurux_dlms.objects import GXDLMSData, GXDLMSDisconnectControl, GXDLMSRegister  # noqa: E402

from host_tests.dlms_client import DlmsUdpClient  # noqa: E402
from host_tests.emu import ota  # noqa: E402
from host_tests.emulator.test_modem_driver_e2e import _free_udp_port  # noqa: E402
from host_tests.supply_scenario import KEY, SIGNED_FOR  # noqa: E402

EK, AK = bytes(range(0x40, 0x50)), bytes(range(0x50, 0x60))


def _given_away(e: Exception) -> bool:
    """Whether gurux's exception says the meter ended the association for its heap, or turned it away for now."""
    return "Service not allowed" in str(e) or "transient" in str(e).lower()


def _json(*args: str) -> dict:
    p = ota(*args)
    assert p.returncode == 0, f"ota {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return json.loads(p.stdout)


@pytest.mark.parametrize("board", ["esp32_devkitc", "rpi_pico"])
def test_the_utility_association_operates_the_relay_through_the_modem(start_emulator, tmp_path, board):
    emu = start_emulator(board, speed="max", seed=11, args=("--modem",))
    emu.wait_boots(1)
    con = emu.console
    signed = ("--port", con, "--key", str(KEY), "--expires-in", str(SIGNED_FOR), "--json")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"ek": EK.hex(), "ak": AK.hex()}))
    assert _json("meter", "dlms-keys", "--keys-file", str(keys), *signed)["set"] is True
    smp_port, dlms_port = _free_udp_port(), _free_udp_port()
    st = _json("meter", "network", "--headend", f"127.0.0.1:{smp_port}", "--dlms-port", str(dlms_port), *signed)
    assert st["next_boot"] == {"ip": "127.0.0.1", "port": smp_port, "uplink_s": 0, "dlms_port": dlms_port}, st
    assert ota("reset", "--port", con).returncode == 0
    emu.wait_boots(2)
    emu.wait_status(lambda s: s["device"].get("modem", {}).get("sockets") == [0, 1], timeout=120,
                    what="the head-end's two sockets (SMP, DLMS)")
    meter = (emu.endpoints["udp"]["address"], 4059)

    def relay() -> dict:
        return _json("meter", "relay", "status", "--port", con, "--json")

    dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
    again = []

    def session(work, **client):
        """work(c) in an association (the utility's by default: HLS, both sides prove they hold the keys, every APDU
        authenticated and encrypted), as a head-end does it: a meter short of heap may end a session to give its heap
        to metering or SMP work ("Service not allowed" on the next request), or turn an AARQ away for now
        (rejected-transient), docs/dlms.md; the head-end then associates again and repeats the work (every step here
        may be repeated). Another rejection is raised."""
        for k in range(4):
            with DlmsUdpClient(meter, ("127.0.0.1", dlms_port), **(client or {"keys": (EK, AK)})) as c:
                try:
                    c.connect()
                    work(c)
                    assert c.disconnect()[8] == 0x63  # RLRE, behind the wrapper's 8 bytes
                    return
                except Exception as e:  # gurux's own exception types
                    if k == 3 or not _given_away(e):
                        raise
                    again.append(str(e).splitlines()[0])

    def operate(c):
        assert c.read(GXDLMSRegister("1.0.12.7.0.255"), 3, 2).value > 100  # the voltage, scaled
        c.method(dc, 1)  # remote_disconnect
        c.read(dc, 2, 3)
        assert (dc.outputState, int(dc.controlState)) == (False, 0)
        c.method(dc, 2)  # remote_reconnect: in control mode 6 (the default) ready for reconnection, the supply
        c.read(dc, 2, 3)  # still off until the consumer presses the button
        assert (dc.outputState, int(dc.controlState)) == (False, 2)

    def connected(c):
        c.read(dc, 2, 3)
        assert (dc.outputState, int(dc.controlState)) == (True, 1)

    session(operate)
    st = relay()  # (SMP between associations: the head-end follows the relay through DLMS alone)
    assert (st["mode"], st["state"], st["output"]) == (6, 2, False), st
    emu.ctl("press", "button", "--for", "0.3")
    end = time.monotonic() + 60
    while not relay()["output"]:
        assert time.monotonic() < end, relay()
        time.sleep(0.5)
    session(connected)
    codes = [e["code"] for e in _json("meter", "events", "--port", con, "--json")["events"]]
    assert 301 in codes and 302 in codes, codes  # the control log's disconnect and reconnect, as over SMP

    # the wrong keys: the association is rejected and the meter says so; the relay is untouched
    def intruder(c):
        raise AssertionError("associated with the wrong keys")

    with pytest.raises(Exception, match="permanently rejected"):  # gurux's own exception types
        session(intruder, keys=(EK, bytes(16)), title=b"INTRUDER")
    refused = [e for e in _json("meter", "events", "--port", con, "--json")["events"] if e["code"] == 426]
    assert refused and refused[-1]["detail"] == "from " + b"INTRUDER".hex() + ": AARQ not deciphered", refused
    assert relay()["output"] is True

    # the public client reads through the wrapper too (no security, GET only), and the network status counts it
    def public(c):
        name = c.read(GXDLMSData("0.0.42.0.0.255"), 2).value  # the logical device name
        assert bytes(name).startswith(b"MKT"), name
        try:
            c.method(GXDLMSDisconnectControl("0.0.96.3.10.255"), 1)  # the public client cannot ACTION
        except Exception as e:  # (an ExceptionResponse: gurux's own type)
            if _given_away(e):
                raise
            assert "Service not supported" in str(e), e
        else:
            raise AssertionError("the public client's ACTION was taken")

    session(public, client=16)
    assert relay()["output"] is True
    st = _json("meter", "network", "--port", con, "--json")
    assert st["headend"]["dlms_port"] == dlms_port and st["dlms"]["port"] == 4059 and st["dlms"]["open"], st
    assert st["dlms"]["sessions"] >= 1, st
