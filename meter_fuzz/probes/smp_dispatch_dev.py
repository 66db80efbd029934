"""SMP dispatch into every group a running development meter serves (loader/smp.py `Server` with os 0, image 1,
update status 64, metering 65, supply 66 and network 67, built as app/main.py builds them), over the console and
over UDP (app/modem_smp.py `SmpOverUdp`, a socket that answers any sender): a short sequence of requests per input on
a fresh meter.

Input: records of [ctl][u16 BE n][n bytes: one SMP packet], at most MAX_REQUESTS; ctl bit 0 sends the packet over UDP
(at most the module's 512-byte datagram), else over the console (at most BUF_SIZE). A packet's own header may
disagree with its record (that is the server's to refuse). The structure-aware mutator (meter_fuzz/host/
smp_dispatch_dev.py) keeps headers consistent and bodies valid CBOR.

The server documents no exception for any packet (a handler's refusal is an SMP error reply; a MemoryError is EBUSY
or ENOMEM): ERRORS names one it never raises. Invariants (fuzzcore.Violation): a packet under 8 bytes or with a
response op gets no answer, every other gets one SMP packet whose header matches the request (version, op + 1, flags
0, group, seq, command) and whose length is its body's, a CBOR map (with an integer rc, or an err map, when it is an
error); over UDP nothing larger than AMPLIFY times the request leaves; a request costs the meter an Ed25519
verification only when it carries an envelope or token naming a key of its trust store; records that only signed commands may change
(the supply's, the clock, the head-end, the mode, the trust store, the counter) are unchanged, as no input can carry
a valid signature for them (PROTECTED; smp_dispatch_locked protects every signed record).

Each input starts from the same meter: the meter's files are copied from a template made once in setup(), and the
meter's objects are built again only after an input that reached a handler which may change state."""

import os

import fuzzcore
from fuzzcore import check

import cbor
from app import modem_smp
from loader import smp, wallclock


class NoError(Exception):
    """Never raised: Server.respond documents no exception for any packet."""


ERRORS = (NoError,)
MODULES = ("loader/smp.py", "loader/os_group.py", "loader/image_group.py", "loader/commands.py",
           "loader/envelope.py", "app/meter_group.py", "app/supply_group.py", "app/network.py", "app/modem_smp.py")
MEM_BASE = 512 * 1024  # a meter's objects and an upload's verification live in the traced window
MEM_PER_BYTE = 256
MODE = "development"
TRUST = "trust_v2.cbor"  # root, and one non-development key for images and commands
MAX_REQUESTS = 8
UDP_MAX = 512  # the BC660K's datagram (app/modem_bc660k.py)
RTC = 1900000000  # 2030-03-17: the supply fixtures' envelopes are valid until 2000003600
METER_ID = "m-1"
AMPLIFY = 3  # docs/SECURITY.md "Not an amplifier": no reply over 3 times its request to a sender that may be spoofed
BOARD = {
    "id": "esp32_devkitc", "name": "ESP32-DevKitC", "mcu": {"arch": "xtensawin", "family": "esp32"},
    "flash": {"block_size": 4096, "block_count": 512},
    "adc": {"bits": 12, "vref": 3.3},
    "frontend": {"type": "adc", "period_ms": 1000},
    "calibration": {"v_gain": 250.0, "i_gain": 60.0, "phase_deg": 0.0},
    "metering": {"nominal_voltage": 230.0, "nominal_frequency": 50.0, "ib_amps": 5.0, "imax_amps": 60.0},
    "uarts": {"console": {"id": 0}},
}
APP = {"app/__init__.py": b"VERSION = '0.1.0'\n", "app/main.py": b"def run(ctx):\n    pass\n"}
# records no SMP request changes on a development meter, signed or not (the mode and identity only change by
# provisioning over the REPL, the trust store by a root-signed update, the counter at a confirming boot); supply,
# clock and head-end records do change with the command key's envelopes, which the seeds carry (supply.cbor)
PROTECTED = ("meter/mode.json", "meter/trust.cbor", "meter/identity.json", "meter/counter.json", "meter/loaders.json")
# handlers (group, command, op) that change nothing: reaching only these keeps the meter for the next input
# (the network status builds group 67's Network at its first request, from the template's files: the same object
# every time, so keeping it changes nothing)
PURE = ((0, 0, 0), (0, 0, 2), (0, 6, 0), (0, 7, 0), (1, 0, 0), (64, 0, 0), (65, 0, 0), (65, 2, 0), (65, 3, 0),
        (66, 0, 0), (66, 5, 0), (66, 9, 0), (67, 0, 0))
# handlers that read, and write only when the request carries this field (either op)
WRITES_WITH = {(66, 3): "settings", (66, 8): "calendar", (66, 9): "sha256", (67, 1): "headend"}


def _fixtures():
    f = __file__
    base = f[:f.rfind("/")] if "/" in f else "."
    return base + "/../../host_tests/firmware/fixtures/"


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    parts = path.split("/")
    for i in range(1, len(parts)):
        try:
            os.mkdir("/".join(parts[:i]))
        except OSError:
            pass
    with open(path, "wb") as f:
        f.write(data)


class _Hal:
    """The board's relay (a latching contact with feedback), button and cover as the supply sees them."""

    def __init__(self):
        self.contact = True

    def relay_pulse(self, connect, ms=100):
        self.contact = connect
        return True

    def relay_closed(self):
        return self.contact

    def on_button(self, handler):
        return True

    def cover_open(self):
        return None

    def on_cover(self, handler):
        return True

    def led(self, on):
        pass


class _Front:
    kind = "adc"
    pulses = None

    def __init__(self):
        self.errors = {}

    def set_constants(self, consts):
        pass

    def fill(self, r):
        pass

    def take_energy(self, r, dt_ms):
        return 0


class _Up:
    """loader/wallclock.py Uptime of a meter up a day (past a locked meter's reset window), the same in every run and
    on both runtimes."""

    def seconds(self):
        return 86400

    def ms(self):
        return 86400000


class _Ctx:
    """What loader/context.py hands the app, without the hardware."""

    def __init__(self, mode):
        self.board = BOARD
        self.hal = _Hal()
        self.mode = mode
        self.meter_id = METER_ID
        self.server = smp.Server()
        self.started_ms = 0
        self.uptime = _Up()
        self.refusals = [None, 0, ""]
        self.refused = ""
        self.slot = "a"
        self.slot_path = "slots/a"
        self.test_boot = False
        self.loader_test = False
        self.wdt = None
        self.facts = None
        self.app_version = "0.1.0"
        self.before_reset = []
        self.resets = 0
        self.reset_scheduler = None

    def request_reset(self, force=False):
        self.resets += 1


class _Modem:
    max_datagram = UDP_MAX

    class kind:
        FIXED_PEER = False


class _Sock:
    modem = _Modem()

    def __init__(self):
        self.sent = []

    async def send(self, buf, n):
        self.sent.append(bytes(memoryview(buf)[:n]))


class Meter:
    """One meter in a scratch folder: its files from the template, its objects as app/main.py builds them."""

    def __init__(self, name, mode, trust_file, protected):
        self.name = name
        self.mode = mode
        self.protect = protected
        self.trust = _read(_fixtures() + trust_file)
        self.template = None
        self.server = None
        self.dirty = True
        self.stale = True
        self.touched = [False]

    def files(self):
        """The template: slot a runs 0.1.0, slot b held 0.0.9; the trust store; a flat tariff; the mode."""
        import hashlib

        out = {}
        entries = [{"path": p, "size": len(APP[p]), "sha256": hashlib.sha256(APP[p]).digest()} for p in sorted(APP)]
        from loader import LOADER_API

        for name, version in (("a", "0.1.0"), ("b", "0.0.9")):
            for p in APP:
                out["slots/%s/%s" % (name, p)] = APP[p]
            out["slots/%s/manifest.cbor" % name] = cbor.dumps({"format": 1, "board": BOARD["id"], "version": version,
                                                               "loader_api": LOADER_API, "files": entries})
        out["meter/slots.json"] = b'{"active": "a"}'
        out["meter/trust.cbor"] = self.trust
        out["meter/supply.json"] = b'{"tariff": {"flat": 1000}}'
        out["meter/mode.json"] = ('{"mode": "%s"}' % self.mode).encode()
        out["meter/identity.json"] = ('{"meter_id": "%s"}' % METER_ID).encode()
        return out

    def setup(self):
        wallclock.rtc_now = lambda: RTC  # envelopes expire by it: one fixed moment, so every run is the same
        _remember_signatures()
        _NO_MACHINE[0] = _machine_absent()
        self.base = _scratch(self.name)
        for path, data in self.files().items():
            _write(path, data)
        self.build()
        from loader import image, trust

        self.keyhashes = [image.keyhash(k["key"]) for k in trust.parse(self.trust)[0]["keys"]]
        self.template = _snapshot(".")  # the files as the meter left them after its first start-up
        self.baseline = [self.template.get(p) for p in self.protect]
        self.fresh()  # every input meets the meter built on the template: this one too
        # a start-up on the template writes none of the protected files, so they are the template's whenever an
        # input begins, whether or not the meter's objects have been built again yet
        fuzzcore.check(self.protected() == self.baseline, "a start-up on the template changes a protected file")
        import gc

        if hasattr(gc, "freeze"):
            # CPython: the upload handler's gc.collect() walked every object of the fuzzing process (80 ms with
            # atheris loaded; a board's heap takes milliseconds); what exists now is left out of its walks
            gc.collect()
            gc.freeze()

    def fresh(self):
        """The template's files back in the meter's folder, and the meter's objects built on them again."""
        self.restore()
        self.build()
        self.stale = False

    def restore(self):
        """The template's files back; the objects are built again only when a handler is reached (see _marking):
        most mutated inputs never get that far. The protected files are the template's again."""
        _restore(".", self.template)
        self.dirty = False
        self.stale = True

    def build(self):
        from loader import journal

        journal._pending[:] = []
        journal._sink[:] = []
        import sys

        absent = _NO_MACHINE[0] and "machine" not in sys.modules
        if absent:
            sys.modules["machine"] = None  # the supply's `import machine` fails at once, as importlib's search would
        try:
            self._build()
        finally:
            if absent:
                del sys.modules["machine"]

    def _build(self):
        import _appwire

        from app.meter_group import MeterGroup
        from app.metering import Metering
        from app.supply import Supply
        from app.supply_group import SupplyGroup
        from loader.image_group import ImageGroup
        from loader.os_group import OsGroup

        _appwire.fresh_ram()
        # (brought in per use and forgotten after: a profile read, group 65; the DLMS keys' and reader secret's
        # commands, group 66: importing them again for each input is CPython's cost, about 1 MB traced, not the input's)
        fuzzcore.keep_loaded("app.event_logs", "app.load_profile", "app.dlms_hls", "app.dlms_secret")
        ctx = _Ctx(self.mode)
        meter = Metering(ctx, frontend=_Front())
        OsGroup(ctx).register(ctx.server)
        ImageGroup(ctx).register(ctx.server)
        MeterGroup(ctx, meter).register(ctx.server)
        supply = Supply(ctx, meter, set_rtc=lambda t: None)
        meter.listeners.append(supply.on_reading)
        SupplyGroup(ctx, supply).register(ctx.server)
        _appwire.network(ctx, supply.log)
        import time

        # one reading (no load), as a running meter has, so the metering read answers; taken before the supply
        # listens (its credit alerts at zero credit would write the event log three times per meter built)
        listeners = meter.listeners
        meter.listeners = []
        meter.account(time.ticks_ms())
        meter.listeners = listeners
        self.ctx = ctx
        self.metering = meter  # (the dlms_set probe SETs into these)
        self.supply = supply
        self.server = ctx.server
        self._watch()
        self.udp = modem_smp.SmpOverUdp(self.server, _Sock(), fixed_peer=False)

    def _watch(self):
        """Wrap every handler: one that may change state makes the next input start from the template again; any
        handler reached while the objects are stale builds them first and hands the request to the new one."""
        h = self.server._handlers
        for key in list(h):
            gco = (key >> 10, (key >> 2) & 0xFF, key & 3)  # smp.key's (group, cmd, op)
            h[key] = _marking(self, self.server, key, h[key], gco in PURE, WRITES_WITH.get(gco[:2]))

    def protected(self):
        out = []
        for p in self.protect:
            try:
                out.append(_read(p))
            except OSError:
                out.append(None)
        return out


_NO_MACHINE = [False]  # CPython without a `machine` module (set by setup)


def _machine_absent():
    import sys

    if sys.implementation.name == "micropython":
        return False
    try:
        import machine  # noqa: F401
    except ImportError:
        return True
    return False


_VERIFIED = {}
_VERIFIED_MAX = 256
VERIFICATIONS = [0]  # Ed25519 verifications asked for (remembered or not), for the cost invariant


def _remember_signatures():
    """Every signed command makes the meter check its trust store's root signature and then the envelope's, each
    a pure-Python Ed25519 verification (13 ms on CPython, far more under atheris): the firmware's own verify runs
    once per (key, message, signature) and its answer is remembered. A verification is a pure function, so the
    meter's behaviour is unchanged; only repeats get cheaper (the seeds' envelopes, the trust store)."""
    import ed25519

    if getattr(ed25519, "_fuzz_real", None) is not None:
        return
    real = ed25519.verify

    def verify(public_key, message, signature):
        VERIFICATIONS[0] += 1
        for v in (public_key, message, signature):
            if not isinstance(v, (bytes, bytearray, memoryview)):
                return real(public_key, message, signature)  # whatever the verifier makes of it: not remembered
        key = (bytes(public_key), bytes(message), bytes(signature))
        r = _VERIFIED.get(key)
        if r is None:
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            r = real(public_key, message, signature)
            _VERIFIED[key] = r
        return r

    ed25519._fuzz_real = real
    ed25519.verify = verify


def _scratch(name):
    """An empty folder for the meter's files, in RAM where the host has /dev/shm (a disk's rmdir costs more than the
    meter's whole start-up), removed when the process ends; the folders of CPython processes that ended without
    removing theirs (libFuzzer leaves without Python's exit handlers) are removed here."""
    try:
        os.stat("/dev/shm")
    except OSError:
        return fuzzcore.scratch(name)
    import sys

    vm = sys.implementation.name == "micropython"  # no getpid: a random id, so its folders cannot be judged
    prefix = "meter-fuzz-%s-" % name
    if not vm:
        for entry in os.listdir("/dev/shm"):
            pid = entry[len(prefix):]
            if entry.startswith(prefix) and pid.isdigit():
                try:
                    os.stat("/proc/" + pid)
                except OSError:
                    fuzzcore._rmtree("/dev/shm/" + entry)
    base = "/dev/shm/%s%s%d" % (prefix, "vm" if vm else "", fuzzcore._pid())
    fuzzcore._rmtree(base)
    os.mkdir(base)
    os.chdir(base)
    if hasattr(sys, "atexit"):
        sys.atexit(lambda: fuzzcore._rmtree(base))
    else:
        import atexit

        atexit.register(fuzzcore._rmtree, base)
    return base


def _entries(path):
    return [(e[0], e[1]) for e in os.ilistdir(path)]


def _snapshot(top):
    """{path: bytes} of every file under `top` (paths relative to it)."""
    out = {}
    for name, kind in _entries(top):
        p = name if top == "." else top + "/" + name
        if kind == 0x4000:
            out.update(_snapshot(p))
        else:
            out[p] = _read(p)
    return out


def _restore(top, files):
    """Make the tree under `top` hold exactly `files` again: extra files and folders go, changed files are
    rewritten, the rest is left alone."""
    seen = {}
    _prune(top, files, seen)
    for p in files:
        if p not in seen:
            _write(p, files[p])


def _prune(top, files, seen):
    for name, kind in _entries(top):
        p = name if top == "." else top + "/" + name
        if kind == 0x4000:
            _prune(p, files, seen)
            try:
                os.rmdir(p)  # only an empty folder the template does not have goes
            except OSError:
                pass
        elif p not in files:
            os.remove(p)
        else:
            seen[p] = True
            if _read(p) != files[p]:
                _write(p, files[p])


def _marking(m, server, key, fn, pure, field):
    touched = m.touched

    def handler(req):
        if m.stale:
            m.build()
            m.stale = False
            new = m.server
            new.bufs = server.bufs  # what the transport told the server this request came through
            try:
                return new._handlers[key](req)
            finally:
                server.after_reply = new.after_reply  # the work after the reply goes with the request's server
                new.after_reply = None
        if not pure and (field is None or field in req):
            touched[0] = True
        return fn(req)

    return handler


def records(data):
    """The (ctl, packet) records of one input."""
    out = []
    i = 0
    n = len(data)
    while i + 3 <= n and len(out) < MAX_REQUESTS:
        ctl = data[i]
        k = (data[i + 1] << 8) | data[i + 2]
        i += 3
        out.append((ctl, data[i:i + k]))
        i += k
    return out


def check_reply(req, hdr, body):
    check(len(hdr) == smp.HEADER_SIZE, "a %d-byte reply header" % len(hdr))
    b0 = req[0]
    want = ((b0 >> 3) & 3) << 3 | ((b0 & 7) + 1)
    check(hdr[0] == want and hdr[1] == 0, "reply op/version byte %02x flags %02x to request byte %02x" % (
        hdr[0], hdr[1], b0))
    check(hdr[4:8] == req[4:8], "reply group/seq/command %r to %r" % (bytes(hdr[4:8]), bytes(req[4:8])))
    check(((hdr[2] << 8) | hdr[3]) == len(body), "reply length field %d for a %d-byte body" % (
        (hdr[2] << 8) | hdr[3], len(body)))
    try:
        rsp = cbor.loads(body)
    except ValueError:
        raise fuzzcore.Violation("a reply body that is not CBOR: %r" % (bytes(body[:40]),)) from None
    check(isinstance(rsp, dict), "a reply body that is not a map: %r" % (rsp,))
    if "rc" in rsp:
        check(type(rsp["rc"]) is int, "a reply with rc %r" % (rsp["rc"],))
    if "err" in rsp:
        e = rsp["err"]
        check(isinstance(e, dict) and type(e.get("rc")) is int and e.get("group") == ((req[4] << 8) | req[5]),
              "a reply with err %r" % (e,))
    return rsp


def _after_work(pkt):
    """An upload: a complete one is verified (the image's own signature) by the work after its reply, which the UDP
    server runs inside answer()."""
    return len(pkt) >= smp.HEADER_SIZE and pkt[4:6] == b"\x00\x01" and pkt[7] == 1


def _signed_by_a_listed_key(m, pkt):
    """Whether the request carries an envelope or token naming a key of the meter's trust store: only such a
    request may cost the meter a signature verification."""
    try:
        req = cbor.loads(memoryview(pkt)[smp.HEADER_SIZE:])
    except ValueError:
        return False
    if not isinstance(req, dict):
        return False
    for field in ("envelope", "token"):
        raw = req.get(field)
        if isinstance(raw, bytes):
            try:
                outer = cbor.loads(raw)
            except ValueError:
                continue
            if isinstance(outer, dict) and outer.get("signer") in m.keyhashes:
                return True
    return False


def _costs(m, pkt, n):
    check(n == 0 or _signed_by_a_listed_key(m, pkt), "a request no listed key signed cost the meter %d signature "
          "verification(s): anyone can make it pay that per request" % n)


def _console(m, pkt):
    server = m.server  # (a handler may build the meter again: the request's reply and work stay with this one)
    VERIFICATIONS[0] = 0
    r = server.respond(pkt)
    _costs(m, pkt, VERIFICATIONS[0])
    if len(pkt) < smp.HEADER_SIZE or pkt[0] & 7 not in (smp.OP_READ, smp.OP_WRITE):
        check(r is None, "an answer to a packet that gets none")
        return None
    check(r is not None, "no answer to a request")
    rsp = check_reply(pkt, r[0], r[1])
    after = server.after_reply  # loader/console.py: work after the reply (an upload's verification, a reset)
    if after is not None:
        server.after_reply = None
        after()
    return rsp


def _udp(m, pkt):
    sock = m.udp.sock
    sock.sent = []
    coro = m.udp.answer(pkt)
    VERIFICATIONS[0] = 0
    try:
        coro.send(None)
    except StopIteration:
        pass
    else:
        raise fuzzcore.Violation("the UDP answer waited on a socket that never blocks")
    if not _after_work(pkt):
        _costs(m, pkt, VERIFICATIONS[0])
    sent = sock.sent
    n = 0
    for d in sent:
        n += len(d)
    check(n <= AMPLIFY * len(pkt), "%d bytes sent for a %d-byte datagram from anyone" % (n, len(pkt)))
    if not sent:
        return None
    for d in sent:
        check(len(d) <= UDP_MAX, "a %d-byte datagram" % len(d))
    whole = b"".join(sent)
    return check_reply(pkt, whole[:smp.HEADER_SIZE], whole[smp.HEADER_SIZE:])


METER = Meter("smp_dispatch_dev", MODE, TRUST, PROTECTED)


def setup():
    METER.setup()


def run_on(m, data):
    if m.template is None:
        m.setup()
    os.chdir(m.base)  # the other meter of this process (dev, locked) may have been used last
    if m.dirty:
        m.restore()
    m.touched[0] = False
    before = m.baseline  # the template's: an input that kept the meter changed none of them
    out = []
    try:
        for ctl, pkt in records(data):
            if ctl & 1:
                if len(pkt) > UDP_MAX:
                    continue  # cannot arrive in one datagram
                out.append(_udp(m, pkt))
            else:
                if len(pkt) > smp.BUF_SIZE:
                    continue  # the console's decoder drops it
                out.append(_console(m, pkt))
    finally:
        m.dirty = m.touched[0]
    after = m.protected()
    for k in range(len(m.protect)):
        if before[k] != after[k]:
            m.dirty = True  # the next input starts from the template again
        check(before[k] == after[k], "%s changed with no signed command: %r -> %r" % (
            m.protect[k], before[k] and before[k][:80], after[k] and after[k][:80]))
    return out


def run(data):
    return run_on(METER, data)
