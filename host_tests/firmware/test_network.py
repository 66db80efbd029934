"""The meter's network setting and group 67 (app/network.py): the head-end checked by type and value, a bad stored
head-end read as none with an event (never a failed start), an unsigned change refused with nothing stored, the
network task idle without a module or a head-end (no link started), and link events one of a kind per
quiet period (app/network_link.py)."""
import asyncio

import fwtest
from app import events, network
from loader import settings, smp, store


class Log:
    def __init__(self):
        self.got = []

    def add(self, code, detail=""):
        self.got.append((code, detail))


class Ctx:
    meter_id = "m-1"
    mode = "development"
    started_ms = 0

    def __init__(self, modem=True):
        self.board = {"id": "esp32_devkitc", "modem": {"type": "bc660k"}} if modem else {"id": "esp32_devkitc"}
        self.refusals = [None, 0, ""]
        self.server = smp.Server()
        self.server.op = smp.OP_WRITE  # handlers called directly stand for a write request


GOOD = {"ip": "10.64.0.1", "port": 4059, "uplink_s": 600}


def test_a_head_end_is_checked_by_type_and_value():
    assert network.check_headend(None) is None and network.check_headend(GOOD) is None
    assert network.check_headend(dict(GOOD, uplink_s=0)) is None
    assert network.check_headend(dict(GOOD, ip="fd00::1")) is None
    assert network.check_headend(dict(GOOD, dlms_port=4059)) is None  # DLMS through the wrapper too
    for bad, why in ((dict(GOOD, port=4059.0), "port"), (dict(GOOD, port=True), "port"), (dict(GOOD, port=0), "port"),
                     (dict(GOOD, port=65536), "port"), (dict(GOOD, uplink_s=5), "uplink_s"),
                     (dict(GOOD, uplink_s=600.0), "uplink_s"), (dict(GOOD, ip="meters.example"), "ip"),
                     (dict(GOOD, ip='10.0.0.1",1'), "ip"), (dict(GOOD, ip=""), "ip"), (dict(GOOD, ip=None), "ip"),
                     ({"ip": "10.0.0.1", "port": 1}, "not {ip"), (dict(GOOD, extra=1), "not {ip"),
                     ([GOOD], "not {ip"), ("10.0.0.1:4059", "not {ip"),
                     (dict(GOOD, dlms_port=4059.0), "dlms_port"), (dict(GOOD, dlms_port=True), "dlms_port"),
                     (dict(GOOD, dlms_port=0), "dlms_port"), (dict(GOOD, dlms_port=65536), "dlms_port"),
                     (dict(GOOD, dlms_port=None), "dlms_port"), (dict(GOOD, dlms_port=1, extra=1), "not {ip")):
        why_got = network.check_headend(bad)
        assert why_got is not None and why_got.startswith(why), (bad, why_got)


def test_a_bad_stored_head_end_is_none_with_an_event_and_the_network_stays_off():
    def body():
        fwtest.write(settings.PATH, b'{"headend": {"ip": "10.64.0.1", "port": "4059", "uplink_s": 0}}')
        log = Log()
        net = network.Network(Ctx(), log)
        assert net.headend is None and log.got == [(events.SETTINGS_INVALID, "headend: bad value for headend")]
        asyncio.run(net.run())  # returns at once: no head-end, no driver
        assert net.link is None and net.status()["link"] == "none"

    fwtest.in_workdir(body, "meter")


def test_without_a_module_the_network_never_starts_even_with_a_head_end():
    def body():
        fwtest.write(settings.PATH, b'{"headend": {"ip": "10.64.0.1", "port": 4059, "uplink_s": 0}}')
        net = network.Network(Ctx(modem=False), Log())
        assert net.headend == {"ip": "10.64.0.1", "port": 4059, "uplink_s": 0}
        asyncio.run(net.run())
        st = net.status()
        assert net.link is None and st["fitted"] is False and st["link"] == "none" and "modem" not in st

    fwtest.in_workdir(body, "meter")


def test_an_unsigned_head_end_change_is_refused_and_nothing_is_stored():
    def body():
        fwtest.write(settings.PATH, b'{"recovery_relay": "hold"}')
        log = Log()
        net = network.Network(Ctx(), log)
        e = fwtest.raises(smp.SmpError, net.headend_cmd, {"headend": GOOD})
        assert (e.rc, e.group_rc) == (smp.EACCESSDENIED, network.RC_NOT_AUTHORISED)
        assert net.status()["last_refusal"] == "meter.headend: no-envelope"
        assert log.got == [(events.COMMAND_REFUSED, "meter.headend: no-envelope")]
        assert store.read_json(settings.PATH, {}) == {"recovery_relay": "hold"} and net.saved is None
        assert net.headend_cmd({}) == {"headend": None, "now": None}

    fwtest.in_workdir(body, "meter")


def test_link_events_are_recorded_one_of_a_kind_per_quiet_period():
    fwtest.in_workdir(_quiet, "meter")


def _quiet():
    from app import network_link

    log = Log()
    net = network_link.Link(Ctx(), log, GOOD)
    for what in ("up", "lost", "up", "lost", "silent", "pulsed", "restarted", "denied", "nonsense"):
        net._event(what)
    assert [c for c, _ in log.got] == [events.LINK_UP, events.LINK_LOST, events.MODULE_SILENT, events.MODULE_PULSED,
                                       events.MODULE_RESTARTED, events.REGISTRATION_DENIED]
    assert net.quieted == 2 and events.MODULE_SILENT == 209


def test_a_read_request_never_changes_the_head_end():
    # a READ of 67/1 carrying a head-end is answered as a read: not even refused, nothing checked or stored
    import cbor

    def body():
        fwtest.write(settings.PATH, b'{"recovery_relay": "hold"}')
        log = Log()
        ctx = Ctx()
        net = network.Network(ctx, log)
        ctx.server.register(67, 1, net.headend_cmd)
        b = cbor.dumps({"headend": GOOD})
        rsp = cbor.loads(ctx.server.handle(smp.header(1, smp.OP_READ, len(b), 67, 0, 1) + b)[8:])
        assert rsp == {"headend": None, "now": None} and log.got == []
        assert store.read_json(settings.PATH, {}) == {"recovery_relay": "hold"}

    fwtest.in_workdir(body, "meter")


class _Stop(Exception):
    pass


class _Asyncio:
    """app/network_link.py's asyncio for the push loop: every sleep returns at once and is noted; the loop is stopped
    at the `limit`th."""

    def __init__(self, limit):
        self.slept = []
        self.limit = limit

    async def sleep_ms(self, ms):
        self._note(ms)

    async def sleep(self, s):
        self._note(s * 1000)

    def _note(self, ms):
        self.slept.append(ms)
        if len(self.slept) >= self.limit:
            raise _Stop


class _Ring:
    boot_seq = 0

    def __init__(self, rows):
        self.rows = rows
        self.seq = rows[-1][0]

    def after(self, seq):
        return [r for r in self.rows if r[0] > seq]


class _Sock:
    def __init__(self, fails):
        self.fails = fails  # datagram -> the exceptions its sends raise, in turn
        self.sent = []

    async def send(self, d):
        left = self.fails.get(d)
        if left:
            raise left.pop(0)
        self.sent.append(d)


def _pushed(fails, limit=40):
    from app import modem, network_link

    class Modem:
        link = modem.LINK_UP

    log = Log()
    link = network_link.Link(Ctx(), log, GOOD)
    link._push = lambda s, code, at: b"alert-%d" % s
    sock = _Sock(fails)
    clock = _Asyncio(limit)
    real = network_link.asyncio
    network_link.asyncio = clock
    try:
        co = link._pushes(Modem(), sock)
        link.log = _Ring([(1, 251, 0), (2, 101, 0)])
        try:
            co.send(None)
        except _Stop:
            pass
    finally:
        network_link.asyncio = real
    return link, sock, clock


def test_an_alert_the_module_keeps_refusing_is_passed_over_after_its_retries():
    from app import modem

    link, sock, clock = _pushed({b"alert-1": [modem.SendFailed("SEND FAIL") for _ in range(9)]})
    assert sock.sent == [b"alert-2"] and link.pushes == 1 and link.push_failures == 4, (sock.sent, link.push_failures)
    # three retries, each a repetition delay (60 s) after the try before: the retry's wait, then the loop's poll
    assert clock.slept.count(55000) == 3 and "55000, 5000" in str(clock.slept), clock.slept
    assert "SendFailed" in link.push_error


def test_an_alert_held_back_by_the_meter_s_heap_or_a_link_gone_is_retried_without_limit():
    from app import modem

    fails = [MemoryError() for _ in range(3)] + [modem.LinkDown("down") for _ in range(3)]
    link, sock, clock = _pushed({b"alert-1": fails}, limit=60)
    assert sock.sent == [b"alert-1", b"alert-2"] and link.push_failures == 6, (sock.sent, link.push_failures)
    assert clock.slept.count(55000) == 6, clock.slept
