import fwtest
from app import bl0942


def packet(i_rms=251213, v_rms=3650000, watt=136484, cf=0, freq=20000, status=0, address=0):
    def u24(x):
        x &= 0xFFFFFF
        return bytes((x & 0xFF, (x >> 8) & 0xFF, x >> 16))

    body = b"\x55" + u24(i_rms) + u24(v_rms) + u24(i_rms) + u24(watt) + u24(cf) + u24(freq) + u24(status)
    return body + bytes((bl0942.checksum(address, body),))


class FakeUart:
    """Answers each full-packet request with the next queued answer, as the IC would after its line time."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.pending = None
        self.sent = []

    def any(self):
        return 0

    def write(self, b):
        self.sent.append(bytes(b))
        self.pending = self.answers.pop(0) if self.answers else None

    def read(self, n=-1):
        out, self.pending = self.pending, None
        return out


BOARD = {"frontend": {"type": "bl0942", "address": 0}}
CONSTS = {"v_scale": 15873.36, "i_scale": 251213.46, "p_scale": 596.0, "cf_per_kwh": 5115.56, "p_offset_w": 0.0}


def test_packet_fields_and_signed_power():
    regs = bl0942.parse(packet(i_rms=1256067, v_rms=3650873, watt=-137080, cf=0xFFFFFE, freq=20000, status=1), 0)
    assert regs == (1256067, 3650873, 1256067, -137080, 0xFFFFFE, 20000, 1)


def test_request_and_checksum_follow_the_datasheet():
    assert bl0942.request(0) == b"\x58\xaa" and bl0942.request(3) == b"\x5b\xaa"
    p = packet(address=2)
    assert bl0942.parse(p, 2)[1] == 3650000
    assert fwtest.raises(bl0942.FrameError, bl0942.parse, p, 0).code == bl0942.E_CHECKSUM  # another address


def test_bad_packets_are_named():
    good = packet()
    cases = ((None, bl0942.E_TIMEOUT), (good[:20], bl0942.E_TIMEOUT), (good + b"\x00", bl0942.E_LENGTH),
             (b"\x54" + good[1:], bl0942.E_HEAD))
    for data, code in cases:
        assert fwtest.raises(bl0942.FrameError, bl0942.parse, data, 0).code == code
    for k in range(1, 23):
        bad = bytearray(good)
        bad[k] ^= 0x10
        assert fwtest.raises(bl0942.FrameError, bl0942.parse, bytes(bad), 0).code == bl0942.E_CHECKSUM, k


def _run(fe, reading):
    import asyncio

    return asyncio.run(fe.measure(reading))


def test_frontend_scales_and_counts_pulses_across_the_wrap():
    from app import dsp

    uart = FakeUart([packet(cf=0xFFFFF0), packet(cf=0x000010), None, packet(cf=0x000020)])
    fe = bl0942.Bl0942Frontend(BOARD, CONSTS, uart=uart)
    r = dsp.Reading()
    assert _run(fe, r) and fe.pulses is None  # the first packet is the counter's baseline
    assert abs(r.voltage - 3650000 / 15873.36) < 1e-6 and abs(r.p - 229.0) < 0.01
    assert abs(r.s - r.voltage * r.current) < 1e-3 and r.q >= 0
    assert abs(r.frequency - 50.0) < 1e-9
    assert _run(fe, r) and fe.pulses == 0x20  # across the 24-bit wrap
    assert not _run(fe, r) and fe.errors == {bl0942.E_TIMEOUT: 1} and fe.pulses == 0
    assert _run(fe, r) and fe.pulses == 0x10
    assert uart.sent == [b"\x58\xaa"] * 4


def test_the_front_end_turns_its_pulses_into_energy_carrying_the_fraction():
    from app import dsp

    uart = FakeUart([packet(cf=100), packet(cf=103), packet(cf=103)])
    fe = bl0942.Bl0942Frontend(BOARD, CONSTS, uart=uart)
    r = dsp.Reading()
    per = 3.6e9 / CONSTS["cf_per_kwh"]  # mJ per pulse
    assert _run(fe, r) and fe.take_energy(r, 1000) == 0  # the baseline packet: no energy, whatever the power
    assert _run(fe, r) and fe.take_energy(r, 1000) == int(3 * per)
    assert fe.take_energy(r, 1000) == 0, "taken once"
    rest = 3 * per - int(3 * per)
    r.p = -50.0  # exporting: the same count is negative energy, the carried fraction included
    fe.pulses = 2
    assert fe.take_energy(r, 1000) == -int(2 * per + rest)
    assert _run(fe, r) and fe.take_energy(r, 1000) == 0  # no pulses in the interval


def test_the_sampled_front_end_s_energy_is_power_over_the_interval():
    from app import adc_frontend, dsp

    r = dsp.Reading()
    r.p = 1000.4
    assert adc_frontend.AdcFrontend.take_energy(None, r, 1000) == 1000400
    r.p = -0.0015
    assert adc_frontend.AdcFrontend.take_energy(None, r, 1000) == -2  # half away from zero, as for import
