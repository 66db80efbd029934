# The BL0942 metering IC on a UART (4800 baud 8N1): the full-packet read, its checksum, and the front end that turns
# the packet into a reading and energy from the IC's CF pulse counter (24 bits, restarting at 0 when the IC powers
# up). The IC measures active power only: Q and S are derived here from Vrms, Irms and P, and Q is unsigned.
import asyncio
import math

from micropython import const

_READ = const(0x58)
_FULL_PACKET = const(0xAA)
HEAD = const(0x55)
_PACKET_LEN = const(23)
_CF_MODULUS = const(1 << 24)
LINE_S = 0.06  # 25 bytes at 4800 baud (52 ms) plus the IC's turnaround
RETRY_S = 0.04
# errors, counted per kind and returned by meter read (docs/metering.md)
E_TIMEOUT = "timeout"  # no or too few bytes
E_HEAD = "bad-head"  # first byte not 0x55
E_CHECKSUM = "bad-checksum"
E_LENGTH = "bad-length"  # more bytes than a packet: another talker or a wrong baud rate


class FrameError(ValueError):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def request(address):
    return bytes((_READ | address, _FULL_PACKET))


def checksum(address, body):
    t = _READ | address
    for b in body:
        t += b
    return ~t & 0xFF


def _u24(b, k):
    return b[k] | (b[k + 1] << 8) | (b[k + 2] << 16)


def parse(packet, address):
    """(i_rms, v_rms, i_fast_rms, watt, cf_cnt, freq, status) from one full packet, or FrameError."""
    if packet is None or len(packet) < _PACKET_LEN:
        raise FrameError(E_TIMEOUT)
    if len(packet) > _PACKET_LEN:
        raise FrameError(E_LENGTH)
    if packet[0] != HEAD:
        raise FrameError(E_HEAD)
    if checksum(address, memoryview(packet)[:22]) != packet[22]:
        raise FrameError(E_CHECKSUM)
    watt = _u24(packet, 10)
    if watt & 0x800000:
        watt -= 0x1000000
    return (_u24(packet, 1), _u24(packet, 4), _u24(packet, 7), watt, _u24(packet, 13), _u24(packet, 16),
            _u24(packet, 19))


class Bl0942Frontend:
    """measure(reading) fills a dsp.Reading-like object; `pulses` is the CF count since the previous good packet
    (None for the first packet after a start: the counter's baseline) until take_energy turns it into energy."""

    kind = "bl0942"

    def __init__(self, board, consts, uart=None):
        self.address = board["frontend"].get("address", 0)
        if uart is None:
            import machine

            u = board["uarts"]["metering"]
            uart = machine.UART(u["id"], baudrate=u["baud"], tx=u["tx"], rx=u["rx"], timeout=0)
        self.uart = uart
        self.req = request(self.address)
        self.set_constants(consts)
        self.last_cf = None
        self.pulses = None
        self.mj_rest = 0.0  # the fraction of a millijoule carried from one CF conversion to the next
        self.errors = {}
        self.packets = 0

    def set_constants(self, consts):
        self.c = consts
        self.mj_per_pulse = 3.6e9 / consts["cf_per_kwh"]

    async def measure(self, out):
        """True when `out` holds a new reading."""
        uart = self.uart
        if uart.any():
            uart.read()  # stale bytes (a late answer, noise): the next packet must start clean
        uart.write(self.req)
        await asyncio.sleep(LINE_S)
        data = uart.read()
        if data is None or len(data) < _PACKET_LEN:
            await asyncio.sleep(RETRY_S)
            more = uart.read()
            if more:
                data = more if data is None else data + more
        try:
            regs = parse(data, self.address)
        except FrameError as e:
            self.errors[e.code] = self.errors.get(e.code, 0) + 1
            self.pulses = None if self.last_cf is None else 0
            return False
        self.packets += 1
        self.reading(regs, out)
        cf = regs[4]
        self.pulses = None if self.last_cf is None else (cf - self.last_cf) % _CF_MODULUS
        self.last_cf = cf
        return True

    def take_energy(self, r, dt_ms):
        """The active energy since the previous reading in integer mJ, from the IC's CF pulses (the IC integrates
        continuously, so no energy is lost between packets or to a bad one); 0 for the first packet, which only sets
        the counter's baseline. CF counts both directions: the sign is the reading's."""
        pulses = self.pulses
        if not pulses:
            return 0
        self.pulses = 0
        e = pulses * self.mj_per_pulse + self.mj_rest
        whole = int(e)
        self.mj_rest = e - whole
        return whole if r.p >= 0 else -whole

    def reading(self, regs, out):
        c = self.c
        i_rms, v_rms, _, watt, _, freq, _ = regs
        out.voltage = v_rms / c["v_scale"]
        out.current = i_rms / c["i_scale"]
        p = watt / c["p_scale"] - c["p_offset_w"]
        s = out.voltage * out.current
        if abs(p) > s:
            s = abs(p)
        out.p = p
        out.s = s
        out.q = math.sqrt(s * s - p * p)
        out.pf = p / s if s > 0 else 1.0
        out.frequency = 1e6 / freq if freq else 0.0
        out.cycles = 0
        out.samples = 0
