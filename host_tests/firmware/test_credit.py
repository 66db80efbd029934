from app import credit as cr

KWH = cr.MJ_PER_KWH


def refused(obj, words):
    try:
        cr.parse_tariff(obj)
    except cr.TariffError as e:
        assert words in str(e), (obj, str(e))
        return
    raise AssertionError("accepted: %r" % (obj,))


def test_remainders_are_carried_never_truncated():
    t = cr.parse_tariff({"flat": 650})
    led = cr.Ledger()
    led.credit(100000)
    total = 0
    step = 1234567  # mJ: about 1.2 kJ per second, 1.2 kW; each second costs 0.22 paise
    for _ in range(5000):
        led.charge(t, step, 1, 0)
        total += step
    assert 100000 - led.balance == 650 * total // KWH  # exactly what the whole energy costs
    assert led.rem == 650 * total % KWH
    # truncating each second's deduction would have charged nothing at all
    assert 650 * step // KWH == 0 and 100000 - led.balance > 1000


def test_slabs_split_the_energy_at_their_bounds_and_reset_each_month():
    t = cr.parse_tariff({"slabs": [[100, 450], [200, 650], [None, 800]]})
    led = cr.Ledger()
    assert led.charge(t, 150 * KWH, 1, 0) == 100 * 450 + 50 * 650
    assert led.charge(t, 100 * KWH, 1, 0) == 50 * 650 + 50 * 800
    led.new_month()
    assert led.charge(t, 1 * KWH, 1, 0) == 450


def test_critical_peak_overrides_tou_which_overrides_flat():
    t = cr.parse_tariff({"flat": 600, "tou": {"3": 900}, "cpp": [[1000, 2000, 2500]], "fixed_daily": 1200})
    led = cr.Ledger()
    assert led.charge(t, KWH, 1, 500) == 600
    assert led.charge(t, KWH, 3, 500) == 900
    assert led.charge(t, KWH, 3, 1500) == 2500 and led.charge(t, KWH, 1, 1999) == 2500
    assert led.charge(t, KWH, 1, 2000) == 600
    b = led.balance
    led.daily_charge(t)
    assert led.balance == b - 1200


def test_bad_tariffs_are_refused_by_name():
    refused([], "not an object")
    refused({}, "neither flat nor slabs")
    refused({"flat": -1}, "bad rate for flat")
    refused({"flat": 1.5}, "bad rate for flat")
    refused({"flat": True}, "bad rate for flat")
    refused({"flat": 600, "surge": 1}, "unknown tariff field surge")
    refused({"slabs": [[100, 450], [50, 600], [None, 700]]}, "slab bounds must rise")
    refused({"slabs": [[None, 450], [100, 600]]}, "only the last slab may be open")
    refused({"slabs": [[100, 450]]}, "the last slab must be open")
    refused({"flat": 600, "tou": {"9": 100}}, "bad tou zone 9")
    refused({"flat": 600, "cpp": [[2000, 1000, 100]]}, "bad cpp event")
    refused({"flat": 600, "fixed_daily": "10"}, "bad rate for fixed_daily")


def test_alerts_once_per_threshold_and_emergency_credit_once():
    t = cr.parse_tariff({"flat": 1000})
    led = cr.Ledger()
    led.credit(10000)
    assert led.alerts_due([30, 10, 0]) == []
    led.charge(t, 7 * KWH, 1, 0)  # 3000 left: 30 %
    assert led.alerts_due([30, 10, 0]) == [30] and led.alerts_due([30, 10, 0]) == []
    led.charge(t, 3 * KWH, 1, 0)  # 0 left
    assert led.alerts_due([30, 10, 0]) == [10, 0]
    assert led.take_emergency(2000) and not led.take_emergency(2000) and led.balance == 2000
    led.charge(t, 3 * KWH, 1, 0)
    assert led.balance == -1000
    led.credit(5000)  # the emergency credit used is repaid out of the top-up
    assert led.balance == 4000 and led.take_emergency(2000)


def test_ledger_record_round_trips_and_refuses_damage():
    led = cr.Ledger()
    led.credit(777)
    led.charge(cr.parse_tariff({"flat": 650}), 98765432, 1, 0)
    back = cr.Ledger()
    back.restore(led.record())
    assert back.record() == led.record()
    for bad in ([1, 2, 3], [0, -1, 0, 0, 0, 0], [0, KWH, 0, 0, 0, 0], [0, 0, 0, 0, 0, "1"], "x"):
        try:
            cr.Ledger().restore(bad)
            raise AssertionError("restored %r" % (bad,))
        except ValueError:
            pass


def test_prediction_of_the_time_left():
    # 1000 paise + 500 allowance at 1 kW and 650 paise/kWh: 1500 / 650 h = 8307 s
    assert cr.seconds_left(1000, 500, 1000, 650) == 1500 * 3600 // 650
    assert cr.seconds_left(1000, 0, 0, 650) is None and cr.seconds_left(-600, 500, 100, 650) == 0


def test_no_disconnection_windows():
    w = cr.parse_windows({"daily": [["18:00", "08:00"], ["12:30", "13:00"]], "weekdays": [6],
                          "holidays": ["2026-12-25"]})
    assert cr.in_window(w, 2026, 11, 30, 0, 18 * 60) and cr.in_window(w, 2026, 11, 30, 0, 7 * 60 + 59)
    assert not cr.in_window(w, 2026, 11, 30, 0, 8 * 60) and cr.in_window(w, 2026, 11, 30, 0, 12 * 60 + 45)
    assert cr.in_window(w, 2026, 11, 29, 6, 10 * 60) and cr.in_window(w, 2026, 12, 25, 4, 10 * 60)
    assert not cr.in_window(w, 2026, 12, 24, 3, 10 * 60)
    for bad in ({"daily": [["18:00"]]}, {"daily": [["25:00", "08:00"]]}, {"daily": [["08:00", "08:00"]]},
                {"weekdays": [7]}, {"holidays": ["2026-1-5"]}, []):
        try:
            cr.parse_windows(bad)
            raise AssertionError("accepted %r" % (bad,))
        except ValueError:
            pass
    # credit never disconnects while the time is unknown or inside a window, and not inside the allowance
    assert cr.must_disconnect(-501, 500, True, False)
    assert not cr.must_disconnect(-500, 500, True, False)
    assert not cr.must_disconnect(-10000, 500, False, False) and not cr.must_disconnect(-10000, 500, True, True)
