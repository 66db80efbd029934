"""Property tests (CPython only) for firmware/lib/smp_serial.py, cross-checked against the `smp` library's serial
packet encoder/decoder (smp.packet, used by smpclient/smpmgr) and CPython's binascii.crc_hqx."""

from __future__ import annotations

import binascii

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smp import packet as smp_packet

import smp_serial

frames = st.binary(max_size=2100)
# anything a terminal might carry between packets, minus the two marker lead bytes
text = st.binary(max_size=40).map(lambda b: b.replace(b"\x06", b"").replace(b"\x04", b""))


def smp_decode(lines: list[bytes]) -> bytes:
    dec = smp_packet.decode()
    next(dec)
    for line in lines:
        try:
            dec.send(line)
        except StopIteration as e:
            return e.value
    raise AssertionError("smp.packet.decode wanted more lines")


def split_lines(pkt: bytes) -> list[bytes]:
    return [x + b"\n" for x in pkt.split(b"\n")[:-1]]


def feed(dec: smp_serial.Decoder, data: bytes, cuts: list[int]) -> list[bytes]:
    out: list[bytes] = []
    prev = 0
    for c in sorted(set(cuts)) + [len(data)]:
        r = dec.feed_bytes(data[prev:c])
        if r:
            out.extend(r)
        prev = c
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 0xFFFF))
def test_crc_matches_crc_hqx(data, init):
    assert smp_serial.crc16_xmodem(data) == binascii.crc_hqx(data, 0)
    assert smp_serial.crc16_xmodem(data, init) == binascii.crc_hqx(data, init)


@settings(max_examples=200, deadline=None)
@given(frames, st.integers(8, 300))
def test_encode_equals_smp_library(frame, line_length):
    # smp.packet puts ((line_length - 4) // 4) * 4 characters on a line; ours ((line_max - 3) // 4) * 4
    ours = smp_serial.encode(frame, line_length - 1)
    assert ours == b"".join(smp_packet.encode(frame, line_length=line_length))
    assert smp_decode(split_lines(ours)) == frame


@settings(max_examples=200, deadline=None)
@given(frames, st.integers(8, 400), st.lists(st.integers(0, 4000), max_size=8))
def test_decoder_reads_smp_library_output(frame, line_length, cuts):
    data = b"".join(smp_packet.encode(frame, line_length=line_length))
    dec = smp_serial.Decoder(2100)
    assert feed(dec, data, cuts) == [frame]
    assert (dec.frames, dec.format_errors, dec.crc_errors, dec.overflows) == (1, 0, 0, 0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(frames, st.lists(text, min_size=1, max_size=30)), min_size=1, max_size=3),
       st.lists(st.integers(0, 10000), max_size=10))
def test_text_between_lines_and_packets_is_ignored(items, cuts):
    stream = bytearray()
    for frame, noise in items:
        lines = split_lines(smp_serial.encode(frame))
        for i, line in enumerate(lines):
            stream += noise[i % len(noise)] + line
    dec = smp_serial.Decoder(2100)
    assert feed(dec, bytes(stream), cuts) == [f for f, _ in items]
    assert dec.format_errors == 0


@st.composite
def one_corruption(draw):
    frame = draw(st.binary(min_size=0, max_size=700))
    pkt = bytearray(smp_serial.encode(frame, draw(st.sampled_from([127, 64, 20]))))
    i = draw(st.integers(0, len(pkt) - 1))
    op = draw(st.sampled_from(["set", "flip", "insert", "delete"]))
    if op == "set":
        v = draw(st.integers(0, 255).filter(lambda v: v != pkt[i]))
        pkt[i] = v
    elif op == "flip":
        pkt[i] ^= 1 << draw(st.integers(0, 7))
    elif op == "insert":
        pkt.insert(i, draw(st.integers(0, 255)))
    else:
        del pkt[i]
    return frame, bytes(pkt)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_corruption(), st.lists(st.integers(0, 2000), max_size=5))
def test_single_corruption_never_yields_a_wrong_frame(case, cuts):
    # one changed, inserted or deleted byte never yields an altered frame (canonical base64 + length + CRC-16, which
    # detects every burst of up to 16 bits): the packet is dropped, or delivered intact when the byte landed between
    # lines (noise); either way the next packet gets through
    frame, bad = case
    dec = smp_serial.Decoder(1024)
    got = feed(dec, bad, cuts)
    assert got in ([], [frame])
    good = smp_serial.encode(b"next")
    assert feed(dec, good, []) == [b"next"]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4), st.binary(max_size=400),
       st.lists(st.integers(0, 3000), max_size=6))
def test_random_noise_then_packet(frames_list, noise, cuts):
    # arbitrary bytes (markers included) ahead of packets, closed by a newline: no exception, nothing spurious,
    # every packet after it survives
    dec = smp_serial.Decoder(512)
    stream = noise + b"\n" + b"".join(smp_serial.encode(f) for f in frames_list)
    got = feed(dec, stream, cuts)
    assert got == frames_list


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 64))
def test_arbitrary_input_never_raises(data, maxf):
    dec = smp_serial.Decoder(maxf)
    for i in range(0, len(data), 97):
        r = dec.feed_bytes(data[i : i + 97])
        assert r is None or all(isinstance(f, bytes) and len(f) <= maxf for f in r)
