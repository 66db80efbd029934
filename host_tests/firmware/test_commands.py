"""Locked-meter authorisation of state-changing SMP requests (loader/commands.py, image and OS groups)."""
import cbor
import fwtest
from loader import commands, envelope, image_group, mode, smp, store, trust


class Ctx:
    meter_id = "m-1"
    mode = mode.LOCKED
    board = {"id": "esp32_devkitc", "flash": {"block_size": 4096, "block_count": 512}}
    slot = None
    test_boot = False
    facts = None
    started_ms = 0

    def __init__(self):
        self.server = smp.Server()
        self.resets = 0
        self.refused = ""

    def request_reset(self, force=False):
        self.resets += 1


def _locked():
    fwtest.write(trust.PATH, fwtest.fixture("trust_v2.cbor"))


def _reason(fn, *args):
    return fwtest.raises(commands.Refused, fn, *args).reason


def _events():
    return [e["detail"] for e in store.read_json("meter/update-events.json", [])]


def test_an_envelope_authorises_exactly_its_command_once():
    def body():
        _locked()
        ctx = Ctx()
        env = fwtest.fixture("env_confirm.cbor")
        b = commands.authorise(ctx, {"envelope": env}, "image.state", {"confirm": True})
        assert b["cmd"] == "image.state"
        assert _reason(commands.authorise, ctx, {"envelope": env}, "image.state", {"confirm": True}) == \
            envelope.E_REPLAY
        assert _events()[-1] == "image.state: replayed"

    fwtest.in_workdir(body, "meter")


def test_a_burst_of_refusals_writes_the_update_log_once_and_counts_the_rest():
    import time

    def body():
        _locked()
        ctx = Ctx()
        for _ in range(5):  # anyone on the open port can send these as fast as the line allows
            _reason(commands.authorise, ctx, {}, "image.state", {"confirm": True})
        assert _events() == ["image.state: no-envelope"] and ctx.refusals[1] == 4
        ctx.refusals[0] = time.ticks_add(time.ticks_ms(), -1)  # the burst is over
        _reason(commands.authorise, ctx, {}, "image.erase", {"slot": 1})
        assert _events() == ["image.state: no-envelope", "+4 more, the last: image.state: no-envelope",
                             "image.erase: no-envelope"]

    fwtest.in_workdir(body, "meter")


def test_refusals_name_their_reason():
    def body():
        _locked()
        ctx = Ctx()
        env = fwtest.fixture("env_confirm.cbor")
        assert _reason(commands.authorise, ctx, {}, "image.state", {"confirm": True}) == commands.E_MISSING
        assert _reason(commands.authorise, ctx, {"envelope": env}, "image.state", {"confirm": False}) == \
            commands.E_MISMATCH
        assert _reason(commands.authorise, ctx, {"envelope": env}, "image.erase", {"confirm": True}) == \
            commands.E_MISMATCH
        other = Ctx()
        other.meter_id = "m-2"
        assert _reason(commands.authorise, other, {"envelope": env}, "image.state", {"confirm": True}) == \
            envelope.E_METER
        assert _reason(commands.authorise, ctx, {"envelope": b"\x01"}, "image.state", {}) == envelope.E_MALFORMED
        # the refused attempts did not use the id up
        commands.authorise(ctx, {"envelope": env}, "image.state", {"confirm": True})

    fwtest.in_workdir(body, "meter")


def test_a_locked_meter_obeys_no_development_key():
    def body():
        fwtest.write(trust.PATH, fwtest.fixture("trust_dev_command.cbor"))
        env = fwtest.fixture("env_confirm.cbor")
        assert _reason(commands.authorise, Ctx(), {"envelope": env}, "image.state", {"confirm": True}) == \
            commands.E_DEV_KEY

    fwtest.in_workdir(body, "meter")


def test_the_used_id_list_is_bounded_and_never_lets_a_dropped_id_replay():
    def body():
        _locked()
        ctx = Ctx()
        envs = cbor.loads(fwtest.fixture("env_many.cbor"))
        for e in envs[:commands.IDS_KEPT + 3]:
            commands.authorise(ctx, {"envelope": e}, "image.erase", {"slot": 1})
        rec = store.read_json(commands.IDS)
        assert len(rec["ids"]) == commands.IDS_KEPT
        for e in envs[:commands.IDS_KEPT + 3]:  # dropped (below the floor) or kept: every one is refused
            assert _reason(commands.authorise, ctx, {"envelope": e}, "image.erase", {"slot": 1}) == envelope.E_REPLAY
        commands.authorise(ctx, {"envelope": envs[-1]}, "image.erase", {"slot": 1})

    fwtest.in_workdir(body, "meter")


def test_a_corrupt_id_list_refuses_what_expired_and_records_it():
    def body():
        _locked()
        fwtest.write(commands.IDS, b"{not json")
        ctx = Ctx()
        commands.authorise(ctx, {"envelope": fwtest.fixture("env_confirm.cbor")}, "image.state", {"confirm": True})
        assert "command-ids-lost" in [e["event"] for e in store.read_json("meter/update-events.json", [])]
        assert store.read_json(commands.IDS)["floor"] > 1700000000

    fwtest.in_workdir(body, "meter")


def _call(server, group, cmd, op, req):
    payload = cbor.dumps(req)
    frame = smp.header(1, op, len(payload), group, 7, cmd) + payload
    return cbor.loads(server.handle(frame)[smp.HEADER_SIZE:])


def test_a_locked_image_group_needs_an_envelope_for_state_write_and_erase():
    def body():
        _locked()
        ctx = Ctx()
        g = image_group.ImageGroup(ctx)
        g.register(ctx.server)
        rsp = _call(ctx.server, smp.GROUP_IMAGE, 0, smp.OP_WRITE, {"confirm": True})
        assert rsp == {"rc": smp.EACCESSDENIED}
        assert _call(ctx.server, 64, 0, smp.OP_READ, {})["refused"] == commands.E_MISSING
        rsp = _call(ctx.server, smp.GROUP_IMAGE, 5, smp.OP_WRITE, {"slot": 1})
        assert rsp == {"rc": smp.EACCESSDENIED}
        envs = cbor.loads(fwtest.fixture("env_many.cbor"))
        assert _call(ctx.server, smp.GROUP_IMAGE, 5, smp.OP_WRITE, {"slot": 1, "envelope": envs[0]}) == {}
        # reading stays open
        assert "images" in _call(ctx.server, smp.GROUP_IMAGE, 0, smp.OP_READ, {})

    fwtest.in_workdir(body, "meter")


def test_a_locked_meter_rate_limits_resets_unless_the_reset_is_signed():
    import time

    from loader import os_group
    from loader.wallclock import Uptime

    def body():
        _locked()
        ctx = Ctx()
        ticks = [time.ticks_ms()]
        ctx.uptime = Uptime(lambda: ticks[0])
        os_group.OsGroup(ctx).register(ctx.server)
        assert _call(ctx.server, 0, 5, smp.OP_WRITE, {}) == {"rc": smp.EBUSY}
        ticks[0] = time.ticks_add(ticks[0], os_group.RESET_MIN_UPTIME_MS)
        assert _call(ctx.server, 0, 5, smp.OP_WRITE, {}) == {}
        for _ in range(8):  # a week up, asked daily: past ticks_ms's half period, no boot window again
            ticks[0] = time.ticks_add(ticks[0], 86400000)
            ctx.uptime.seconds()
        assert _call(ctx.server, 0, 5, smp.OP_WRITE, {}) == {}
        assert _call(ctx.server, 0, 5, smp.OP_WRITE, {"envelope": fwtest.fixture("env_reset.cbor")}) == {}
        assert ctx.refused == ""
        assert _call(ctx.server, 0, 5, smp.OP_WRITE, {"envelope": fwtest.fixture("env_reset.cbor")}) == \
            {"rc": smp.EACCESSDENIED}
        assert ctx.refused == "replayed"  # the update status reports why (ota names it)
        assert ctx.resets == 3
        ctx.mode = mode.DEVELOPMENT
        assert _call(ctx.server, 0, 5, smp.OP_WRITE, {}) == {}

    fwtest.in_workdir(body, "meter")


def test_an_envelope_refused_without_a_signature_check_costs_none():
    """Anyone can send a request with an `envelope` field: a malformed one, or one from a key the trust store does not
    name, is refused before the store's root signature is checked (an Ed25519 verification per request, up to
    seconds on a board: found by meter-fuzz smp_dispatch_locked). A key the store names still costs the checks."""
    import ed25519

    real = ed25519.verify
    calls = []

    def counting(*args):
        calls.append(1)
        return real(*args)

    def body():
        _locked()
        ctx = Ctx()
        req = {"confirm": True}
        env = cbor.loads(fwtest.fixture("env_confirm.cbor"))
        stranger = cbor.dumps({"body": env["body"], "signer": bytes(32), "sig": env["sig"]})
        ed25519.verify = counting
        try:
            for raw, want in ((b"x", envelope.E_MALFORMED), (cbor.dumps({"body": b"", "signer": b"", "sig": b""}),
                                                             envelope.E_MALFORMED),
                              (stranger, envelope.E_UNKNOWN_KEY)):
                assert _reason(commands.authorise, ctx, dict(req, envelope=raw), "image.state", req) == want
            assert calls == []
            ctx.mode = mode.DEVELOPMENT
            assert _reason(commands.authorise, ctx, dict(req, envelope=stranger), "image.state", req) == \
                envelope.E_UNKNOWN_KEY and calls == []
            ctx.mode = mode.LOCKED
            altered = cbor.dumps(dict(env, sig=bytes(64)))  # a key the store names: its signature is checked
            assert _reason(commands.authorise, ctx, dict(req, envelope=altered), "image.state", req) == \
                envelope.E_SIGNATURE and len(calls) == 2
            assert commands.authorise(ctx, dict(req, envelope=fwtest.fixture("env_confirm.cbor")), "image.state",
                                      req)["cmd"] == "image.state"
        finally:
            ed25519.verify = real

    fwtest.in_workdir(body, "meter")


def test_the_uptime_counts_on_past_the_ticks_wrap():
    """loader/wallclock.py Uptime: a ticks_diff from the start went negative after 6.2 days up (ticks_ms wraps every
    2**30 ms); counted on from each call (the metering asks each second), it keeps counting for years."""
    import time

    from loader.wallclock import Uptime

    ticks = [time.ticks_add(0, -5000)]  # a start 5 s before the ticks wrap to 0
    up = Uptime(lambda: ticks[0])
    assert up.seconds() == 0
    for _ in range(40):  # 40 days, asked every 1,000.5 s (the metering asks every second)
        for _ in range(86):
            ticks[0] = time.ticks_add(ticks[0], 1000500)
            up.seconds()
        ticks[0] = time.ticks_add(ticks[0], 86400000 - 86 * 1000500)
    assert up.seconds() == 40 * 86400 and up.ms() == 40 * 86400000
    ticks[0] = time.ticks_add(ticks[0], 1999)
    assert up.seconds() == 40 * 86400 + 1 and up.ms() == 40 * 86400000 + 1999
