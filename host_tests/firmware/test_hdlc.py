"""firmware/app/hdlc.py on CPython and in the MicroPython VM (plain asserts; see conftest.py). The frames a real
DLMS client sends (gurux-dlms 1.0.203's SNRM, AARQ, RR and DISC for client SAP 16 and server 1, captured as hex)
are fixed here; host_tests/interop/test_dlms_hdlc.py drives the same layer from the gurux client itself."""

from app import hdlc

# gurux-dlms GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.HDLC)
GURUX_SNRM = bytes.fromhex("7ea0070321930f017e")
GURUX_AARQ = bytes.fromhex("7ea02b032110fbafe6e600601da109060760857405080101be10040e01000000065f1f0400401e5dffff91237e")
GURUX_DISC = bytes.fromhex("7ea00703215303c77e")


class Catch:
    def __init__(self, d):
        self.frames = []
        d.on_frame = self.on

    def on(self, f):
        self.frames.append((f.dst, f.dst_size, f.src, f.control, bytes(f.info), f.segmented))


def answer_with(apdu):
    got = []

    def on_apdu(req):
        got.append(bytes(req))
        return apdu

    return got, on_apdu


def frames_of(d, data):
    c = Catch(d)
    d.feed(data)
    return c.frames


def test_crc16_x25_check_value():
    # CRC-16/X.25's catalogued check value (the CRC of "123456789")
    assert hdlc.crc16(b"123456789", 0, 9) == 0x906E


def test_decodes_a_real_clients_frames():
    d = hdlc.Deframer()
    got = frames_of(d, GURUX_SNRM + GURUX_AARQ + GURUX_DISC)
    assert [g[:4] for g in got] == [(1, 1, 16, 0x93), (1, 1, 16, 0x10), (1, 1, 16, 0x53)]
    assert got[1][4][:3] == hdlc.LLC_REQUEST and got[1][4][3] == 0x60  # the AARQ behind its LLC header
    assert got[0][4] == b"" and d.bad_frames == 0 and d.frames == 3


def test_encode_matches_a_real_clients_frames():
    buf = bytearray(64)
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x93)
    assert bytes(buf[:n]) == GURUX_SNRM
    info = GURUX_AARQ[8:-3]  # after the flag: format 2, addresses 2, control 1, HCS 2; then FCS 2 and the flag
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x10, info)
    assert bytes(buf[:n]) == GURUX_AARQ


def test_any_fragmentation_gives_the_same_frames():
    stream = b"\x00noise\x7e\x7e" + GURUX_SNRM + GURUX_AARQ[:-1] + GURUX_DISC + GURUX_AARQ
    whole = frames_of(hdlc.Deframer(), stream)
    for step in (1, 2, 3, 7, 13, 64):
        d = hdlc.Deframer()
        c = Catch(d)
        for i in range(0, len(stream), step):
            d.feed(stream[i:i + step])
        assert c.frames == whole, step
    # a shared flag (the AARQ's closing flag opens the DISC) and back-to-back flags are both accepted
    assert [g[3] for g in whole] == [0x93, 0x10, 0x53, 0x10]


def test_damaged_frames_are_counted_and_skipped():
    bad_fcs = bytearray(GURUX_SNRM)
    bad_fcs[-2] ^= 1
    bad_hcs = bytearray(GURUX_AARQ)
    bad_hcs[8] ^= 0x40
    not_closed = GURUX_SNRM[:-1] + b"\x00"
    wrong_format = b"\x7e\x80\x07\x03\x21\x93\x00\x00\x7e"
    too_short = b"\x7e\xa0\x03\x03\x21\x93\x7e"
    d = hdlc.Deframer()
    got = frames_of(d, bytes(bad_fcs) + bytes(bad_hcs) + not_closed + wrong_format + too_short + GURUX_DISC)
    assert [g[3] for g in got] == [0x53]
    assert d.bad_frames == 5 and d.frames == 1


def test_a_frame_longer_than_the_buffer_is_refused_without_growing_it():
    d = hdlc.Deframer(32)
    size = len(d._buf)
    buf = bytearray(200)
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x10, bytes(100))
    got = frames_of(d, bytes(buf[:n]) + GURUX_DISC)
    assert [g[3] for g in got] == [0x53] and d.oversize == 1 and len(d._buf) == size


def test_addresses_of_one_two_and_four_bytes():
    buf = bytearray(64)
    for upper, lower, size in ((1, None, 1), (1, 17, 2), (1, 256, 4), (0x3FFF, 0x3FFF, 4)):
        value, k = hdlc.server_address(upper, lower, size)
        assert k == size
        n = hdlc.encode(buf, value, k, 16, 1, 0x93)
        got = frames_of(hdlc.Deframer(), bytes(buf[:n]))
        assert got[0][:3] == (value, size, 16), (upper, lower)
    # a five-byte address (no end bit in four bytes) is not a frame
    n = hdlc.encode(buf, 0, 4, 16, 1, 0x93)
    buf[6] &= 0xFE
    c = hdlc.crc16(buf, 1, n - 3)
    buf[n - 3] = c & 0xFF
    buf[n - 2] = c >> 8
    d = hdlc.Deframer()
    assert frames_of(d, bytes(buf[:n])) == [] and d.bad_frames == 1


def test_parameters_round_trip_and_refusals():
    buf = bytearray(23)
    assert hdlc.put_parameters(buf, 0, 128, 64, 1, 1) == 23
    assert hdlc.parameters(buf) == [128, 64, 1, 1]
    assert hdlc.parameters(b"") == [None, None, None, None]
    assert hdlc.parameters(b"\x81\x80\x03\x05\x01\x40") == [64, None, None, None]
    for bad in (b"\x81\x80", b"\x81\x81\x00", b"\x81\x80\x04\x05\x01\x40", b"\x81\x80\x03\x05\x02\x40",
                b"\x81\x80\x07\x05\x05\x00\x00\x00\x00\x40"):
        try:
            hdlc.parameters(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def _link(answer, max_info=128):
    link = hdlc.Link(1, 1, answer, max_info=max_info)
    d = hdlc.Deframer(max_info)
    out = []
    d.on_frame = lambda f: out.append(bytes(link.receive(f, 0) or b""))
    return link, d, out


def _decode(frame):
    got = frames_of(hdlc.Deframer(256), frame)
    assert len(got) == 1, frame
    return got[0]


def test_connect_request_and_disconnect():
    got, on_apdu = answer_with(b"\x61\x00")
    link, d, out = _link(on_apdu)
    released = []
    link.on_disconnect = lambda: released.append(1)
    d.feed(GURUX_AARQ)  # an I-frame before SNRM: disconnected mode
    assert _decode(out[-1])[3] == 0x1F and got == []
    d.feed(GURUX_SNRM)
    dst, _, src, control, info, _ = _decode(out[-1])
    assert (dst, src, control) == (16, 1, 0x73) and link.state == hdlc.CONNECTED
    assert hdlc.parameters(info) == [128, 128, 1, 1]
    d.feed(GURUX_AARQ)
    assert got == [GURUX_AARQ[11:-3]]  # the APDU, LLC stripped
    dst, _, src, control, info, seg = _decode(out[-1])
    assert control == 0x30 and info == hdlc.LLC_RESPONSE + b"\x61\x00" and not seg  # N(S) 0, N(R) 1, final
    d.feed(GURUX_AARQ)  # the same I-frame again (our answer was lost): the same answer, not a second request
    assert len(got) == 1 and out[-1] == out[-2]
    d.feed(GURUX_DISC)
    assert _decode(out[-1])[3] == 0x73 and link.state == hdlc.DISCONNECTED and released == [1]
    d.feed(GURUX_DISC)
    assert _decode(out[-1])[3] == 0x1F and released == [1]


def test_frames_for_another_address_get_no_answer():
    _, on_apdu = answer_with(b"")
    link, d, out = _link(on_apdu)
    buf = bytearray(16)
    n = hdlc.encode(buf, 2, 1, 16, 1, 0x93)
    d.feed(bytes(buf[:n]))
    assert out == [b""] and link.state == hdlc.DISCONNECTED


def test_negotiation_takes_the_smaller_lengths():
    _, on_apdu = answer_with(b"")
    link, d, out = _link(on_apdu, max_info=128)
    buf = bytearray(64)
    neg = bytearray(23)
    hdlc.put_parameters(neg, 0, 64, 512, 1, 1)  # the client sends 64 at most, takes 512
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x93, neg)
    d.feed(bytes(buf[:n]))
    assert (link.rx_info, link.tx_info) == (64, 128)
    assert hdlc.parameters(_decode(out[-1])[4]) == [128, 64, 1, 1]
    neg[3] = 0x09  # a broken parameter group: refused with DM, still disconnected
    neg[2] = 99
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x93, neg)
    d.feed(bytes(buf[:n]))
    assert _decode(out[-1])[3] == 0x1F and link.state == hdlc.DISCONNECTED


def _iframe(ns, nr, info, segmented=False):
    buf = bytearray(300)
    n = hdlc.encode(buf, 1, 1, 16, 1, (ns << 1) | 0x10 | (nr << 5), info, segmented)
    return bytes(buf[:n])


def _rr(nr):
    buf = bytearray(16)
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x11 | (nr << 5))
    return bytes(buf[:n])


def test_segmented_request_and_response():
    long_answer = bytes(range(256)) + bytes(44)
    got, on_apdu = answer_with(long_answer)
    link, d, out = _link(on_apdu, max_info=128)
    d.feed(GURUX_SNRM)
    request = hdlc.LLC_REQUEST + bytes(range(200))
    d.feed(_iframe(0, 0, request[:128], True))
    assert _decode(out[-1])[3] == 0x31 and got == []  # RR, N(R) 1
    d.feed(_iframe(1, 0, request[128:]))
    assert got == [request[3:]]
    seen = bytearray()
    vs = 0
    while True:
        _, _, _, control, info, seg = _decode(out[-1])
        assert control & 1 == 0 and (control >> 1) & 7 == vs and len(info) <= 128
        seen += info
        vs = (vs + 1) & 7
        if not seg:
            break
        d.feed(_rr(vs))
    assert bytes(seen) == hdlc.LLC_RESPONSE + long_answer
    d.feed(_rr(vs - 1))  # the client missed the last segment: it comes again
    assert _decode(out[-1])[4] == _decode(out[-2])[4]


def test_oversized_or_malformed_request_is_refused():
    got, on_apdu = answer_with(b"\x00")
    link = hdlc.Link(1, 1, on_apdu, max_apdu=64)
    d = hdlc.Deframer()
    out = []
    d.on_frame = lambda f: out.append(bytes(link.receive(f, 0) or b""))
    d.feed(GURUX_SNRM)
    d.feed(_iframe(0, 0, hdlc.LLC_REQUEST + bytes(61), True))
    d.feed(_iframe(1, 0, bytes(10)))  # 74 bytes in all: over max_apdu
    assert _decode(out[-1])[3] == 0x97 and got == []  # FRMR
    d.feed(_iframe(2, 0, b"\xe6\xe7\x00\x01"))  # the response LLC in a request
    assert _decode(out[-1])[3] == 0x97 and got == [] and link.rejected == 2


def test_inactivity_timeout_disconnects():
    _, on_apdu = answer_with(b"\x61\x00")
    link = hdlc.Link(1, 1, on_apdu, timeout_ms=1000)
    released = []
    link.on_disconnect = lambda: released.append(1)
    d = hdlc.Deframer()
    out = []
    now = [0]
    d.on_frame = lambda f: out.append(bytes(link.receive(f, now[0]) or b""))
    d.feed(GURUX_SNRM)
    assert not link.expired(900)
    assert link.expired(1001) and link.state == hdlc.DISCONNECTED and released == [1]
    now[0] = 1100
    d.feed(GURUX_AARQ)
    assert _decode(out[-1])[3] == 0x1F  # DM: the association went with the link


def test_frames_from_a_multi_byte_source_address_get_no_answer():
    # a client's address is one byte: an answer to a longer one would go, truncated, to another station
    _, on_apdu = answer_with(b"")
    link, d, out = _link(on_apdu)
    buf = bytearray(16)
    n = hdlc.encode(buf, 1, 1, (1 << 7) | 16, 2, 0x93)
    d.feed(bytes(buf[:n]))
    assert out == [b""] and link.state == hdlc.DISCONNECTED


def test_a_longest_frame_with_four_byte_addresses_fits():
    d = hdlc.Deframer(32)
    buf = bytearray(32 + 2 + hdlc.FRAME_OVERHEAD)
    n = hdlc.encode(buf, (1 << 14) | 256, 4, (1 << 14) | 16, 4, 0x10, bytes(32))
    assert n == len(buf)
    got = frames_of(d, bytes(buf[:n]))
    assert len(got) == 1 and got[0][4] == bytes(32) and d.oversize == 0


def test_another_client_neither_takes_over_nor_drops_a_connected_link():
    got, on_apdu = answer_with(b"\x61\x00")
    link, d, out = _link(on_apdu)
    d.feed(GURUX_SNRM)
    buf = bytearray(64)
    for control in (0x93, 0x53, 0x11, 0x10):  # SNRM, DISC, RR, I-frame from client 1
        n = hdlc.encode(buf, 1, 1, 1, 1, control, b"\xe6\xe6\x00\x60\x00" if control == 0x10 else None)
        d.feed(bytes(buf[:n]))
        assert out[-1] == b"" and link.state == hdlc.CONNECTED and link.client == 16
    assert got == []
    d.feed(GURUX_AARQ)  # client 16 goes on as if nothing came
    assert got == [GURUX_AARQ[11:-3]] and _decode(out[-1])[3] == 0x30


def test_rnr_holds_the_next_segment_until_rr():
    got, on_apdu = answer_with(bytes(300))
    link, d, out = _link(on_apdu)
    d.feed(GURUX_SNRM)
    d.feed(GURUX_AARQ)
    assert _decode(out[-1])[5]  # a first segment, more to come
    buf = bytearray(16)
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x15 | (1 << 5))  # RNR, N(R) 1
    d.feed(bytes(buf[:n]))
    assert _decode(out[-1])[3] == 0x31  # RR: acknowledged, no I-frame
    d.feed(_rr(1))
    assert _decode(out[-1])[3] & 1 == 0  # the next segment now
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x19 | (2 << 5))  # REJ: not in IEC 62056-46's set
    d.feed(bytes(buf[:n]))
    assert _decode(out[-1])[3] == 0x97


def test_a_request_of_max_apdu_bytes_fits_with_its_llc_header():
    got, on_apdu = answer_with(b"\x00")
    link = hdlc.Link(1, 1, on_apdu, max_apdu=200)
    d = hdlc.Deframer()
    out = []
    d.on_frame = lambda f: out.append(bytes(link.receive(f, 0) or b""))
    d.feed(GURUX_SNRM)
    req = hdlc.LLC_REQUEST + bytes(range(200))
    d.feed(_iframe(0, 0, req[:128], True))
    d.feed(_iframe(1, 0, req[128:]))
    assert got == [req[3:]]


def test_a_client_offering_too_little_is_refused_and_never_sent_more_than_it_takes():
    _, on_apdu = answer_with(bytes(100))
    link, d, out = _link(on_apdu)
    buf = bytearray(64)
    neg = bytearray(23)
    hdlc.put_parameters(neg, 0, 128, 16, 1, 1)  # the client takes 16 bytes at most
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x93, neg)
    d.feed(bytes(buf[:n]))
    assert _decode(out[-1])[3] == 0x1F and link.state == hdlc.DISCONNECTED
    hdlc.put_parameters(neg, 0, 128, 40, 1, 1)
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x93, neg)
    d.feed(bytes(buf[:n]))
    d.feed(GURUX_AARQ)
    assert link.tx_info == 40 and len(_decode(out[-1])[4]) == 40


def test_frames_without_the_poll_bit_get_no_answer_and_a_repeat_is_only_of_its_answer():
    got, on_apdu = answer_with(b"\x61\x00")
    link, d, out = _link(on_apdu)
    d.feed(GURUX_SNRM)
    buf = bytearray(32)
    n = hdlc.encode(buf, 1, 1, 16, 1, 0x00, hdlc.LLC_REQUEST + b"\x60\x00")  # I-frame, N(S) 0, no P bit
    d.feed(bytes(buf[:n]))
    assert out[-1] == b"" and got == []
    d.feed(_iframe(7, 0, hdlc.LLC_REQUEST + b"\x60\x00"))  # N(S) 7 right after SNRM: not a repeat of anything
    assert _decode(out[-1])[3] == 0x11 and got == []  # RR(0), not the UA again


def test_noise_that_looks_like_a_frame_start_does_not_swallow_the_frame_behind_it():
    # a flag and a format byte in the noise make the real frame's flag read as a length (0x7E, 126 bytes): the
    # false start's bytes are scanned again, and the real frame comes out (found by a review's random streams)
    for noise in (b"\x7e\xa8", b"\x5f\x7e\xa0", b"\x7e\xa0\x09\x03\x21", b"\x7e\xa7\xff", b"\x7e\xa0\x03"):
        for step in (0, 1, 3):
            d = hdlc.Deframer()
            c = Catch(d)
            line = noise + GURUX_SNRM + GURUX_DISC
            if step:
                for i in range(0, len(line), step):
                    d.feed(line[i:i + step])
            else:
                d.feed(line)
            assert [g[3] for g in c.frames] == [0x93, 0x53], (noise, step, c.frames)
            assert d.bad_frames + d.oversize >= 1


def test_another_clients_frames_do_not_keep_a_silent_clients_link_alive():
    # client 16 connects and goes silent; client 1 keeps asking: once the inactivity timeout has passed since
    # client 16's last frame, client 1 gets the link (its own frames never reset that clock)
    _, on_apdu = answer_with(b"\x61\x00")
    link = hdlc.Link(1, 1, on_apdu, timeout_ms=1000)
    d = hdlc.Deframer()
    out = []
    now = [0]
    d.on_frame = lambda f: out.append(bytes(link.receive(f, now[0]) or b""))
    d.feed(GURUX_SNRM)
    buf = bytearray(16)
    n = hdlc.encode(buf, 1, 1, 1, 1, 0x93)
    for t in (400, 800):
        now[0] = t
        d.feed(bytes(buf[:n]))
        assert out[-1] == b"" and link.client == 16
    now[0] = 1200
    d.feed(bytes(buf[:n]))
    assert _decode(out[-1])[3] == 0x73 and link.client == 1  # UA to client 1
