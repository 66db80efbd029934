"""DLMS/COSEM through the meter's NB-IoT module (issue 20's test 2): a meter-emu meter with its BC660K module
(`--modem`) is given, by signed commands, its meter reader's secret, its utility keys and a head-end with a DLMS port
(`ota meter network --headend IP:PORT --dlms-port P`); from its next boot it serves DLMS through the IEC 62056-47 UDP
wrapper on its port 4059 to that head-end (firmware/app/dlms_wrapper.py WrapperPort, started by app/network_link.py).
The head-end here is gurux-dlms's client in its wrapper mode (host_tests/dlms_client.py DlmsUdpClient). The public
client and the meter reader read the meter through it, its stored load profiles too, and metering takes
no harm from the sessions (no out-of-memory event). A networked ESP32 may answer a stored profile's read
temporary-failure when it has no room for the profile's code at that moment; the head-end asks again (`_read`), as
docs/dlms.md tells head-ends to. The utility settings' association (HLS-GMAC, every APDU authenticated and
encrypted) operates the relay (remote_disconnect, remote_reconnect, the consumer's button; 301/302 in the control log;
a client with the wrong keys rejected and said, event 426) on both boards. (Until the emulator made its qstr pools at
start, the emulated ESP32 turned it away rejected-transient every time, and profile reads got other-reason on both:
docs/BENCHMARKS.md, "qstr pools".) Virtual time at --speed max: nothing here asserts wall-clock timing."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

pytest.importorskip("gurux_dlms")
from gurux_dlms.objects import (  # noqa: E402
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSPushSetup,
    GXDLMSRegister,
)

from host_tests.dlms_client import DlmsUdpClient  # noqa: E402
from host_tests.emu import ota  # noqa: E402
from host_tests.emulator.test_modem_driver_e2e import _free_udp_port  # noqa: E402
from host_tests.supply_scenario import KEY, SIGNED_FOR  # noqa: E402

EK, AK = bytes(range(0x40, 0x50)), bytes(range(0x50, 0x60))
SECRET = "reader-2026"
OUT_OF_MEMORY = 418  # firmware/app/events.py


def _given_away(e: Exception) -> bool:
    """Whether gurux's exception says the meter ended the association for its heap, or turned it away for now."""
    return "Service not allowed" in str(e) or "transient" in str(e).lower()


def _json(*args: str, env: dict | None = None) -> dict:
    p = ota(*args, env=env)
    assert p.returncode == 0, f"ota {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return json.loads(p.stdout)


def _keyed(start_emulator, tmp_path, board: str, seed: int):
    """A meter with its module, given the utility keys: (emu, the signed commands' options)."""
    emu = start_emulator(board, speed="max", seed=seed, args=("--modem",))
    emu.wait_boots(1)
    signed = ("--port", emu.console, "--key", str(KEY), "--expires-in", str(SIGNED_FOR), "--json")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"ek": EK.hex(), "ak": AK.hex()}))
    assert _json("meter", "dlms-keys", "--keys-file", str(keys), *signed)["set"] is True
    return emu, signed


def _networked(start_emulator, tmp_path, board: str):
    """A meter with its module, the reader's secret, the utility keys and a head-end with a DLMS port, reset so that
    its network (and the wrapper's socket) is up: (emu, the meter's wrapper address, the head-end's DLMS port)."""
    emu, signed = _keyed(start_emulator, tmp_path, board, 11)
    con = emu.console
    _json("meter", "reader-secret", "--set", "--secret-env", "METER_READER", *signed,
          env=dict(os.environ, METER_READER=SECRET))
    smp_port, dlms_port = _free_udp_port(), _free_udp_port()
    st = _json("meter", "network", "--headend", f"127.0.0.1:{smp_port}", "--dlms-port", str(dlms_port), *signed)
    assert st["next_boot"] == {"ip": "127.0.0.1", "port": smp_port, "uplink_s": 0, "dlms_port": dlms_port}, st
    assert ota("reset", "--port", con).returncode == 0
    emu.wait_boots(2)
    emu.wait_status(lambda s: s["device"].get("modem", {}).get("sockets") == [0, 1], timeout=120,
                    what="the head-end's two sockets (SMP, DLMS)")
    return emu, (emu.endpoints["udp"]["address"], 4059), dlms_port


def _session(meter, dlms_port: int, work, **client) -> None:
    """work(c) in an association of `client` (DlmsUdpClient's arguments), as a head-end does it: a meter short of
    heap may end a session to give its heap to metering or SMP work ("Service not allowed" on the next request), or
    turn an AARQ away for now (rejected-transient), docs/dlms.md; the head-end then associates again and repeats the
    work (every step the tests give may be repeated), four times at most. Another rejection is raised."""
    for k in range(4):
        with DlmsUdpClient(meter, ("127.0.0.1", dlms_port), **client) as c:
            try:
                c.connect()
                work(c)
                assert c.disconnect()[8] == 0x63  # RLRE, behind the wrapper's 8 bytes
                return
            except Exception as e:  # gurux's own exception types
                if k == 3 or not _given_away(e):
                    raise
                time.sleep(1)  # (the meter's idle session leaves the heap 5 s of device time after its last request)


def _read(c, obj, *attrs: int):
    """c.read(obj, *attrs) as a head-end reads a stored profile: a networked ESP32 may find no room for the
    profile's code at that moment and answer temporary-failure (2, docs/dlms.md); the head-end asks again 2 s later,
    six times at most, and any other answer is raised. Each time the meter said so is printed."""
    for attr in attrs:
        for k in range(6):
            try:
                c.read(obj, attr)
                break
            except LookupError as e:
                if k == 5 or not str(e).endswith("data-access-result 2"):
                    raise
                print(f"temporary-failure: {obj.logicalName} attribute {attr}, asked again")
                time.sleep(2)
    return obj


def _out_of_memory(emu) -> list[dict]:
    return [e for e in _json("meter", "events", "--port", emu.console, "--json")["events"] if e["code"] == OUT_OF_MEMORY]


@pytest.mark.parametrize("board", ["esp32_devkitc", "rpi_pico"])
def test_the_public_client_and_the_meter_reader_read_the_meter_through_the_modem(start_emulator, tmp_path, board):
    emu, meter, dlms_port = _networked(start_emulator, tmp_path, board)
    def public(c):
        name = c.read(GXDLMSData("0.0.42.0.0.255"), 2).value  # the logical device name
        assert bytes(name).startswith(b"MKT"), name
        assert c.read(GXDLMSRegister("1.0.12.7.0.255"), 3, 2).value > 100  # the voltage, scaled
        try:
            c.method(GXDLMSDisconnectControl("0.0.96.3.10.255"), 1)  # the public client cannot ACTION
        except Exception as e:  # (an ExceptionResponse: gurux's own type)
            if _given_away(e):
                raise
            assert "Service not supported" in str(e), e
        else:
            raise AssertionError("the public client's ACTION was taken")

    def reader(c):
        assert c.read(GXDLMSRegister("1.0.1.8.0.255"), 3, 2).value >= 0  # the import register
        push = GXDLMSPushSetup("0.4.25.9.0.255")  # where the meter's alerts go, as gurux reads it
        push.version = 0
        c.read(push, 2, 3, 6, 7)
        assert [o.logicalName for o, _ in push.pushObjectList] == [
            "0.0.96.1.2.255", "0.4.25.9.0.255", "0.0.1.0.0.255", "0.0.94.91.18.255"], push.pushObjectList
        assert (int(push.service), push.destination) == (1, f"127.0.0.1:{dlms_port}")  # UDP, the head-end
        assert (push.numberOfRetries, push.repetitionDelay) == (3, 60)
        # the stored load profiles' code (app/dlms_load.py) through the modem: the block load profile's shape and
        # the daily load profile's rows, the same count as SMP's
        block = _read(c, GXDLMSProfileGeneric("1.0.99.1.0.255"), 3, 4, 7, 2)
        assert block.capturePeriod == 1800 and len(block.buffer) == block.entriesInUse, block.buffer
        assert [o.logicalName for o, _ in block.captureObjects][:2] == ["0.0.1.0.0.255", "1.0.12.27.0.255"]
        daily = _read(c, GXDLMSProfileGeneric("1.0.99.2.0.255"), 3, 2)
        held = _json("meter", "profile", "--daily", "--port", emu.console, "--json")["held"]
        assert len(daily.buffer) in (held, held - 1), (held, daily.buffer)  # (a row may close between the two reads)

    _session(meter, dlms_port, public)
    _session(meter, dlms_port, reader, secret=SECRET)
    st = _json("meter", "network", "--port", emu.console, "--json")
    assert st["headend"]["dlms_port"] == dlms_port and st["dlms"]["port"] == 4059 and st["dlms"]["open"], st
    assert st["dlms"]["sessions"] >= 1, st
    time.sleep(7)  # the session's idle time (5 s): its code leaves the heap
    oom = _out_of_memory(emu)
    assert oom == [], f"metering ran out of heap beside the DLMS sessions: {oom}"


@pytest.mark.parametrize("board", ["esp32_devkitc", "rpi_pico"])
def test_the_utility_association_through_the_modem_operates_the_relay(start_emulator, tmp_path, board):
    emu, meter, dlms_port = _networked(start_emulator, tmp_path, board)
    con = emu.console
    # the first association as a head-end makes it (_session): a heap short of room for the security's modules answers
    # rejected-transient, and a session the meter gives away for its heap between the AARQ and the client's f(StoC)
    # answers "service not allowed" (docs/dlms.md "Heap"). (What failed the CI run of f4ebca0 here was the emulator's:
    # its 0.25 s hold let idle waits skip the 120 s inactivity timeout before a slow host's f(StoC) came.)
    _session(meter, dlms_port, lambda c: None, keys=(EK, AK))

    def relay() -> dict:
        return _json("meter", "relay", "status", "--port", con, "--json")

    dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
    def session(work, **client):
        _session(meter, dlms_port, work, **(client or {"keys": (EK, AK)}))

    def operate(c):
        assert c.read(GXDLMSRegister("1.0.12.7.0.255"), 3, 2).value > 100  # the voltage, scaled
        c.read(dc, 2, 3)  # (an association the meter gave away part-way is made again, and finds its steps done)
        if int(dc.controlState) == 1:
            c.method(dc, 1)  # remote_disconnect
            c.read(dc, 2, 3)
            assert (dc.outputState, int(dc.controlState)) == (False, 0)
        if int(dc.controlState) == 0:
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

    st = _json("meter", "network", "--port", con, "--json")
    assert st["dlms"]["sessions"] >= 1, st


def _alerts(sock: socket.socket, until: set[int], wall_s: float) -> tuple[list[dict], set[int]]:
    """IS 15959 alert pushes received on the head-end's socket, parsed by gurux as a push client (SAP 64) with the
    utility keys (general-glo-ciphering), until the ESW bits `until` have all been seen or `wall_s` is over."""
    from gurux_dlms import GXByteBuffer, GXReplyData
    from gurux_dlms.enums import Authentication, Command, InterfaceType, Security
    from gurux_dlms.secure import GXDLMSSecureClient

    c = GXDLMSSecureClient(True, 64, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    c.ciphering.blockCipherKey = bytearray(EK)
    c.ciphering.authenticationKey = bytearray(AK)
    got: list[dict] = []
    seen: set[int] = set()
    end = time.monotonic() + wall_s
    while not until <= seen and time.monotonic() < end:
        sock.settimeout(max(0.1, end - time.monotonic()))
        try:
            d, _ = sock.recvfrom(2048)
        except TimeoutError:
            break
        data, notify = GXReplyData(), GXReplyData()
        assert d[:6] == b"\x00\x01\x00\x01\x00\x40" and d[8] == 0xDB, d.hex()  # wPort 1 -> 64, general-glo-ciphered
        c.getData(GXByteBuffer(d), data, notify)
        assert notify.command == Command.DATA_NOTIFICATION, d.hex()
        device, setup, clock, esw = notify.value
        bits = {i for i, b in enumerate(str(esw)) if b == "1"}
        got.append({"device": bytes(device), "setup": bytes(setup), "clock": bytes(clock), "bits": bits})
        seen |= bits
    return got, seen


@pytest.mark.parametrize("board", ["esp32_devkitc", "rpi_pico"])
def test_a_power_cut_with_the_cover_open_is_logged_and_pushed_to_the_head_end(start_emulator, tmp_path, board):
    """Issue 20's test 3: the power cut with the terminal cover off; on restore 101/102 in the power event log, 251
    in the non-rollover log, and alert pushes (ESW bits 85 last gasp, 86 first breath, 83 cover open) reach a
    head-end listener on its DLMS port, authenticated and encrypted under the utility keys."""
    emu, signed = _keyed(start_emulator, tmp_path, board, 12)
    con = emu.console
    smp_port = _free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as headend:
        headend.bind(("127.0.0.1", 0))
        dlms_port = headend.getsockname()[1]
        _json("meter", "network", "--headend", f"127.0.0.1:{smp_port}", "--dlms-port", str(dlms_port), *signed)
        assert ota("reset", "--port", con).returncode == 0
        emu.wait_boots(2)
        got, seen = _alerts(headend, {86}, 120)  # the reset's start: first breath, once the link is up
        assert 86 in seen, got
        info = _json("info", "--port", con, "--json")
        assert got[0]["device"] == b"MKT" + info["meter_id"].encode()  # the device id: FLAG and the meter id
        assert got[0]["setup"] == bytes((0, 4, 25, 9, 0, 255))

        emu.ctl("press", "cover", "--for", "600")  # the cover off, and the power cut while it is
        time.sleep(1)
        emu.ctl("power-cut", "--off", "2")
        emu.wait_boots(3)
        got, seen = _alerts(headend, {83, 85, 86}, 120)
        assert {83, 85, 86} <= seen, got
    power = [e["code"] for e in _json("meter", "events", "--log", "power", "--port", con, "--json")["events"]]
    assert 101 in power and 102 in power, power
    tamper = _json("meter", "events", "--log", "non-rollover", "--port", con, "--json")["events"]
    # the opening, and again at the restore if the meter boots with the cover still off ("open at power-up": it
    # cannot know the cover stayed off while it had no power)
    assert [e["code"] for e in tamper] in ([251], [251, 251]), tamper
    st = _json("meter", "network", "--port", con, "--json")
    d = st["dlms"]
    # (a push that found no room for its modules is tried again a minute later: a failure, then, is the heap's)
    assert d["pushes"] >= 3 and (d["push_failures"] == 0 or "MemoryError" in d["push_error"]), st
    text = ota("meter", "network", "--port", con).stdout
    assert f"dlms/push   {d['pushes']} alerts pushed, " in text, text
