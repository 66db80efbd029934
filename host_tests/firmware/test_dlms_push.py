"""firmware/app/network_link.py's alert push (alert()) on CPython and in the MicroPython VM (plain asserts; see conftest.py): IS 15959-2's alert
push, a DataNotification in a wrapper datagram from the meter's wPort 1 to the push client's wPort 64, its body the
alert push setup's objects (device id, the setup's name, the event's local time, the Event Status Word with the
event's bit), in the clear without the utility keys and general-glo-ciphered under them with the meter's own
invocation counter. host_tests/emulator/test_dlms_wrapper_e2e.py has gurux receive one from an emulated meter."""

import fwtest
from app import dlms_hls, network_link
from hls_client import Client

EK = bytes(range(16))
AK = bytes(range(16, 32))
AT = 1796646795  # 2026-12-07 12:33:15 UTC


def header(d):
    return tuple((d[i] << 8) | d[i + 1] for i in range(0, 8, 2))


def _plain_body(apdu, seq):
    assert apdu[:5] == b"\x0f\x00" + seq.to_bytes(3, "big") and apdu[5] == 0, apdu  # normal, unconfirmed; no time
    assert apdu[6:8] == b"\x02\x04"  # a structure of the setup's four values
    n = apdu[9]
    assert apdu[8] == 0x09 and bytes(apdu[10:10 + n]) == b"MKTmeter-42"  # the device id: FLAG and the meter id
    k = 10 + n
    assert apdu[k:k + 8] == b"\x09\x06\x00\x04\x19\x09\x00\xff"  # the alert push setup 0.4.25.9.0.255
    assert apdu[k + 8:k + 10] == b"\x09\x0c"
    stamp = bytes(apdu[k + 10:k + 22])  # local time at +05:30: 2026-12-07 18:03:15, a Monday
    assert stamp[:8] == bytes((0x07, 0xEA, 12, 7, 1, 18, 3, 15)), stamp
    assert apdu[k + 22:k + 25] == b"\x04\x81\x80" and len(apdu) == k + 25 + 16  # a bit-string of 128 bits
    return bytes(apdu[k + 25:])


def test_an_alert_in_the_clear_carries_the_event_s_bit():
    def body():
        d = network_link.alert("meter-42", 7, 251, AT, 330)
        assert header(d) == (1, 1, 64, len(d) - 8)
        esw = _plain_body(d[8:], 7)
        assert esw == bytes(10) + b"\x10" + bytes(5)  # bit 83, cover open: byte 10, mask 0x80 >> 3
        for code, bit in network_link.ESW_BITS.items():
            esw = _plain_body(network_link.alert("meter-42", 1, code, AT, 330)[8:], 1)
            assert [i for i in range(128) if esw[i >> 3] & (0x80 >> (i & 7))] == [bit], (code, bit)

    fwtest.in_workdir(body, "meter")


def test_with_the_keys_an_alert_goes_ciphered_under_the_meter_s_counter():
    def body():
        fwtest.write(dlms_hls.PATH, EK + AK + bytes(4))
        held = bytearray(24)
        title = dlms_hls.system_title("meter-42")
        cl = Client(EK, AK)
        counters = []
        for seq in (3, 4):
            d = network_link.alert("meter-42", seq, 101, AT, 330, held)
            assert header(d) == (1, 1, 64, len(d) - 8)
            assert len(d) == 87 + len("MKTmeter-42")  # (docs/SECURITY.md: a push's size)
            assert d[8:10] == b"\xdb\x08" and bytes(d[10:18]) == title  # general-glo-ciphering, the meter's title
            plain, ic = cl.opened(d[17:], title)  # (its length byte, then SC 0x30, the counter, ciphertext, tag)
            esw = _plain_body(plain, seq)
            assert esw[10] == 0x04  # bit 85, last gasp: the power failed
            counters.append(ic)
        assert counters[1] == counters[0] + 1 and dlms_hls.keys()[2] >= counters[1] + 1  # promised on flash first
        fwtest.write(dlms_hls.PATH, EK + AK + b"\xff\xff\xff\xff")  # the counters used up: nothing in the clear
        assert network_link.alert("meter-42", 5, 251, AT, 330, bytearray(24)) is None

    fwtest.in_workdir(body, "meter")
