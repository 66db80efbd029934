"""firmware/lib/smp_serial.py on CPython and in the MicroPython VM (plain asserts; see conftest.py)."""

import binascii

import fwtest
import smp_serial


def b64(raw):
    return binascii.b2a_base64(raw, newline=False)


def lines_of(packet):
    out = []
    start = 0
    while start < len(packet):
        end = packet.index(b"\n", start) + 1
        out.append(packet[start:end])
        start = end
    return out


def raw_packet(body, per=124):
    """Frame arbitrary raw bytes (normally len || frame || crc) as SMP lines, for malformed-packet tests."""
    text = b64(body)
    out = bytearray()
    for i in range(0, len(text), per):
        out += (b"\x06\x09" if i == 0 else b"\x04\x14") + text[i : i + per] + b"\n"
    return bytes(out)


def u16(n):
    return bytes([n >> 8, n & 0xFF])


def frame_of(n, seed=1):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return bytes(out)


def feed_all(dec, data, step=None):
    frames = []
    if step is None:
        r = dec.feed_bytes(data)
        if r:
            frames.extend(r)
        return frames
    for i in range(0, len(data), step):
        r = dec.feed_bytes(data[i : i + step])
        if r:
            frames.extend(r)
    return frames


def test_crc16_xmodem_vectors():
    assert smp_serial.crc16_xmodem(b"") == 0
    assert smp_serial.crc16_xmodem(b"123456789") == 0x31C3  # CRC-16/XMODEM check value
    assert smp_serial.crc16_xmodem(b"A") == 0x58E5
    assert smp_serial.crc16_xmodem(bytearray(b"123456789")) == 0x31C3
    assert smp_serial.crc16_xmodem(memoryview(b"xx123456789")[2:]) == 0x31C3
    d = frame_of(300)
    assert smp_serial.crc16_xmodem(d[100:], smp_serial.crc16_xmodem(d[:100])) == smp_serial.crc16_xmodem(d)


def test_encode_matches_smp_reference_examples():
    # the examples in the docstring of smp.packet.encode (the smpclient library)
    assert smp_serial.encode(b"Hello, world!") == b"\x06\tAA9IZWxsbywgd29ybGQhet4=\n"
    want = b"".join(
        [b"\x06\tAA9I\n", b"\x04\x14ZWxs\n", b"\x04\x14bywg\n", b"\x04\x14d29y\n", b"\x04\x14bGQh\n", b"\x04\x14et4=\n"]
    )
    assert smp_serial.encode(b"Hello, world!", line_max=8) == want


def test_encode_one_byte_frame():
    pkt = smp_serial.encode(b"A")
    crc = smp_serial.crc16_xmodem(b"A")
    assert pkt == b"\x06\x09" + b64(b"\x00\x03A" + u16(crc)) + b"\n"
    assert isinstance(pkt, bytes)
    assert smp_serial.Decoder(16).feed_bytes(pkt) == [b"A"]


def test_encode_200_byte_frame_lines():
    f = frame_of(200)
    pkt = smp_serial.encode(f)
    ls = lines_of(pkt)
    assert len(ls) == 3  # 204 raw bytes -> 272 base64 characters -> 124 + 124 + 24
    assert ls[0][:2] == b"\x06\x09"
    assert ls[1][:2] == b"\x04\x14" and ls[2][:2] == b"\x04\x14"
    assert [len(x) for x in ls] == [127, 127, 27]
    text = b"".join(x[2:-1] for x in ls)
    assert binascii.a2b_base64(text) == u16(202) + f + u16(smp_serial.crc16_xmodem(f))
    assert smp_serial.Decoder(256).feed_bytes(pkt) == [f]


def test_encode_2k_frame_and_line_limits():
    f = frame_of(2048, 7)
    for line_max in (7, 8, 10, 64, 123, 124, 127, 128, 1000):
        pkt = smp_serial.encode(f, line_max)
        ls = lines_of(pkt)
        per = ((line_max - 3) // 4) * 4
        for i, x in enumerate(ls):
            assert len(x) <= line_max
            assert x[:2] == (b"\x06\x09" if i == 0 else b"\x04\x14")
            assert x[-1:] == b"\n"
            assert (len(x) - 3) % 4 == 0
            if i < len(ls) - 1:
                assert len(x) - 3 == per
        assert b"\x03" not in pkt  # Ctrl-C never appears: the REPL interrupt can stay on
        dec = smp_serial.Decoder(2048)
        assert dec.feed_bytes(pkt) == [f]
    assert len(lines_of(smp_serial.encode(f))) == 23  # 2052 bytes -> 2736 characters / 124


def test_write_sends_the_packet_of_its_parts_line_by_line():
    class Lines:
        def __init__(self):
            self.writes = []

        def write(self, b):
            self.writes.append(bytes(b))

    for n in (0, 1, 90, 91, 92, 93, 94, 200, 2048):
        f = frame_of(n, n + 1)
        for cut in (0, 8, n // 2, n):
            out = Lines()
            smp_serial.write(out, (f[:cut], f[cut:]))
            assert b"".join(out.writes) == smp_serial.encode(f), (n, cut)
            assert out.writes == lines_of(smp_serial.encode(f))  # one write per line
    fwtest.raises(ValueError, smp_serial.write, Lines(), (bytes(0xFFF0), bytes(14)))


def test_on_frame_hands_each_frame_over_as_it_completes_without_a_copy():
    dec = smp_serial.Decoder(2048)
    got = []

    def take(f):
        assert isinstance(f, memoryview)  # a view of the decoder's buffer, valid during the call
        got.append(bytes(f))

    dec.on_frame = take
    frames = [frame_of(n, n) for n in (0, 5, 300, 2048)]
    assert feed_all(dec, b"noise".join(smp_serial.encode(f) for f in frames), step=97) == []
    assert got == frames and dec.frames == 4


def test_encode_errors():
    fwtest.raises(ValueError, smp_serial.encode, bytes(0xFFFE))
    fwtest.raises(ValueError, smp_serial.encode, b"x", 6)
    assert len(smp_serial.encode(bytes(0xFFFD), 127)) > 0


def test_decode_empty_frame():
    assert smp_serial.Decoder(8).feed_bytes(smp_serial.encode(b"")) == [b""]


def test_decode_byte_by_byte_and_chunked():
    f = frame_of(2048, 3)
    pkt = smp_serial.encode(f)
    dec = smp_serial.Decoder(2048)
    got = []
    for b in pkt:
        r = dec.feed(b)
        if r is not None:
            got.append(r)
    assert got == [f]
    for step in (1, 2, 3, 5, 64, 127, 128, 129, 1000):
        dec = smp_serial.Decoder(2048)
        assert feed_all(dec, pkt, step) == [f], step
        assert dec.frames == 1 and dec.format_errors == 0 and dec.crc_errors == 0 and dec.overflows == 0


def test_decode_accepts_bytearray_and_memoryview():
    pkt = smp_serial.encode(b"abc")
    assert smp_serial.Decoder(8).feed_bytes(bytearray(pkt)) == [b"abc"]
    assert smp_serial.Decoder(8).feed_bytes(memoryview(b"zz" + pkt)[2:]) == [b"abc"]


def test_decode_several_frames_in_one_feed():
    a, b, c = frame_of(1), frame_of(200, 2), frame_of(500, 3)
    dec = smp_serial.Decoder(512)
    assert dec.feed_bytes(smp_serial.encode(a) + smp_serial.encode(b) + smp_serial.encode(c)) == [a, b, c]
    assert dec.frames == 3
    assert dec.feed_bytes(b"") is None
    assert dec.feed_bytes(b"no frame here\n") is None


def test_decode_other_line_lengths():
    # smpclient cuts at 120 characters (123-byte lines); long lines from other tools are accepted too
    f = frame_of(900, 5)
    for per in (4, 120, 124, 128, 132, 256, 1300):
        dec = smp_serial.Decoder(1024)
        body = u16(len(f) + 2) + f + u16(smp_serial.crc16_xmodem(f))
        assert dec.feed_bytes(raw_packet(body, per)) == [f], per


def test_crc_corruption():
    f = frame_of(200)
    body = bytearray(u16(202) + f + u16(smp_serial.crc16_xmodem(f)))
    body[50] ^= 0x01
    dec = smp_serial.Decoder(256)
    assert dec.feed_bytes(raw_packet(bytes(body))) is None
    assert dec.crc_errors == 1 and dec.frames == 0
    body[50] ^= 0x01
    body[-1] ^= 0x80  # the CRC itself
    assert dec.feed_bytes(raw_packet(bytes(body))) is None
    assert dec.crc_errors == 2
    assert dec.feed_bytes(smp_serial.encode(f)) == [f]  # and the decoder carries on


def test_resync_after_garbage():
    f = frame_of(300, 9)
    pkt = smp_serial.encode(f)
    garbage = bytes(range(256)) + b"\x06\x09AAAA\x06" + b"\x04" + b"\x06\x06\x09AB\n\x04\x14!!\n" + pkt[:150]
    dec = smp_serial.Decoder(512)
    assert feed_all(dec, garbage + pkt + b"\xff\x00" + pkt) == [f, f]
    assert dec.format_errors >= 3
    dec2 = smp_serial.Decoder(512)
    assert feed_all(dec2, garbage + pkt, 7) == [f]


def test_marker_inside_a_line_restarts():
    f = frame_of(100, 4)
    pkt = smp_serial.encode(f)
    dec = smp_serial.Decoder(128)
    # a packet cut short in the middle of its first line, immediately followed by a new packet
    assert dec.feed_bytes(pkt[:40] + pkt) == [f]
    assert dec.format_errors == 1


def test_unfinished_packet_abandoned_by_new_start():
    f = frame_of(400, 4)
    pkt = smp_serial.encode(f)
    first_line = lines_of(pkt)[0]
    dec = smp_serial.Decoder(512)
    assert dec.feed_bytes(first_line) is None
    assert dec.feed_bytes(pkt) == [f]
    assert dec.format_errors == 1


def test_oversize_declared_length_rejected_on_first_line():
    f = frame_of(101)
    pkt = smp_serial.encode(f)
    ls = lines_of(pkt)
    assert len(ls) == 2
    dec = smp_serial.Decoder(100)
    assert dec.feed_bytes(ls[0]) is None
    assert dec.overflows == 1  # rejected from the length field alone, before the rest arrives
    assert dec.feed_bytes(ls[1]) is None
    assert dec.format_errors == 1  # the orphan continuation line
    ok = frame_of(100)
    assert dec.feed_bytes(smp_serial.encode(ok)) == [ok]
    huge = raw_packet(u16(0xFFFF) + bytes(30))
    assert dec.feed_bytes(huge) is None
    assert dec.overflows == 2


def test_interleaved_text():
    f = frame_of(600, 8)
    ls = lines_of(smp_serial.encode(f))
    noise = [b">>> ", b"print('hi')\r\n", b"hi\r\n", b"\x1b[0m", b"MicroPython v1.29 on 2026-11-01\r\n", b"partial"]
    stream = bytearray(b"boot log line\r\n")
    for i, x in enumerate(ls):
        stream += x + noise[i % len(noise)]
    stream += b"\r\n>>> "
    dec = smp_serial.Decoder(1024)
    assert feed_all(dec, bytes(stream)) == [f]
    assert dec.format_errors == 0
    dec = smp_serial.Decoder(1024)
    # a start marker right after text with no newline is still found
    assert dec.feed_bytes(b"typed text no newline" + smp_serial.encode(f)) == [f]


def test_orphan_continuation_line():
    dec = smp_serial.Decoder(64)
    assert dec.feed_bytes(b"\x04\x14QUJD\n") is None
    assert dec.format_errors == 1
    assert dec.feed_bytes(smp_serial.encode(b"x")) == [b"x"]


def test_format_errors():
    good = u16(5) + b"abc" + u16(smp_serial.crc16_xmodem(b"abc"))
    assert smp_serial.Decoder(64).feed_bytes(raw_packet(good)) == [b"abc"]
    text = b64(good)
    bad_lines = [
        b"\x06\x09\n",  # no length
        b"\x06\x09AA==\n",  # one byte: no length
        b"\x06\x09" + text[:-1] + b"\n",  # not a multiple of 4
        b"\x06\x09" + text[:4] + b"!" + text[5:] + b"\n",  # outside the alphabet
        b"\x06\x09" + text[:4] + b"\x80" + text[5:] + b"\n",
        b"\x06\x09" + text[:4] + b"\x03" + text[5:] + b"\n",
        b"\x06\x09" + text + b"\r\n",  # CR is not base64
        b"\x06\x09" + text[:4] + b" " + text[4:] + b"\n",
        b"\x06\x09AAI=AAAA\n",  # padding in the middle
        b"\x06\x09AAQ=\n\x04\x14AAAA\n",  # padding, then more data on a continuation line
        b"\x06\x09QR==\n",  # non-canonical padding bits
        b"\x06\x09" + b64(u16(0) + b"\x00\x00") + b"\n",  # declared length below 2
        b"\x06\x09" + b64(u16(3) + b"abcdef") + b"\n",  # more data than declared
        b"\x06\x09" + b64(good + b"\x00\x00\x00") + b"\n",
    ]
    for line in bad_lines:
        dec = smp_serial.Decoder(64)
        assert dec.feed_bytes(line) is None, line
        dec.feed_bytes(b"\x06\x09")  # flush anything still waiting for continuation lines
        assert dec.format_errors >= 1, line
        assert dec.crc_errors == 0 and dec.frames == 0, line
        assert feed_all(dec, smp_serial.encode(b"ok")) == [b"ok"], line


def test_padding_split_across_line_buffer_chunks():
    # a 128-character run with '=' at its end must be the final chunk of the packet
    f = frame_of(91)  # 95 raw bytes -> 128 characters with one '='
    pkt = raw_packet(u16(93) + f + u16(smp_serial.crc16_xmodem(f)), 128)
    assert pkt.count(b"=") == 1
    assert smp_serial.Decoder(128).feed_bytes(pkt) == [f]
    assert smp_serial.Decoder(128).feed_bytes(pkt[:-1] + b"AAAA\n") is None


def test_reset_and_counters():
    dec = smp_serial.Decoder(64)
    assert dec.frames == 0 and dec.format_errors == 0 and dec.overflows == 0 and dec.crc_errors == 0
    pkt = smp_serial.encode(frame_of(60))
    dec.feed_bytes(pkt[:30])
    dec.reset()
    assert dec.feed_bytes(pkt[30:]) is None
    assert dec.feed_bytes(pkt) == [frame_of(60)]
    fwtest.raises(ValueError, smp_serial.Decoder, -1)
    fwtest.raises(ValueError, smp_serial.Decoder, 0x10000)


def test_corruption_never_yields_a_wrong_frame():
    f = frame_of(300, 11)
    pkt = smp_serial.encode(f)
    seed = 99
    for _ in range(400):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        b = bytearray(pkt)
        pos = seed % len(b)
        b[pos] = (b[pos] + 1 + ((seed >> 12) % 255)) & 0xFF
        dec = smp_serial.Decoder(512)
        got = feed_all(dec, bytes(b))
        assert got == [] or got == [f]
        assert feed_all(dec, pkt) == [f]
