"""Helpers for firmware tests that run unchanged on CPython (pytest) and inside the MicroPython VM.

Firmware test modules import only this module and firmware code: no pytest, no hypothesis, no typing at run time.
"""


# gurux-dlms 1.0.203's AARQs (logical names, no ciphering, block transfer with GET proposed): the public client's (no
# authentication) and the meter reader's (low-level security, secret READER_SECRET), as captured from it
AARQ_PUBLIC = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400401e5dffff")
AARQ_READER = bytes.fromhex("6036a1090607608574050801018a0207808b0760857405080201ac0a80083132333435363738be10040e0100"
                            "0000065f1f0400401e5dffff")
READER_SECRET = b"12345678"


def aarq_reader(secret):
    """The meter reader's AARQ with another secret (under 120 bytes)."""
    body = AARQ_READER[2:].replace(b"\xac\x0a\x80\x08" + READER_SECRET,
                                   bytes((0xAC, len(secret) + 2, 0x80, len(secret))) + secret)
    return bytes((0x60, len(body))) + body


def reader_association(get):
    """An app/cosem.py Association of the meter reader (client SAP 32) over `get`, its secret checked and right."""
    from app import cosem

    a = cosem.Association(get, lls=lambda secret: secret == READER_SECRET)
    aare = a.apdu(AARQ_READER, cosem.READER_CLIENT)
    assert aare[0] == 0x61 and a.associated and a.client == cosem.READER_CLIENT, aare
    return a


def raises(exc_type, fn, *args, **kwargs):
    """Call fn(*args, **kwargs) and return the exception it raised; fail if it raised nothing or another type."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:  # noqa: B902 - the caller names the expected type
        return e
    raise AssertionError("expected %s from %r" % (exc_type.__name__, fn))


def float32(x):
    """Round x to the nearest IEEE single, as the ESP32 and RP2040 ports store every float."""
    from array import array

    return array("f", [x])[0]


_seq = [0]


def workdir():
    """Make a fresh empty folder, chdir into it (firmware paths are relative to the flash root) and return the
    folder to go back to. Works on CPython and in the VM (which has no tempfile)."""
    import os

    back = os.getcwd()
    while _made:  # the folders earlier tests made (they have gone back from them): a run leaves /tmp as it found it
        _rmtree(_made.pop())
    _seq[0] += 1
    base = "/tmp/fwtest-%d-%d" % (os.getpid() if hasattr(os, "getpid") else _rand(), _seq[0])
    _rmtree(base)
    os.mkdir(base)
    os.chdir(base)
    _made.append(base)
    return back


_made = []  # type: list


def _rand():
    import os

    return int.from_bytes(os.urandom(4), "big")


def _rmtree(path):
    import os

    try:
        entries = list(os.ilistdir(path)) if hasattr(os, "ilistdir") else [(n, 0) for n in os.listdir(path)]
    except OSError:
        return
    for ent in entries:
        p = path + "/" + ent[0]
        try:
            os.remove(p)
        except OSError:
            _rmtree(p)
    os.rmdir(path)


def write(path, data):
    """Write a file, creating its folders."""
    import os

    parts = path.split("/")
    for i in range(1, len(parts)):
        d = "/".join(parts[:i])
        try:
            os.mkdir(d)
        except OSError:
            pass
    with open(path, "wb") as f:
        f.write(data if isinstance(data, (bytes, bytearray)) else data.encode())


def fixture(name):
    """Bytes of host_tests/firmware/fixtures/<name>."""
    base = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    with open(base + "/fixtures/" + name, "rb") as f:
        return f.read()


def in_workdir(fn, *dirs):
    """Run fn() inside a fresh empty folder (with `dirs` created in it), then return to where we were."""
    import os

    back = workdir()
    try:
        for d in dirs:
            os.mkdir(d)
        return fn()
    finally:
        os.chdir(back)
        while _made:
            _rmtree(_made.pop())


class RelayModel:
    """The board's relay as the HAL sees it (app/relay.py's hal): coils that move the contact unless it is stuck, and a
    feedback input (None when the board has none)."""

    def __init__(self, closed=True, feedback=True):
        self.contact = closed
        self.stuck = False
        self.feedback = feedback
        self.pulses = []

    def relay_pulse(self, connect, ms=100):
        self.pulses.append((connect, ms))
        if not self.stuck:
            self.contact = connect
        return True

    def relay_closed(self):
        return self.contact if self.feedback else None


def disconnect_control():
    """A class-70 disconnect control over a RelayModel, as the supply makes one (app/disconnect.py)."""
    from app import disconnect
    from app import relay as rl

    return disconnect.DisconnectControl(rl.Relay(RelayModel(), 80, lambda c, d: None))


class Line:
    """A UART the firmware writes to: what it wrote, write by write."""

    def __init__(self):
        self.out = []

    def write(self, buf):
        self.out.append(bytes(buf))
        return len(buf)


class _Parts:
    pass


def meter_parts():
    """(ctx, metering, supply) as app/dlms_port.py's OpticalPort uses them: a fresh SMP server and meter id, a reading
    with its registers, a class-70 control, the load limit's defaults and an empty credit record (no tariff)."""
    from app import credit_store, dsp, load_limit, registers
    from app.tick import Tick
    from loader import smp

    ctx, metering, supply = _Parts(), _Parts(), _Parts()
    ctx.server = smp.Server()
    ctx.meter_id = "meter-42"
    ctx.app_version = "1.2.3"
    ctx.board = {"metering": {"ib_amps": 5.0, "imax_amps": 60.0}}
    metering.tick = Tick(dsp.Reading(), registers.Registers())
    metering.cfg = {"tz_offset_min": 330, "md_period_s": 900}
    supply.control = disconnect_control()
    supply.log = None  # no event log: no event profiles (a test that wants them sets one)
    supply.limit = load_limit.LoadLimit(dict(load_limit.DEFAULTS))
    supply.store = credit_store.CreditStore()  # (not read from flash: a balance of 0, no top-up)
    supply.prepaid = None
    return ctx, metering, supply


def optical_port(line, parts=None, buf_size=64):
    """An app/dlms_port.py OpticalPort on `line` over `parts` (meter_parts() when None), with the DLMS layers off the
    heap first, as on a meter before a session."""
    import loader
    from app import dlms_port

    for name in dlms_port.LAYERS:
        loader.forget(name)
    ctx, metering, supply = parts or meter_parts()
    return dlms_port.OpticalPort(ctx, metering, supply, line, bytearray(buf_size))


class Datagrams:
    """An app.modem Socket's stand-in for app/dlms_wrapper.py's WrapperPort: datagrams put in `inbox` are received,
    those sent are kept in `out` (each no longer than the module's datagram, as the module's cap would have it)."""

    def __init__(self, cap=512):
        self.modem = _Parts()
        self.modem.max_datagram = cap
        self.lport = 4059
        self.is_open = True
        self.dropped = 0
        self.inbox = []
        self.out = []

    async def recv(self):
        import asyncio

        while not self.inbox:
            await asyncio.sleep_ms(1)
        return memoryview(self.inbox.pop(0))

    async def send(self, data, n=-1):
        n = len(data) if n < 0 else n
        assert n <= self.modem.max_datagram, n
        self.out.append(bytes(data[:n]))


def wrap(apdu, client=16, server=1, version=1):
    """An IEC 62056-47 wrapper datagram: version, source wPort (the client), destination wPort, length, the APDU."""
    n = len(apdu)
    return bytes((version >> 8, version & 0xFF, client >> 8, client & 0xFF, server >> 8, server & 0xFF, n >> 8,
                  n & 0xFF)) + apdu


def wrapper_port(sock, parts=None):
    """An app/dlms_wrapper.py WrapperPort on `sock` over `parts` (meter_parts() when None), the DLMS layers off the
    heap first, as on a meter before a session."""
    import loader
    from app import dlms_port, dlms_wrapper

    for name in dlms_port.LAYERS:
        loader.forget(name)
    ctx, metering, supply = parts or meter_parts()
    return dlms_wrapper.WrapperPort(ctx, metering, supply, sock)
