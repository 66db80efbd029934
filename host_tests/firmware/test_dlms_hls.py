"""IS 15959's utility-settings association (client SAP 48): app/cosem.py with app/dlms_hls.py's security (HLS with
GMAC, every APDU authenticated and encrypted, suite 0), on CPython and in the MicroPython VM (plain asserts; see
conftest.py), its client host_tests/firmware/hls_client.py; and on CPython from the gurux-dlms client itself."""

import sys

import fwtest
from app import cosem, dlms_hls, events
from hls_client import CTOS, DISCONNECT, INITIATE, Client, aare_fields

EK = bytes(range(16))
AK = bytes(range(16, 32))
VOLTAGE = cosem.obis("1.0.12.7.0.255")
LIMITER = cosem.obis("0.0.17.0.0.255")
GET_VOLTAGE = bytes.fromhex("c001c1000301000c0700ff0200")
TITLE = dlms_hls.system_title("m-1")


class Log:
    def __init__(self):
        self.ring = []

    def add(self, code, detail):
        self.ring.append((code, detail))


def model(cls, obis, attr, access=None, client=cosem.PUBLIC_CLIENT):
    if cls == 3 and obis == VOLTAGE and attr == 2:
        return cosem.number(cosem.LONG_UNSIGNED, 23012)
    if cls == 71 and obis == LIMITER:
        return cosem.octets(obis) if attr == 1 else cosem.number(cosem.DOUBLE_LONG, 3000)
    return cosem.OBJECT_UNDEFINED if obis != LIMITER else 9


def meter(log=None, acts=None, held=None, puts=None):
    """An association whose meter ("m-1") has the keys EK, AK, recording its ACTIONs in `acts` and SETs in `puts`
    (a SET answers 12, type unmatched, for a value that is no double-long); `held`: the counters promised and not
    used, kept across associations (as the port keeps them; None: a fresh start each time)."""
    def act(cls, obis, method, data, client):
        acts.append((cls, obis, method, data, client))
        return 0

    def put(cls, obis, attr, data, client):
        puts.append((cls, obis, attr, data, client))
        return 0 if data[:1] == b"\x05" else 12

    return cosem.Association(model, hls=lambda title, ctos: dlms_hls.session("m-1", title, ctos, log, held),
                             act=None if acts is None else act, put=None if puts is None else put)


def _keys(end=0):
    fwtest.write(dlms_hls.PATH, EK + AK + end.to_bytes(4, "big"))


def _end():
    """The end of the counters promised, on flash."""
    return dlms_hls.keys()[2]


def associated(a, cl):
    """HLS passes 1-4 between `a` and client `cl`: the meter's server counter after them."""
    aare = a.apdu(cl.aarq(), cosem.UTILITY_CLIENT)
    f = aare_fields(aare)
    assert f[0xA2] == b"\x02\x01\x00" and f[0xA3] == b"\xa1\x03\x02\x01\x0e", aare  # accepted, authentication required
    assert a.pending and not a.associated
    r, _ = cl.opened(a.apdu(cl.pass3(f[0xAA][2:]), cosem.UTILITY_CLIENT), TITLE)
    assert r[:7] == b"\xc7\x01\xc1\x00\x01\x00\x09" and a.associated and not a.pending, r
    proof = r[8:]
    assert cl.gcm.verify(TITLE + proof[1:5], b"\x10" + AK + CTOS, proof[5:]) and proof[0] == 0x10
    return int.from_bytes(proof[1:5], "big")


def test_the_utility_association_authenticates_both_ways_then_reads_and_acts_ciphered():
    def body():
        _keys()
        acts = []
        a = meter(Log(), acts)
        cl = Client(EK, AK)
        aare = a.apdu(cl.aarq(), cosem.UTILITY_CLIENT)
        f = aare_fields(aare)
        assert f[0xA1] == b"\x06\x07\x60\x85\x74\x05\x08\x01\x03"  # logical names with ciphering
        assert f[0xA4] == b"\x04\x08" + TITLE and f[0x89] == b"\x60\x85\x74\x05\x08\x02\x05"
        stoc = f[0xAA][2:]
        assert f[0xAA][:2] == b"\x80\x10" and len(stoc) == 16
        initiate, ic0 = cl.opened(f[0xBE][2:], TITLE)  # the InitiateResponse, ciphered: GET, blocks, selective, ACTION
        assert initiate == b"\x08\x00\x06\x5f\x1f\x04\x00\x00\x10\x1d\x02\x00\x00\x07", initiate  # and SET
        assert a.conformance == cosem.CONFORMANCE_UTILITY
        # before the client proves it holds the keys: nothing but its proof
        assert a.apdu(cl.request(GET_VOLTAGE), cosem.UTILITY_CLIENT) == b"\xd8\x01\x01"
        r, ic1 = cl.opened(a.apdu(cl.pass3(stoc), cosem.UTILITY_CLIENT), TITLE)
        assert r[:7] == b"\xc7\x01\xc1\x00\x01\x00\x09" and a.associated, r
        proof = r[8:]
        assert cl.gcm.verify(TITLE + proof[1:5], b"\x10" + AK + CTOS, proof[5:])  # the meter's f(CtoS)
        get = cl.request(GET_VOLTAGE)
        r, ic2 = cl.opened(a.apdu(get, cosem.UTILITY_CLIENT), TITLE)
        assert r == b"\xc4\x01\xc1\x00\x12\x59\xe4"
        action = cl.request(b"\xc3\x01\xc2\x00\x46" + DISCONNECT + b"\x01\x01\x0f\x00")  # remote_disconnect(0)
        r, ic3 = cl.opened(a.apdu(action, cosem.UTILITY_CLIENT), TITLE)
        assert r == b"\xc7\x01\xc2\x00\x00" and acts == [(70, DISCONNECT, 1, b"\x0f\x00", cosem.UTILITY_CLIENT)]
        assert ic0 < ic1 < ic2 < ic3 and int.from_bytes(proof[1:5], "big") not in (ic0, ic1, ic2, ic3)  # each its own
        # a request again (replayed), one out of turn, one in the clear or under another key: refused, in the clear
        assert a.apdu(action, cosem.UTILITY_CLIENT) == b"\xd8\x01\x05" and len(acts) == 1
        old = Client(EK, AK, ic=2)
        assert a.apdu(old.request(GET_VOLTAGE), cosem.UTILITY_CLIENT) == b"\xd8\x01\x05"
        assert a.apdu(GET_VOLTAGE, cosem.UTILITY_CLIENT) == b"\xd8\x01\x01"
        assert a.apdu(Client(AK, EK, ic=99).request(GET_VOLTAGE), cosem.UTILITY_CLIENT) == b"\xd8\x01\x05"
        bad = bytearray(cl.request(GET_VOLTAGE))
        bad[9] ^= 1
        assert a.apdu(bytes(bad), cosem.UTILITY_CLIENT) == b"\xd8\x01\x05"
        r, _ = cl.opened(a.apdu(cl.request(GET_VOLTAGE), cosem.UTILITY_CLIENT), TITLE)  # and it goes on
        assert r == b"\xc4\x01\xc1\x00\x12\x59\xe4"
        assert a.apdu(b"\x62\x00", cosem.UTILITY_CLIENT)[0] == 0x63 and a.sec is None and not a.associated

    fwtest.in_workdir(body, "meter")


def test_a_client_without_the_keys_is_refused_and_said():
    def body():
        log = Log()
        a = meter(log, [])
        assert aare_fields(a.apdu(Client(EK, AK).aarq(), cosem.UTILITY_CLIENT))[0xA2] == b"\x02\x01\x01"  # no keys
        assert log.ring == [] and not (a.associated or a.pending)
        _keys()
        aare = a.apdu(Client(EK, bytes(16)).aarq(), cosem.UTILITY_CLIENT)  # another AK: its AARQ not deciphered
        assert aare_fields(aare)[0xA2] == b"\x02\x01\x01" and not (a.associated or a.pending)
        assert log.ring == [(events.UTILITY_REFUSED, "from 4142434445464748: AARQ not deciphered")]
        cl = Client(EK, AK)
        f = aare_fields(a.apdu(cl.aarq(), cosem.UTILITY_CLIENT))
        assert a.pending
        r, _ = cl.opened(a.apdu(cl.pass3(bytes(16)), cosem.UTILITY_CLIENT), TITLE)  # f of another challenge
        assert r == b"\xc7\x01\xc1\xfa\x00" and not (a.associated or a.pending) and a.sec is None
        assert log.ring[-1] == (events.UTILITY_REFUSED, "from 4142434445464748: f(StoC) refused")
        assert a.apdu(cl.request(GET_VOLTAGE), cosem.UTILITY_CLIENT) == b"\xd8\x01\x01"  # no association
        # pass 3's request must be the proof: another ACTION in its place ends the attempt too
        f = aare_fields(a.apdu(cl.aarq(), cosem.UTILITY_CLIENT))
        r, _ = cl.opened(a.apdu(cl.request(b"\xc3\x01\xc2\x00\x46" + DISCONNECT + b"\x01\x01\x0f\x00"),
                                cosem.UTILITY_CLIENT), TITLE)
        assert r == b"\xc7\x01\xc2\xfa\x00" and not a.pending and f[0xAA]

    fwtest.in_workdir(body, "meter")


def test_utility_aarqs_of_another_form_are_rejected_by_name():
    def body():
        _keys()
        a = meter(Log(), [])

        def diag(aarq, client=cosem.UTILITY_CLIENT):
            f = aare_fields(a.apdu(aarq, client))
            assert not (a.associated or a.pending)
            return f[0xA2][2], f[0xA3][4]

        cl = Client(EK, AK)
        assert diag(cl.aarq(context=1)) == (1, 2)  # no ciphering: not this association's context
        assert diag(cl.aarq(mechanism=1)) == (1, 11)  # low-level security: not this association's
        assert diag(cl.aarq(auth=False)) == (1, 14)  # no authentication asked
        assert diag(cl.aarq(ctos=b"")) == (1, 14)  # no challenge
        assert diag(cl.aarq(ctos=b"1234567")) == (1, 14)  # a challenge under 8 bytes
        assert diag(cl.aarq(title=b"")) == (1, 3)  # no calling-AP-title
        assert diag(cl.aarq(title=b"ABCDEFG")) == (1, 3)  # a system title is 8 bytes
        assert diag(cl.aarq(initiate=INITIATE[:4] + b"\x05" + INITIATE[5:])) == (1, 1)  # DLMS version 5
        assert diag(cl.aarq(), cosem.PUBLIC_CLIENT) == (1, 2)  # the public client has no ciphering
        assert diag(cl.aarq(), cosem.READER_CLIENT) == (1, 2)

    fwtest.in_workdir(body, "meter")


def test_the_meters_invocation_counter_never_repeats_whatever_the_restarts():
    def body():
        _keys()
        cl = Client(EK, AK)
        last = associated(meter(), cl)
        assert _end() == 64  # the block's end, on flash before its use
        # a restart (no counters held): the next association starts at the end of the block promised, never below
        held = bytearray(24)
        a = meter(held=held)
        first = associated(a, Client(EK, AK))
        assert first > last and first >= 64 and _end() == 128
        # the port keeps a block across associations: the next association takes no flash write
        b = meter(held=held)
        assert associated(b, Client(EK, AK)) > first and _end() == 128
        # a block used up: the next one is promised first
        for _ in range(70):
            r, ic = Client(EK, AK).opened(b.apdu(cl.request(GET_VOLTAGE), cosem.UTILITY_CLIENT), TITLE)
        assert 128 <= ic < _end() == 64 * 3
        # AARQs that do not decipher (any bytes at the probe, no keys needed) cost no counter and no flash write
        for _ in range(5):
            meter().apdu(Client(EK, bytes(16)).aarq(), cosem.UTILITY_CLIENT)
        assert _end() == 64 * 3
        # the counters' end: no association; the same keys set again keep it, new keys start at 0 (test_supply.py)
        _keys(0xFFFFFFFF - 10)
        f = aare_fields(meter().apdu(Client(EK, AK).aarq(), cosem.UTILITY_CLIENT))
        assert f[0xA2] == b"\x02\x01\x01" and _end() == 0xFFFFFFFF - 10

    fwtest.in_workdir(body, "meter")


def test_a_message_whose_answer_cannot_be_ciphered_is_not_served():
    def body():
        _keys()
        acts = []
        held = bytearray(24)
        a = meter(Log(), acts, held)
        cl = Client(EK, AK)
        associated(a, cl)
        held[16:20] = held[20:24]  # the block used up, and no next one: the flash full, or the counters' end
        _keys(0xFFFFFFFF - 1)
        action = cl.request(b"\xc3\x01\xc2\x00\x46" + DISCONNECT + b"\x01\x01\x0f\x00")
        assert a.apdu(action, cosem.UTILITY_CLIENT) == b"\xd8\x01\x01"  # refused, in the clear
        assert acts == [] and not a.associated and a.sec is None  # nothing done; the association over

    fwtest.in_workdir(body, "meter")


def test_ciphered_answers_fit_the_clients_pdu_and_a_reflected_title_is_refused():
    def body():
        _keys()
        long_value = cosem.octets(bytes(100))

        def big(cls, obis, attr, access=None, client=cosem.PUBLIC_CLIENT):
            return [long_value, long_value, long_value] if obis == VOLTAGE else cosem.OBJECT_UNDEFINED

        a = cosem.Association(big, hls=lambda title, ctos: dlms_hls.session("m-1", title, ctos))
        cl = Client(EK, AK)
        small = INITIATE[:-2] + b"\x00\x50"  # the client takes PDUs of 80 bytes
        f = aare_fields(a.apdu(cl.aarq(initiate=small), cosem.UTILITY_CLIENT))
        cl.opened(a.apdu(cl.pass3(f[0xAA][2:]), cosem.UTILITY_CLIENT), TITLE)
        r = a.apdu(cl.request(GET_VOLTAGE), cosem.UTILITY_CLIENT)
        data = b""
        while True:
            assert len(r) <= 80, len(r)  # the ciphered answer, not only the plain one inside it
            plain, _ = cl.opened(r, TITLE)
            assert plain[:3] == b"\xc4\x02\xc1", plain
            n, i = plain[9], 10
            if n & 0x80:
                n, i = plain[10], 11
            data += plain[i:i + n]
            if plain[3]:
                break
            r = a.apdu(cl.request(b"\xc0\x02\xc1" + plain[4:8]), cosem.UTILITY_CLIENT)
        assert data == long_value * 3
        # a client that names the meter's own system title (a reflection of its messages): no association
        f = aare_fields(a.apdu(Client(EK, AK, title=TITLE).aarq(), cosem.UTILITY_CLIENT))
        assert f[0xA2] == b"\x02\x01\x01" and not (a.associated or a.pending)

    fwtest.in_workdir(body, "meter")


def test_the_utility_association_sets_normal_and_is_refused_anything_else():
    def body():
        _keys()
        puts = []
        a = meter(Log(), [], puts=puts)
        cl = Client(EK, AK)
        associated(a, cl)

        def set_(apdu):
            r = a.apdu(cl.request(apdu), cosem.UTILITY_CLIENT)
            return cl.opened(r, TITLE)[0] if r[0] != 0xD8 else r

        head = b"\xc1\x01\xc3\x00\x47" + LIMITER + b"\x03"  # SET.request normal, class 71, attribute 3
        assert set_(head + b"\x00\x05\x00\x00\x10\x68") == b"\xc5\x01\xc3\x00"  # 4200 W: success
        assert puts == [(71, LIMITER, 3, b"\x05\x00\x00\x10\x68", cosem.UTILITY_CLIENT)]
        assert set_(head + b"\x00\x12\x10\x68") == b"\xc5\x01\xc3\x0c"  # the model's own answer: type unmatched
        assert set_(head + b"\x01\x01\x02\x00\x05\x00\x00\x10\x68") == b"\xc5\x01\xc3\x03" and len(puts) == 2
        # (selective access: read-write denied, never the model's)
        assert set_(b"\xc1\x01\xc3\x00\x47" + cosem.obis("0.0.17.0.1.255") + b"\x03\x00\x05\x00\x00\x00\x01") == \
            b"\xc5\x01\xc3\x04" and len(puts) == 2  # an object the meter does not have
        assert set_(b"\xc1\x01\xc3\x00\x01" + LIMITER + b"\x02\x00\x05\x00\x00\x00\x01") == b"\xc5\x01\xc3\x09"
        assert set_(b"\xc1\x02\xc3\x00\x47" + LIMITER + b"\x03\x00\x01\x00\x00\x00\x01\x05\x05\x00\x00\x00\x01") \
            == b"\xd8\x02\x02" and len(puts) == 2  # SET with a first data block: not supported
        r, _ = cl.opened(a.apdu(cl.request(GET_VOLTAGE), cosem.UTILITY_CLIENT), TITLE)  # and it goes on
        assert r == b"\xc4\x01\xc1\x00\x12\x59\xe4"

    fwtest.in_workdir(body, "meter")


def test_the_public_client_and_the_meter_reader_can_neither_act_nor_set():
    calls = []
    a = cosem.Association(model, lls=lambda s: s == fwtest.READER_SECRET, act=lambda *args: calls.append(args) or 0,
                          put=lambda *args: calls.append(args) or 0)
    action = b"\xc3\x01\xc1\x00\x46" + DISCONNECT + b"\x01\x01\x0f\x00"
    put = b"\xc1\x01\xc1\x00\x47" + LIMITER + b"\x03\x00\x05\x00\x00\x10\x68"
    for aarq, client in ((fwtest.AARQ_PUBLIC, cosem.PUBLIC_CLIENT), (fwtest.AARQ_READER, cosem.READER_CLIENT)):
        a.apdu(aarq, client)
        assert a.associated and not a.conformance & (cosem.CONF_ACTION | cosem.CONF_SET)
        for request in (action, put):
            assert a.apdu(request, client) == b"\xd8\x02\x02" and calls == []  # service not supported


def test_gurux_associates_reads_and_operates_the_relay_as_the_utility():
    # CPython only (the gurux-dlms client): the real client's AARQ, HLS passes, ciphered GET and ACTION, as a head-end
    # sends them over the wrapper (the wrapper's 8-byte header taken off and put back here)
    if sys.implementation.name == "micropython":
        return
    from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
    from gurux_dlms.enums import Authentication, DataType, InterfaceType, Security
    from gurux_dlms.GXCiphering import GXCiphering
    from gurux_dlms.objects import GXDLMSDisconnectControl, GXDLMSLimiter, GXDLMSRegister

    def body():
        _keys()
        acts, puts, log = [], [], Log()
        a = meter(log, acts, puts=puts)

        def client(ek, ak):
            c = GXDLMSClient(True, cosem.UTILITY_CLIENT, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
            c.settings.cipher = GXCiphering(b"GURUX001")
            c.settings.cipher.security = Security.AUTHENTICATION_ENCRYPTION
            c.settings.cipher.blockCipherKey = bytearray(ek)
            c.settings.cipher.authenticationKey = bytearray(ak)
            return c

        def exchange(c, frames):
            reply = GXReplyData()
            for fr in frames:
                r = a.apdu(bytes(fr)[8:], cosem.UTILITY_CLIENT)
                c.getData(GXByteBuffer(bytes((0, 1, 0, 1, 0, cosem.UTILITY_CLIENT)) + len(r).to_bytes(2, "big") + r),
                          reply)
            return reply

        c = client(EK, AK)
        c.parseAareResponse(exchange(c, c.aarqRequest()).data)
        assert c.getIsAuthenticationRequired() and a.pending
        c.parseApplicationAssociationResponse(exchange(c, c.getApplicationAssociationRequest()).data)  # checks f(CtoS)
        assert a.associated
        reg = GXDLMSRegister("1.0.12.7.0.255")
        c.updateValue(reg, 2, exchange(c, c.read(reg, 2)).value)
        assert reg.value == 23012
        reply = exchange(c, c.method(GXDLMSDisconnectControl("0.0.96.3.10.255"), 1, 0, DataType.INT8))
        assert reply.error == 0 and acts == [(70, DISCONNECT, 1, b"\x0f\x00", cosem.UTILITY_CLIENT)]
        lim = GXDLMSLimiter("0.0.17.0.0.255")  # gurux's SET of the limiter's threshold, as it encodes one read first
        c.updateValue(lim, 3, exchange(c, c.read(lim, 3)).value)
        lim.thresholdActive = 4200
        assert exchange(c, c.write(lim, 3)).error == 0
        assert puts == [(71, LIMITER, 3, b"\x05" + (4200).to_bytes(4, "big"), cosem.UTILITY_CLIENT)]
        exchange(c, c.releaseRequest())
        assert not a.associated
        wrong = client(EK, bytes(16))
        try:
            wrong.parseAareResponse(exchange(wrong, wrong.aarqRequest()).data)
            raise AssertionError("an association under another key")
        except Exception as e:  # noqa: BLE001 - gurux raises its own types for a rejected association
            assert "rejected" in str(e), e
        assert log.ring[-1][0] == events.UTILITY_REFUSED

    fwtest.in_workdir(body, "meter")


def test_a_utility_aarq_with_no_heap_for_its_security_is_rejected_transient():
    def short_of_heap(title, ctos):
        raise MemoryError("memory allocation failed, allocating 2560 bytes")

    def body():
        _keys()
        a = cosem.Association(model, hls=short_of_heap)
        f = aare_fields(a.apdu(Client(EK, AK).aarq(), cosem.UTILITY_CLIENT))
        assert f[0xA2] == b"\x02\x01\x02" and f[0xA3] == b"\xa1\x03\x02\x01\x01"  # rejected-transient, no reason
        assert not a.pending and not a.associated and a.sec is None
        a = cosem.Association(model, hls=lambda title, ctos: None)  # no keys: rejected for good
        assert aare_fields(a.apdu(Client(EK, AK).aarq(), cosem.UTILITY_CLIENT))[0xA2] == b"\x02\x01\x01"

    fwtest.in_workdir(body, "meter")
