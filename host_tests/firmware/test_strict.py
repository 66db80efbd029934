"""Values checked by type and value (loader/strict.py), identically on CPython and in the VM: 5, 5.0 and True are
different values for signed arguments and every settings checker; and a record damaged in shape on the flash is
treated as damaged (an event, a safe default), never as a crash at every start."""
import cbor
import fwtest
from app import calibrate, calibration, credit, disconnect, events, meter_settings, supply_settings
from loader import commands, envelope, mode, smp, starts, store, strict, trust


def test_is_int_is_number_and_same_tell_5_from_5_0_and_true():
    assert strict.is_int(5) and strict.is_int(2 ** 70) and not strict.is_int(5.0) and not strict.is_int(True)
    assert strict.is_int(5, 0, 6) and not strict.is_int(7, 0, 6) and not strict.is_int(-1, 0)
    assert strict.is_number(5) and strict.is_number(5.5) and not strict.is_number(True)
    assert not strict.is_number(float("nan")) and not strict.is_number(float("inf")) and not strict.is_number("5")
    assert strict.same({"a": [1, 2.0, "x", None, b"\x00"]}, {"a": [1, 2.0, "x", None, b"\x00"]})
    for a, b in ((5, 5.0), (5, True), (1, True), (0, False), ({"m": 5}, {"m": 5.0}), ([1], [True]),
                 ({1: "x"}, {True: "x"}), ({"a": 1}, {"a": 1, "b": 2}), ([1, 2], [1]), ("5", 5),
                 (float("nan"), float("nan")), (0.0, -0.0), ({"t": -0.0}, {"t": 0.0}), ([0.0], [-0.0])):
        assert not strict.same(a, b) and not strict.same(b, a), (a, b)
    for v in (0.0, -0.0, cbor.loads(b"\xf9\x80\x00"), 1.5):
        assert strict.same(v, v) and strict.same([v], [v]), v


class Ctx:
    meter_id = "m-1"
    mode = mode.LOCKED

    def __init__(self):
        self.server = smp.Server()
        self.refused = ""


def test_signed_arguments_are_compared_by_type():
    def body():
        fwtest.write(trust.PATH, fwtest.fixture("trust_v2.cbor"))
        env = fwtest.fixture("env_confirm.cbor")  # signed for {"confirm": True}
        for loose in ({"confirm": 1}, {"confirm": 1.0}):
            e = fwtest.raises(commands.Refused, commands.authorise, Ctx(), {"envelope": env}, "image.state", loose)
            assert e.reason == commands.E_MISMATCH, loose
        assert commands.authorise(Ctx(), {"envelope": env}, "image.state", {"confirm": True})["cmd"] == "image.state"

    fwtest.in_workdir(body, "meter")


def test_a_supply_config_signed_for_mode_5_is_not_one_for_5_0():
    from test_supply import _run, _setup, env

    def body():
        ctx, meter, sup, grp = _setup(settings=False)
        for loose in (5.0, True):
            e = fwtest.raises(smp.SmpError, grp.settings,
                              {"settings": {"control_mode": loose}, "envelope": env("settings_mode5")})
            assert e.group_rc is not None
        assert store.read_json(supply_settings.PATH, None) is None and sup.control.mode == disconnect.DEFAULT_MODE
        grp.settings({"settings": {"control_mode": 5}, "envelope": env("settings_mode5")})
        assert sup.control.mode == 5

    _run(body)


def test_settings_checkers_refuse_floats_and_bools_where_integers_are_meant():
    bad_supply = ({"control_mode": 5.0}, {"control_mode": True}, {"allowance": 10.0}, {"emergency": True},
                  {"thresholds": [30, True]}, {"thresholds": [30.0]}, {"windows": {"weekdays": [6.0]}},
                  {"windows": {"weekdays": [True]}}, {"windows": {"daily": 5}}, {"windows": {"weekdays": None}},
                  {"windows": {"holidays": 3}}, {"windows": {"nightly": []}}, {"tariff": {"flat": 650.0}},
                  {"tariff": {"flat": True}}, {"tariff": {"slabs": [[True, 400], [None, 500]]}},
                  {"tariff": {"flat": 1, "cpp": [[0, 10.0, 5]]}}, {"load_limit": {"threshold_w": 10.5}})
    for raw in bad_supply:
        fwtest.raises(supply_settings.SettingsError, supply_settings.parse, raw)
    assert supply_settings.parse({"control_mode": 5, "windows": {"weekdays": [6]}})["control_mode"] == 5
    for cal in ({"tz_offset_min": True}, {"tz_offset_min": 330.0}, {"tou": [["00:00", True]]},
                {"tou": [["00:00", 1.0]]}):
        assert meter_settings.check_calendar(cal) is not None, cal
    assert meter_settings.check_calendar({"tz_offset_min": 330}) is None


def test_stored_settings_of_the_wrong_type_are_not_used():
    def body():
        store.write_json(meter_settings.PATH, {"md_period_s": 1800.0})
        conf, problem = meter_settings.load()
        assert problem == "bad value for md_period_s" and conf["md_period_s"] == 1800
        store.write_json(supply_settings.PATH, {"control_mode": 6.0})
        s, problem = supply_settings.load()
        assert problem and s["control_mode"] == disconnect.DEFAULT_MODE

    fwtest.in_workdir(body, "meter")


class _Relay:
    def closed(self):
        return True


def test_damaged_records_are_treated_as_damaged_not_raised():
    def body():
        # the class-70 record with a float mode: ignored (connected, the mode from the settings)
        store.write_record("meter/disconnect.json", disconnect.RECORD, disconnect.RECORD_VERSION,
                           {"mode": 6.0, "state": 1, "reason": "x"})
        c = disconnect.DisconnectControl(_Relay(), 1)
        c.load()
        assert c.mode == 1 and c.state == disconnect.CONNECTED
        # the command ids with entries of the wrong shape: recorded as lost, the floor restarts, no TypeError
        fwtest.write(trust.PATH, fwtest.fixture("trust_v2.cbor"))
        for ids in ([5], ["ab"], [[5, 1]], [[]], [["zz" * 16, 1]], [["00" * 16, "x"]]):
            store.write_json(commands.IDS, {"floor": 0, "ids": ids})
            e = fwtest.raises(commands.Refused, commands.authorise, Ctx(), {}, "image.erase", {"slot": 1})
            assert e.reason == commands.E_MISSING
        # the event ring with sequence numbers of the wrong type: a new ring, numbers go on, no crash at add()
        store.write_record(events.PATH, events.RECORD, events.RECORD_VERSION, {"seq": "7", "floor": "9", "ring": []})
        log = events.EventLog(clock=lambda: None)
        log.load()
        log.add(events.POWER_RESTORE, "x")
        assert strict.is_int(log.seq) and log.ring[-1][1] == events.POWER_RESTORE
        store.write_record(events.PATH, events.RECORD, events.RECORD_VERSION,
                           {"seq": 3, "floor": 3, "ring": [[None, 101, None, "x"], [3, 102, None, "ok"]]})
        log = events.EventLog(clock=lambda: None)
        log.load()
        assert log.ring == [(3, 102, None, "ok")] and log.since(0) == [(3, 102, None, "ok")]
        # a calibration whose scale is zero (a division at every reading) or not finite: the board's defaults
        board = {"frontend": {"type": "bl0942"}, "calibration": {"v_scale": 1.0, "i_scale": 1.0, "p_scale": 1.0,
                                                                   "cf_per_kwh": 3000.0}}
        for bad in (0, 0.0, -5.0, float("inf"), True):
            calibrate.save(board, {"v_scale": 2.0, "i_scale": 1.0, "p_scale": 1.0, "cf_per_kwh": bad}, [], 0)
            consts, source = calibration.load(board)
            assert consts["cf_per_kwh"] == 3000.0 and consts["v_scale"] == 1.0 and source != "calibrated", (bad, source)
        # an integer constant too large for a float (JSON holds any size: float() of it was inf on MicroPython and
        # OverflowError on CPython, out of Metering's start-up; found by meter-fuzz boot_records)
        for big in (10 ** 400, -(10 ** 400), 1 << 128):
            fwtest.write(calibration.PATH, '{"kind": "calibration", "v": 1, "data": {"frontend": "bl0942", '
                         '"constants": {"v_scale": %d, "i_scale": 1.0, "p_scale": 1.0}}}' % big)
            consts, source = calibration.load(board)
            assert consts["v_scale"] == 1.0 and source == "board (stored calibration holds a bad v_scale)", source
        assert strict.is_number(1 << 127) and strict.is_number(-(1 << 127)) and not strict.is_number(10 ** 400)
        # the windows of a stored tariff with a list where an object is meant: a SettingsError, not a TypeError
        fwtest.raises(ValueError, credit.parse_windows, {"daily": 5})

    fwtest.in_workdir(body, "meter")


def test_three_failed_starts_set_the_settings_aside():
    def body():
        store.write_json("meter/supply.json", {"control_mode": 5})
        store.write_json("meter/config.json", {"md_period_s": 900})
        for k in range(starts.STRIKES_MAX):
            assert starts.begin(hung=False) == []
            if k == 1:
                assert starts.begin(hung=True) == []  # the last start hung: the watchdog ended it, one failure
            else:
                starts.crashed()  # the app raised before it proved healthy
        assert starts.begin() == ["meter/supply.json", "meter/config.json"]
        assert not store.exists("meter/supply.json")
        assert store.read_json("meter/supply.json" + starts.ASIDE) == {"control_mode": 5}
        starts.healthy()
        assert store.read_json(starts.PATH) == {"failed": 0}
        store.write_json(starts.PATH, {"failed": "3"})  # a damaged count starts again
        assert starts.begin() == [] and store.read_json(starts.PATH) == {"failed": 0, "open": True}
        starts.crashed()
        starts.crashed()  # a second report of the same start does not count twice
        assert store.read_json(starts.PATH) == {"failed": 1}

    fwtest.in_workdir(body, "meter")


def test_power_cuts_and_resets_during_start_up_never_set_the_settings_aside():
    # found by meter-fuzz attack: three quick power cuts on a locked meter set its signed supply settings aside,
    # and a prepaid meter without them never disconnects
    def body():
        store.write_json("meter/supply.json", {"control_mode": 5})
        for _ in range(4 * starts.STRIKES_MAX):
            assert starts.begin(hung=False) == []  # each start ended by a power cut or a reset, never healthy
        assert store.read_json("meter/supply.json") == {"control_mode": 5}
        starts.crashed()
        starts.begin()
        starts.crashed()
        for _ in range(3):
            starts.begin()  # power cuts between failures neither count nor clear the count
        starts.crashed()
        assert starts.begin() == ["meter/supply.json"]

    fwtest.in_workdir(body, "meter")


def test_the_envelope_expiry_must_be_an_integer():
    body = {"format": 1, "role": 2, "meter": "m-1", "cmd": "x", "args": {}, "id": b"\x01" * 16, "exp": True}
    e = fwtest.raises(envelope.EnvelopeError, envelope.open_envelope,
                      cbor.dumps({"body": cbor.dumps(body), "signer": b"\x00" * 8, "sig": b"\x00" * 64}), [], "m-1",
                      2000000000, lambda i: False)
    assert e.reason == envelope.E_MALFORMED


def test_a_credit_reset_repairs_a_damaged_record_and_never_reopens_a_spent_token():
    from test_supply import _run, _setup, env

    def body():
        ctx, meter, sup, grp = _setup()
        assert grp.topup({"token": env("token2")})["balance"] > 0  # token 2 spent
        # a healthy record: refused without force, and the envelope is not spent by the refusal
        e = fwtest.raises(smp.SmpError, grp.credit_reset,
                          {"balance": 5000, "top_tid": 1, "envelope": env("credit_reset")})
        assert e.group_rc == 6 and sup.last_refusal == "credit.reset: the credit record is not damaged"
        # with force (signed with it): the balance is the head-end's, token 2 stays spent although top_tid is 1
        r = grp.credit_reset({"balance": 5000, "top_tid": 1, "force": True, "envelope": env("credit_reset_force")})
        assert r == {"balance": 5000, "top_tid": 2} and sup.store.ledger.balance == 5000
        assert sup.log.ring[-1][1] == events.CREDIT_RESET and sup.log.ring[-1][3].endswith("-> 5000, tokens to 2 spent, forced")
        assert sup.store.tokens.check(2) is not None and sup.store.tokens.check(1) is not None
        # a damaged record: the plain reset is taken (the unspent envelope from above)
        sup.store.problem = "credit-record-damaged"
        assert grp.credit_reset({"balance": 5000, "top_tid": 1, "envelope": env("credit_reset")})["top_tid"] == 2
        # force must be a bool: 1 is not True
        e = fwtest.raises(smp.SmpError, grp.credit_reset,
                          {"balance": 5000, "top_tid": 1, "force": 1, "envelope": env("credit_reset_force")})
        assert e.group_rc == 5

    _run(body)
