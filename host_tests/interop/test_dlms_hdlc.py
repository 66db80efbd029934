"""The meter's DLMS layers (firmware/app/hdlc.py and app/cosem.py, on CPython) against a real DLMS client: gurux-dlms's
GXDLMSClient builds the frames and parses the meter's answers — connection with parameter negotiation, a response
longer than one frame polled segment by segment, disconnection, then the public client's association, GETs of a
register's value and scaler, an undefined object, release. gurux-dlms is GPLv2: a test-only extra the package never
imports. The object model here is a small table: the meter's own (registers, clock, class 70) is not wired yet."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData  # noqa: E402
from gurux_dlms.enums import Authentication, InterfaceType, ObjectType  # noqa: E402
from gurux_dlms.objects import (  # noqa: E402
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSExtendedRegister,
    GXDLMSRegister,
)

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "firmware" / "lib", ROOT / "firmware", ROOT / "meterkit" / "mpy_compat"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import mpy_port  # noqa: E402

from host_tests import dlms_client  # noqa: E402
from host_tests.firmware import fwtest  # noqa: E402

mpy_port.install()
from app import cosem, disconnect, dlms_objects, dsp, hdlc, registers  # noqa: E402
from app.tick import Tick  # noqa: E402

# a GET.response-normal carrying an octet string of 288 bytes: a real xDLMS answer gurux can parse, longer than
# two 128-byte information fields
VALUE = bytes(range(256)) + bytes(range(32))
ANSWER = bytes([0xC4, 0x01, 0xC1, 0x00, 0x09, 0x82, 0x01, 0x20]) + VALUE


class Meter:
    """The meter's HDLC end: a deframer and a link at server address 1, the way the port's task will drive them."""

    def __init__(self, max_info: int = 128, on_apdu=None):
        self.requests: list[bytes] = []
        self.link = hdlc.Link(1, 1, on_apdu or self._apdu, max_info=max_info)
        self.deframer = hdlc.Deframer(max_info)
        self.deframer.on_frame = self._frame
        self.out: list[bytes] = []

    def _apdu(self, apdu) -> bytes:
        self.requests.append(bytes(apdu))
        return ANSWER

    def _frame(self, f) -> None:
        r = self.link.receive(f, 0)
        if r is not None:
            self.out.append(bytes(r))

    def send(self, data) -> bytes:
        n = len(self.out)
        self.deframer.feed(bytes(data))
        assert len(self.out) == n + 1, f"the meter answered {len(self.out) - n} frames"
        return self.out[-1]


def client(max_tx: int = 128, max_rx: int = 128, secret: str | None = None) -> GXDLMSClient:
    """gurux as the public client (SAP 16), or with a secret as the meter reader (SAP 32, low-level security)."""
    c = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.HDLC) if secret is None else \
        GXDLMSClient(True, 32, 1, Authentication.LOW, secret, InterfaceType.HDLC)
    c.hdlcSettings.maxInfoTX = max_tx
    c.hdlcSettings.maxInfoRX = max_rx
    return c


@pytest.mark.parametrize("max_tx,max_rx", [(128, 128), (64, 256), (32, 48)])
def test_gurux_connects_reads_a_segmented_answer_and_disconnects(max_tx, max_rx):
    c = client(max_tx, max_rx)
    meter = Meter()
    reply = GXReplyData()
    c.getData(GXByteBuffer(meter.send(c.snrmRequest())), reply)
    c.parseUAResponse(reply.data)  # gurux takes the negotiated lengths from the meter's UA
    assert (c.hdlcSettings.maxInfoTX, c.hdlcSettings.maxInfoRX) == (min(max_tx, 128), min(max_rx, 128))
    assert (meter.link.rx_info, meter.link.tx_info) == (min(max_tx, 128), min(max_rx, 128))

    frames = c.aarqRequest()  # an I-frame (two for a 32-byte field: gurux segments the request itself)
    assert len(frames) == (2 if max_tx < 34 else 1)  # the AARQ is 34 bytes with its LLC header
    reply = GXReplyData()
    answer = b""
    for k, frame in enumerate(frames):
        answer = meter.send(frame)
        if k < len(frames) - 1:  # the meter's RR for a request segment: gurux reads it before the next one
            assert answer[5] & 0x0F == 0x01
            c.getData(GXByteBuffer(answer), GXReplyData())
    assert meter.requests == [meter.requests[0]] and meter.requests[0][:2] == b"\x60\x1d"  # the AARQ, LLC stripped
    polls = 0
    while True:
        c.getData(GXByteBuffer(answer), reply)
        if not reply.isMoreData():
            break
        answer = meter.send(c.receiverReady(reply))  # RR: the next segment
        polls += 1
    assert bytes(reply.value) == VALUE
    assert polls == -(-(len(ANSWER) + 3) // min(max_rx, 128)) - 1

    disc = c.disconnectRequest()
    assert meter.send(disc)[5] == 0x73  # UA
    assert meter.send(disc)[5] == 0x1F  # DM: already disconnected
    assert meter.link.state == hdlc.DISCONNECTED


def test_a_repeated_request_frame_gets_the_same_answer_once():
    """The client sends its I-frame again (the meter's answer was lost on the line): the meter sends the same frame
    again, and the request reaches the server above once; gurux still reads the whole answer."""
    c = client()
    meter = Meter()
    reply = GXReplyData()
    c.getData(GXByteBuffer(meter.send(c.snrmRequest())), reply)
    c.parseUAResponse(reply.data)
    aarq = bytes(c.aarqRequest()[0])
    first = meter.send(aarq)
    assert meter.send(aarq) == first and len(meter.requests) == 1
    reply = GXReplyData()
    answer = first
    while True:
        c.getData(GXByteBuffer(answer), reply)
        if not reply.isMoreData():
            break
        answer = meter.send(c.receiverReady(reply))
    assert bytes(reply.value) == VALUE


VOLTAGE = cosem.obis("1.0.12.7.0.255")
ENERGY = cosem.obis("1.0.1.8.0.255")


def model(cls: int, obis: bytes, attr: int, access=None, client: int = 16):
    """A small object table in the meter's terms: instantaneous voltage 230.12 V (centivolts, scaler -2), active
    energy import 123,456,789 Wh (scaler 0, a long64-unsigned register)."""
    if cls == 3 and obis in (VOLTAGE, ENERGY):
        if attr == 1:
            return cosem.octets(obis)
        if attr == 2:
            return cosem.number(cosem.LONG_UNSIGNED, 23012) if obis == VOLTAGE else \
                cosem.number(cosem.LONG64_UNSIGNED, 123456789)
        if attr == 3:
            return cosem.scaler_unit(-2, 35) if obis == VOLTAGE else cosem.scaler_unit(0, 30)
    return cosem.OBJECT_UNDEFINED


def exchange(meter: Meter, c: GXDLMSClient, frames) -> GXReplyData:
    return dlms_client.exchange(meter.send, c, frames)


def test_gurux_associates_as_the_public_client_and_reads_registers():
    assoc = cosem.Association(model)
    meter = Meter(on_apdu=assoc.apdu)
    meter.link.on_disconnect = assoc.release
    c = client()
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    assert assoc.associated and c.maxReceivePDUSize == cosem.MAX_PDU

    for ln, value, unit in (("1.0.12.7.0.255", 230.12, 35), ("1.0.1.8.0.255", 123456789, 30)):
        reg = GXDLMSRegister(ln)
        for attr in (3, 2):  # the scaler first: gurux applies it to the value
            c.updateValue(reg, attr, exchange(meter, c, c.read(reg, attr)).value)
        assert (reg.value, int(reg.unit)) == (value, unit)

    reply = exchange(meter, c, c.read(GXDLMSClock("0.0.1.0.0.255"), 2))  # not in this table
    assert reply.error == cosem.OBJECT_UNDEFINED

    exchange(meter, c, c.releaseRequest())
    assert not assoc.associated
    assert meter.send(c.disconnectRequest())[5] == 0x73 and meter.link.state == hdlc.DISCONNECTED


def test_gurux_with_a_password_is_refused_by_the_public_association():
    assoc = cosem.Association(model)
    meter = Meter(on_apdu=assoc.apdu)
    c = GXDLMSClient(True, 16, 1, Authentication.LOW, "12345678", InterfaceType.HDLC)
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    with pytest.raises(Exception, match="(?i)authentication|mechanism|rejected"):
        c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    assert not assoc.associated


def test_gurux_reads_the_meters_own_objects(tmp_path, monkeypatch):
    """The object model over a real reading, registers and class-70 control (app/dlms_objects.py), read by gurux
    as a head-end would: values with their scalers applied, the clock, maximum demand, the name, the relay."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meter").mkdir()
    reading, regs = dsp.Reading(), registers.Registers()
    tick = Tick(reading, regs)
    control = fwtest.disconnect_control()
    objects = dlms_objects.Objects(tick, control, b"MKT0000000000042", lambda: 330)
    assoc = cosem.Association(objects.get)
    meter = Meter(on_apdu=assoc.apdu)
    c = client()
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)

    def read(obj, *attrs):
        for attr in attrs:
            reply = exchange(meter, c, c.read(obj, attr))
            assert reply.error == 0, (obj.logicalName, attr, reply.error)
            c.updateValue(obj, attr, reply.value)
        return obj

    reading.voltage, reading.current, reading.p, reading.frequency = 229.87, 12.345, 2830.0, 50.02
    tick.ms = 1
    regs.add(0, 3600 * 1000 * 98765)  # 98,765 Wh imported
    regs.md_w, regs.md_at = 4100.0, None
    assert read(GXDLMSRegister("1.0.12.7.0.255"), 3, 2).value == pytest.approx(229.87)
    assert read(GXDLMSRegister("1.0.11.7.0.255"), 3, 2).value == pytest.approx(12.345)
    assert read(GXDLMSRegister("1.0.1.7.0.255"), 3, 2).value == 2830
    assert read(GXDLMSRegister("1.0.14.7.0.255"), 3, 2).value == pytest.approx(50.02)
    energy = read(GXDLMSRegister("1.0.1.8.0.255"), 3, 2)
    assert energy.value == pytest.approx(98765) and int(energy.unit) == 30
    assert read(GXDLMSExtendedRegister("1.0.1.6.0.255"), 3, 2).value == 4100
    assert bytes(read(GXDLMSData("0.0.42.0.0.255"), 2).value) == b"MKT0000000000042"
    dc = read(GXDLMSDisconnectControl("0.0.96.3.10.255"), 2, 3, 4)
    assert (dc.outputState, int(dc.controlState), int(dc.controlMode)) == (True, 1, 6)
    control.apply(disconnect.REMOTE_DISCONNECT, "test")
    assert read(GXDLMSDisconnectControl("0.0.96.3.10.255"), 2).outputState is False
    clock = read(GXDLMSClock("0.0.1.0.0.255"), 2)
    assert clock.time is not None


class PortMeter:
    """The meter's DLMS port itself (app/dlms_port.py OpticalPort over the meter's objects), fed as its line task
    feeds it, in `exchange`'s shape: send a frame, get the answer."""

    def __init__(self, parts=None):
        self.line = fwtest.Line()
        self.port = fwtest.optical_port(self.line, parts)

    def send(self, data) -> bytes:
        n = len(self.line.out)
        buf = self.port.buf
        data = bytes(data)
        for i in range(0, len(data), len(buf)):
            piece = data[i:i + len(buf)]
            buf[:len(piece)] = piece
            self.port.feed(len(piece))
        assert len(self.line.out) == n + 1, f"the meter answered {len(self.line.out) - n} frames"
        return self.line.out[-1]


def test_gurux_connects_again_after_the_meter_gave_its_session_to_signed_work():
    """A signed command found no room and the SMP server took the DLMS session's heap (loader/smp.py make_room): the
    client's next request is answered DM, and a client that starts afresh (gurux keeps its HDLC frame numbers across
    a new SNRM unless told: disconnectRequest() resets them) associates again and reads on."""
    meter = PortMeter()
    c = client()
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
    c.updateValue(dc, 2, exchange(meter, c, c.read(dc, 2)).value)
    assert dc.outputState is True
    assert meter.port.ctx.server.make_room() and meter.port.released == 1 and meter.port.deframer is None
    dm = meter.send(c.read(dc, 2)[0])
    assert dm[5] == 0x1F  # DM: the link is not connected
    c.disconnectRequest()  # the client drops its side of the session too
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    c.updateValue(dc, 2, exchange(meter, c, c.read(dc, 2)).value)
    assert dc.outputState is True and meter.port.loads == 2


@pytest.mark.parametrize("pdu", [0xFFFF, 128])
def test_gurux_reads_the_object_list_and_the_association_as_a_dlms_tool_does_first(pdu):
    """The association object (class 15, 0.0.40.0.0.255): gurux's getObjects() parses the object list into the
    meter's objects with their classes and access rights. The list (1.5 KB) goes with GET with block transfer, in
    blocks that fit the smaller PDU of the two ends (the meter's 512 bytes, or a client's 128), gurux asking for
    each."""
    meter = PortMeter()
    c = client()
    c.maxReceivePDUSize = pdu
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    reply = exchange(meter, c, [c.getObjectsRequest()])
    blocks = meter.port.link.on_disconnect.__self__._block  # the association's last block number (0: one APDU)
    from app import dlms_objects

    model = dlms_objects.Objects(None, object(), b"", None, None, (b"",) * 4, lambda: 900, object())  # as the port
    size = sum(len(p) for p in model.get(15, dlms_objects.ASSOCIATION, 2))
    assert blocks == -(-size // (min(pdu, cosem.MAX_PDU) - 12)), (blocks, size)  # 3 blocks of 500 B, 13 of 116 B
    objects = c.parseObjects(reply.data, True)

    want = [(cls, ".".join(str(b) for b in obis)) for cls, obis in model.names()]
    assert [(int(o.objectType), o.logicalName) for o in objects] == want
    volts = objects.findByLN(ObjectType.REGISTER, "1.0.12.7.0.255")
    assert [int(volts.getAccess(i)) for i in (1, 2, 3)] == [1, 1, 1]  # read-only
    clock = objects.findByLN(ObjectType.CLOCK, "0.0.1.0.0.255")
    assert int(clock.getAccess(2)) == 1 and int(clock.getAccess(4)) == 0 and int(clock.getMethodAccess(1)) == 0
    assoc = objects.findByLN(ObjectType.ASSOCIATION_LOGICAL_NAME, "0.0.40.0.0.255")
    assert assoc.version == 1 and int(assoc.getAccess(7)) == 0  # the secret: no access
    for attr in (3, 4, 5, 6, 8):
        r = exchange(meter, c, c.read(assoc, attr))
        assert r.error == 0, (attr, r.error)
        c.updateValue(assoc, attr, r.value)
    assert (assoc.clientSAP, assoc.serverSAP) == (16, 1)
    assert assoc.applicationContextName.contextId == 1 and assoc.authenticationMechanismName.mechanismId == 0
    assert assoc.xDLMSContextInfo.maxReceivePduSize == 512 and int(assoc.associationStatus) == 2
    # the meter reader's association (not in force), and the block load profile, which the public client sees listed
    # with no access to anything but its name (the meter reader's rows)
    reader = objects.findByLN(ObjectType.ASSOCIATION_LOGICAL_NAME, "0.0.40.0.2.255")
    for attr in (3, 6, 8):
        c.updateValue(reader, attr, exchange(meter, c, c.read(reader, attr)).value)
    assert (reader.clientSAP, reader.authenticationMechanismName.mechanismId, int(reader.associationStatus)) == (
        32, 1, 0)
    utility = objects.findByLN(ObjectType.ASSOCIATION_LOGICAL_NAME, "0.0.40.0.3.255")  # the utility settings'
    for attr in (3, 4, 6, 8):
        c.updateValue(utility, attr, exchange(meter, c, c.read(utility, attr)).value)
    assert (utility.clientSAP, int(utility.authenticationMechanismName.mechanismId), int(utility.associationStatus),
            utility.applicationContextName.contextId) == (48, 5, 0, 3)
    block = objects.findByLN(ObjectType.PROFILE_GENERIC, "1.0.99.1.0.255")
    assert [int(block.getAccess(i)) for i in (1, 2, 3, 4)] == [1, 0, 0, 0]
    assert exchange(meter, c, c.read(block, 2)).error == cosem.READ_WRITE_DENIED


def test_gurux_reads_an_event_profile_whole_by_entry_and_by_range(tmp_path, monkeypatch):
    """The power-related event profile (0.0.99.98.2.255, class 7) over the meter's own event log: gurux reads its
    capture objects, then the buffer whole (in blocks at a 128-byte PDU), by entry and by range (local times)."""
    import datetime

    from gurux_dlms.objects import GXDLMSProfileGeneric

    from app import events

    monkeypatch.chdir(tmp_path)
    (tmp_path / "meter").mkdir()
    t0 = 1764547200  # 2025-12-01 00:00 UTC, 05:30 at the meter's +330 minutes
    now = [t0]
    log = events.EventLog(clock=lambda: now[0])
    for k in range(30):  # 15 power cuts: fail and restore, an hour apart
        now[0] = t0 + 3600 * k
        log.add(events.POWER_FAIL if k % 2 == 0 else events.POWER_RESTORE, "test")
    parts = fwtest.meter_parts()
    parts[2].log = log
    meter = PortMeter(parts)
    c = client()
    c.maxReceivePDUSize = 128
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    pg = GXDLMSProfileGeneric("0.0.99.98.2.255")
    c.updateValue(pg, 3, exchange(meter, c, c.read(pg, 3)).value)
    assert [(int(o.objectType), o.logicalName) for o, _ in pg.captureObjects] == [
        (8, "0.0.1.0.0.255"), (1, "0.0.96.11.2.255"), (3, "1.0.11.7.0.255"), (3, "1.0.12.7.0.255"),
        (3, "1.0.13.7.0.255"), (3, "1.0.1.8.0.255")]  # the time, the code, then the supply at the event
    c.updateValue(pg, 2, exchange(meter, c, c.read(pg, 2)).value)
    assert len(pg.buffer) == 30 and [r[1] for r in pg.buffer[:3]] == [101, 102, 101]
    assert all(r[2:] == [None] * 4 for r in pg.buffer)  # a log with no metering behind it: null figures
    local = datetime.datetime(2025, 12, 1, 5, 30)
    assert pg.buffer[1][0].value.replace(tzinfo=None) == local + datetime.timedelta(hours=1)
    c.updateValue(pg, 2, exchange(meter, c, c.readRowsByEntry(pg, 29, 2)).value)
    assert [(r[0].value.replace(tzinfo=None), r[1]) for r in pg.buffer] == [
        (local + datetime.timedelta(hours=28), 101), (local + datetime.timedelta(hours=29), 102)]
    c.updateValue(pg, 2, exchange(meter, c, c.readRowsByRange(pg, local + datetime.timedelta(hours=2),
                                                                 local + datetime.timedelta(hours=4))).value)
    assert [r[1] for r in pg.buffer] == [101, 102, 101]


def test_gurux_reads_the_instantaneous_profile_and_scales_it_with_the_scaler_profile(tmp_path, monkeypatch):
    """IS 15959's instantaneous profile (1.0.94.91.0.255): gurux reads its capture objects and its one row, and the
    scaler profile (1.0.94.91.3.255) gives each register column's scaler and unit, as a head-end applies them."""
    from gurux_dlms.objects import GXDLMSProfileGeneric

    monkeypatch.chdir(tmp_path)
    (tmp_path / "meter").mkdir()
    parts = fwtest.meter_parts()
    tick = parts[1].tick
    r = tick.reading
    r.voltage, r.current, r.p, r.s, r.pf, r.frequency = 229.87, 12.345, 2830.0, 2840.0, 0.996, 50.02
    tick.ms = 1
    tick.regs.add(0, 3600 * 1000 * 98765)
    meter = PortMeter(parts)
    c = client()
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    inst = GXDLMSProfileGeneric("1.0.94.91.0.255")
    scal = GXDLMSProfileGeneric("1.0.94.91.3.255")
    for pg in (inst, scal):
        for attr in (3, 2):
            c.updateValue(pg, attr, exchange(meter, c, c.read(pg, attr)).value)
    names = [o.logicalName for o, _ in inst.captureObjects]
    assert names[:3] == ["0.0.1.0.0.255", "1.0.12.7.0.255", "1.0.11.7.0.255"] and len(names) == 12
    row, scalers = inst.buffer[0], scal.buffer[0]
    scaled = {}
    for k, (obj, _) in enumerate(scal.captureObjects):
        scaler = scalers[k][0]
        scaled[obj.logicalName] = row[names.index(obj.logicalName)] * 10 ** scaler
    assert scaled["1.0.12.7.0.255"] == pytest.approx(229.87) and scaled["1.0.11.7.0.255"] == pytest.approx(12.345)
    assert scaled["1.0.14.7.0.255"] == pytest.approx(50.02) and scaled["1.0.1.8.0.255"] == pytest.approx(98765)
    assert scaled["1.0.13.7.0.255"] == pytest.approx(0.996)


def test_gurux_reads_a_day_of_block_load_profile_by_range_in_blocks(tmp_path, monkeypatch):
    """IS 15959's block load profile (1.0.99.1.0.255) over rows the meter wrote (app/load_profile.py): gurux reads
    its capture objects, a day of 15-minute rows by range (local times; 96 rows, several blocks at a 128-byte PDU,
    each in HDLC segments), the last rows by entry, and scales them with the block load scaler profile."""
    import datetime
    import hashlib

    from gurux_dlms.objects import GXDLMSProfileGeneric

    from app import load_profile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "meter").mkdir()
    (tmp_path / "meter" / "dlms-reader.bin").write_bytes(  # app/dlms_secret.py: salted with the meter's id
        hashlib.sha256(b"meter-42\x00reader 7").digest())
    t0 = 1764527400  # 2025-12-01 00:00 at the meter's +330 minutes (18:30 UTC the day before)
    rows = [(t0 + 900 * k, 23000 + k % 50, 4000 + k, 1000 * k, 1100 * k, k % 3) for k in range(1, 2 * 96 + 1)]
    for row in rows:  # two local days, across three UTC day files
        load_profile.capture(row)
    meter = PortMeter()
    c = client(secret="reader 8")  # a wrong secret: refused
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    with pytest.raises(Exception, match="(?i)authentication"):
        c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    assert meter.port.ctx.reader_tries[0] == 1
    exchange(meter, c, [c.disconnectRequest()])
    c = client(secret="reader 7")  # the meter reader (the public client sees the profile listed, not its rows)
    c.maxReceivePDUSize = 128
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    assert meter.port.ctx.reader_tries[0] == 0
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    for attr in (3, 4, 7):
        c.updateValue(pg, attr, exchange(meter, c, c.read(pg, attr)).value)
    assert [(int(o.objectType), o.logicalName) for o, _ in pg.captureObjects] == [
        (8, "0.0.1.0.0.255"), (3, "1.0.12.27.0.255"), (3, "1.0.11.27.0.255"), (3, "1.0.1.29.0.255"),
        (3, "1.0.9.29.0.255"), (3, "1.0.2.29.0.255")]
    assert pg.capturePeriod == 900 and pg.entriesInUse == 192
    day2 = datetime.datetime(2025, 12, 2)
    c.updateValue(pg, 2, exchange(meter, c, c.readRowsByRange(pg, day2, day2 + datetime.timedelta(
        hours=23, minutes=45))).value)
    assert len(pg.buffer) == 96 and pg.buffer[0][0].value.replace(tzinfo=None) == day2
    assert [r[1:] for r in pg.buffer] == [list(r[1:]) for r in rows[95:191]]
    c.updateValue(pg, 2, exchange(meter, c, c.readRowsByEntry(pg, 191, 2)).value)
    assert [r[3] for r in pg.buffer] == [191 * 1000, 192 * 1000]  # entries 191 and 192: the last two
    scal = GXDLMSProfileGeneric("1.0.94.91.4.255")
    for attr in (3, 2):
        c.updateValue(scal, attr, exchange(meter, c, c.read(scal, attr)).value)
    assert [s[0] for s in scal.buffer[0]] == [-2, -3, -3, -3, -3]
    reg = GXDLMSRegister("1.0.1.29.0.255")
    for attr in (3, 2):
        c.updateValue(reg, attr, exchange(meter, c, c.read(reg, attr)).value)
    assert reg.value == pytest.approx(192.0) and int(reg.unit) == 30  # the newest row's import: 192 Wh


def test_gurux_reads_the_limiter_and_the_prepaid_data(tmp_path, monkeypatch):
    """The limiter (class 71, 0.0.17.0.0.255) and IS 15959's prepaid data (class 1, 0.0.94.96.19-25.255) through the
    meter's port (app/dlms_supply.py): gurux parses every limiter attribute into its GXDLMSLimiter; the public client
    reads the modes and is refused the money; the meter reader reads the balance, the last recharge and their times."""
    import datetime
    import hashlib

    from app import load_limit

    monkeypatch.chdir(tmp_path)
    (tmp_path / "meter").mkdir()
    (tmp_path / "meter" / "dlms-reader.bin").write_bytes(hashlib.sha256(b"meter-42\x00reader 7").digest())
    parts = fwtest.meter_parts()
    ctx, metering, supply = parts
    supply.limit = load_limit.LoadLimit(load_limit.parse({"threshold_w": 4500, "over_s": 30, "lockout_s": 240}))
    supply.prepaid = object()  # a tariff set: prepaid
    supply.store.ledger.credit(25000)
    supply.store.ledger.balance = -1234  # inside the allowance after the top-up was used
    supply.store.last = [1764527400, 26500]  # 2025-12-01 00:00 local (+330)
    metering.tick.rtc = 1764527400 + 3600
    meter = PortMeter(parts)
    c = client()
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    listed = c.parseObjects(exchange(meter, c, [c.getObjectsRequest()]).data, True)  # (gurux finds the monitored
    lim = listed.findByLN(ObjectType.LIMITER, "0.0.17.0.0.255")  # value among the objects it was told of)
    assert [int(lim.getAccess(i)) for i in (1, 2, 3, 11)] == [1, 1, 1, 1]  # read-only, the public client too
    assert int(listed.findByLN(ObjectType.DATA, "0.0.94.96.24.255").getAccess(2)) == 0  # the money: not for it
    for attr in range(2, 12):
        reply = exchange(meter, c, c.read(lim, attr))
        assert reply.error == 0, attr
        c.updateValue(lim, attr, reply.value)
    assert (lim.monitoredValue.objectType, lim.monitoredValue.logicalName, lim.monitoredAttributeIndex) == (
        ObjectType.REGISTER, "1.0.1.7.0.255", 2)
    assert (lim.thresholdActive, lim.thresholdNormal, lim.thresholdEmergency) == (4500, 4500, 4500)
    assert (lim.minOverThresholdDuration, lim.minUnderThresholdDuration) == (30, 240)
    assert lim.emergencyProfileActive is False and list(lim.emergencyProfileGroupIDs or []) == []
    assert (lim.actionOverThreshold.logicalName, lim.actionOverThreshold.scriptSelector) == ("0.0.10.0.106.255", 1)
    assert (lim.actionUnderThreshold.logicalName, lim.actionUnderThreshold.scriptSelector) == ("0.0.10.0.106.255", 2)

    def value(ln):
        d = GXDLMSData(ln)
        reply = exchange(meter, c, c.read(d, 2))
        if reply.error:
            return ("error", reply.error)
        c.updateValue(d, 2, reply.value)
        return d.value

    assert (value("0.0.94.96.19.255"), value("0.0.94.96.20.255")) == (0, 1)  # import only; prepaid
    assert value("0.0.94.96.24.255") == ("error", 3)  # the public client: read-write-denied
    exchange(meter, c, [c.disconnectRequest()])
    c = client(secret="reader 7")
    c.parseUAResponse(exchange(meter, c, [c.snrmRequest()]).data)
    c.parseAareResponse(exchange(meter, c, c.aarqRequest()).data)
    assert [value(f"0.0.94.96.{k}.255") for k in (21, 23, 24)] == [25000, 26500, -1234]
    local = datetime.datetime(2025, 12, 1, 0, 0)
    when = GXDLMSData("0.0.94.96.22.255")
    when.setUIDataType(2, 25)  # DataType.DATETIME: gurux reads the octet-string as a date-time
    c.updateValue(when, 2, exchange(meter, c, c.read(when, 2)).value)
    balance_time = GXDLMSData("0.0.94.96.25.255")
    balance_time.setUIDataType(2, 25)
    c.updateValue(balance_time, 2, exchange(meter, c, c.read(balance_time, 2)).value)
    assert when.value.value.replace(tzinfo=None) == local
    assert balance_time.value.value.replace(tzinfo=None) == local + datetime.timedelta(hours=1)
