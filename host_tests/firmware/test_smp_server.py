import cbor
import fwtest
from loader import smp
from loader.os_group import OsGroup


class _Ctx:
    def __init__(self):
        self.board = {"id": "rpi_pico", "name": "Raspberry Pi Pico", "mcu": {"arch": "armv6m"}}
        self.meter_id = "m-1"
        self.mode = "development"
        self.app_version = "0.1.0"
        self.resets = []

    def request_reset(self, force=False):
        self.resets.append(force)


def _server():
    ctx = _Ctx()
    s = smp.Server()
    OsGroup(ctx).register(s)
    return s, ctx


def _req(op, group, cmd, payload, seq=7, version=1):
    body = cbor.dumps(payload)
    return smp.header(version, op, len(body), group, seq, cmd) + body


def _parse(rsp):
    return rsp[0], ((rsp[2] << 8) | rsp[3]), ((rsp[4] << 8) | rsp[5]), rsp[6], rsp[7], cbor.loads(rsp[8:])


def test_echo_v1_and_v2_answer_in_the_client_version():
    s, _ = _server()
    for version in (0, 1):
        b0, n, group, seq, cmd, body = _parse(s.handle(_req(smp.OP_WRITE, 0, 0, {"d": "hi"}, version=version)))
        assert b0 == (version << 3) | smp.OP_WRITE_RSP and group == 0 and seq == 7 and cmd == 0
        assert body == {"r": "hi"}


def test_params_report_the_decoder_limit():
    s, _ = _server()
    body = _parse(s.handle(_req(smp.OP_READ, 0, 6, {})))[5]
    assert body == {"buf_size": smp.BUF_SIZE, "buf_count": 1}


def test_info_fields_and_bad_format():
    s, _ = _server()
    assert _parse(s.handle(_req(smp.OP_READ, 0, 7, {"format": "i"})))[5] == {"output": "rpi_pico"}
    out = _parse(s.handle(_req(smp.OP_READ, 0, 7, {"format": "a"})))[5]["output"]
    assert out.startswith("MicroPython m-1 ") and "app-0.1.0" in out and out.endswith("armv6m rpi_pico meterkit")
    assert _parse(s.handle(_req(smp.OP_READ, 0, 7, {"format": "q"})))[5] == {"err": {"group": 0, "rc": 2}}
    assert _parse(s.handle(_req(smp.OP_READ, 0, 7, {"format": "q"}, version=0)))[5] == {"rc": smp.EINVAL}


def test_reset_asks_the_context():
    s, ctx = _server()
    assert _parse(s.handle(_req(smp.OP_WRITE, 0, 5, {})))[5] == {}
    assert ctx.resets == [False]
    assert _parse(s.handle(_req(smp.OP_READ, 0, 5, {})))[5] == {"rc": smp.ENOTSUP}


def test_malformed_requests_get_documented_errors():
    s, _ = _server()
    assert _parse(s.handle(_req(smp.OP_WRITE, 0, 0, {"d": 5})))[5] == {"rc": smp.EINVAL}
    assert _parse(s.handle(_req(smp.OP_WRITE, 0, 0, [1, 2])))[5] == {"rc": smp.EINVAL}
    assert _parse(s.handle(_req(smp.OP_WRITE, 64, 0, {})))[5] == {"rc": smp.ENOTSUP}
    bad_len = bytearray(_req(smp.OP_WRITE, 0, 0, {"d": "x"}))
    bad_len[3] += 1
    assert _parse(s.handle(bytes(bad_len)))[5] == {"rc": smp.EINVAL}
    bad_cbor = smp.header(1, smp.OP_WRITE, 2, 0, 1, 0) + b"\xa1\xff"
    assert _parse(s.handle(bad_cbor))[5] == {"rc": smp.EINVAL}
    assert s.errors == 5


def test_responses_and_runts_get_no_answer():
    s, _ = _server()
    assert s.handle(b"\x01\x02") is None
    assert s.handle(_req(smp.OP_READ_RSP, 0, 0, {})) is None
    assert s.handle(_req(smp.OP_WRITE_RSP, 0, 0, {})) is None


def test_a_handler_error_with_group_rc():
    s, _ = _server()

    def refuse(req):
        raise smp.SmpError(smp.EACCESSDENIED, 9)

    s.register(64, 1, refuse)
    assert _parse(s.handle(_req(smp.OP_WRITE, 64, 1, {})))[5] == {"err": {"group": 64, "rc": 9}}
    assert _parse(s.handle(_req(smp.OP_WRITE, 64, 1, {}, version=0)))[5] == {"rc": smp.EACCESSDENIED}
    e = fwtest.raises(smp.SmpError, refuse, {})
    assert e.rc == smp.EACCESSDENIED


def test_a_read_the_heap_cannot_serve_is_tried_again_then_busy_and_a_write_is_out_of_memory():
    s, _ = _server()
    calls = []

    def short_once(req):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError  # what the first attempt left behind is collected, then the read is tried again
        return {"n": len(calls)}

    def short(req):
        raise MemoryError

    s.register(64, 1, short_once, write=False)
    s.register(64, 2, short)
    assert _parse(s.handle(_req(smp.OP_READ, 64, 1, {})))[5] == {"n": 2}
    assert s.errors == 0
    assert _parse(s.handle(_req(smp.OP_READ, 64, 2, {})))[5] == {"rc": smp.EBUSY}  # busy: retry, never ENOMEM
    assert _parse(s.handle(_req(smp.OP_WRITE, 64, 2, {})))[5] == {"rc": smp.ENOMEM}
    assert s.errors == 2


def test_a_write_the_heap_cannot_serve_runs_once_more_only_when_a_releaser_gave_heap_back():
    s, _ = _server()
    calls = []
    room = []  # what the releaser holds (a DLMS session's layers on a meter)

    def needs_room(req):
        calls.append(1)
        if room:
            raise MemoryError
        return {"done": len(calls)}

    def release():
        had = bool(room)
        room.clear()
        return had

    s.register(64, 3, needs_room)
    s.releasers.append(lambda: False)  # a releaser with nothing to give
    room.append(bytearray(64))
    assert _parse(s.handle(_req(smp.OP_WRITE, 64, 3, {})))[5] == {"rc": smp.ENOMEM}  # nothing given: not run again
    assert len(calls) == 1
    s.releasers.append(release)
    assert _parse(s.handle(_req(smp.OP_WRITE, 64, 3, {})))[5] == {"done": 3}  # given back: run once more
    assert room == [] and len(calls) == 3 and s.errors == 1
    room.append(bytearray(64))
    s.releasers[1] = lambda: False  # room that stays taken: the second attempt fails too, ENOMEM, never a third
    assert _parse(s.handle(_req(smp.OP_WRITE, 64, 3, {})))[5] == {"rc": smp.ENOMEM}
    assert len(calls) == 4


def test_a_handler_may_answer_with_its_reply_already_encoded():
    s, _ = _server()
    s.register(64, 3, lambda req: cbor.dumps({"kept": True}), write=False)
    assert _parse(s.handle(_req(smp.OP_READ, 64, 3, {})))[5] == {"kept": True}
    h, body = s.respond(_req(smp.OP_READ, 64, 3, {}))
    assert body == cbor.dumps({"kept": True}) and h == smp.header(1, smp.OP_READ_RSP, len(body), 64, 7, 3)
