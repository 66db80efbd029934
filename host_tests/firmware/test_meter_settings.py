import fwtest
from app import meter_settings as ms


def test_tou_table_parses_and_zones_follow_the_clock():
    t = ms.parse_tou([["00:00", 1], ["18:00", 3], ["06:00", 2], ["22:00", 1]])
    assert t == [(0, 1), (360, 2), (1080, 3), (1320, 1)]
    assert [ms.zone_at(t, m) for m in (0, 359, 360, 1079, 1080, 1319, 1320, 1439)] == [1, 1, 2, 2, 3, 3, 1, 1]


def test_bad_tou_tables_are_refused():
    for bad in ([], [["06:00", 1]], [["00:00", 9]], [["00:00", 1], ["00:00", 2]], [["24:00", 1]], "x",
                [["00:00", 1, 2]], [["0:00", 1]]):
        assert ms.parse_tou(bad) is None, bad


def test_settings_file_is_not_half_used():
    def body():
        conf, problem = ms.load()
        assert conf == ms.DEFAULTS and problem is None
        fwtest.write(ms.PATH, b'{"persist_interval_s": 30, "md_period_s": 900, "recovery_relay": "hold"}')
        conf, problem = ms.load()
        assert problem is None and conf["persist_interval_s"] == 30 and conf["md_period_s"] == 900
        fwtest.write(ms.PATH, b'{"persist_interval_s": 30, "md_period_s": 901}')
        conf, problem = ms.load()
        assert conf == ms.DEFAULTS and problem == "bad value for md_period_s"
        fwtest.write(ms.PATH, b'{"tou": [["06:00", 1]]}')
        assert ms.load()[1] == "bad value for tou"

    fwtest.in_workdir(body, "meter")


def test_a_calendar_change_is_checked_whole_and_merged_in_one_write():
    def body():
        assert ms.check_calendar({"tou": [["00:00", 1], ["18:00", 2]], "tz_offset_min": 0}) is None
        assert ms.check_calendar({"tou_weekend": None}) is None
        assert ms.check_calendar({"billing_day": 28}) is None and ms.check_calendar({"billing_day": 1}) is None
        for v in (0, 29, 31, 15.0, True, "15", None, [15]):  # a day in every month, an int by type (True is not 1)
            assert ms.check_calendar({"billing_day": v}) == "bad value for billing_day", v
        for bad, why in (({}, "not an object"), ([], "not an object"), ({"md_period_s": 900}, "unknown field md_period_s"),
                         ({"tou": [["06:00", 1]]}, "bad value for tou"), ({"tz_offset_min": 900}, "bad value for tz_offset_min"),
                         ({"tou": [["00:00", 1]], "tou_weekend": [["00:00", 9]]}, "bad value for tou_weekend")):
            assert ms.check_calendar(bad) == why, bad
        fwtest.write(ms.PATH, b'{"recovery_relay": "hold", "persist_interval_s": 30, "tou": [["00:00", 1]]}')
        ms.save_calendar({"tou": [["00:00", 1], ["18:00", 2]]})
        conf, problem = ms.load()
        assert problem is None and conf["tou"] == [["00:00", 1], ["18:00", 2]] and conf["persist_interval_s"] == 30
        import json

        assert json.loads(open(ms.PATH).read())["recovery_relay"] == "hold", "the loader's keys are kept"
        # a file whose other metering value is bad would drop the new calendar at the next boot: refused, unchanged
        fwtest.write(ms.PATH, b'{"persist_interval_s": 1}')
        e = fwtest.raises(ValueError, ms.save_calendar, {"tz_offset_min": 0})
        assert "persist_interval_s" in str(e)
        assert open(ms.PATH).read() == '{"persist_interval_s": 1}'
        # an unreadable file is replaced: loader and metering already run on their defaults
        fwtest.write(ms.PATH, b"{not json")
        ms.save_calendar({"tz_offset_min": 0})
        want = dict(ms.DEFAULTS)
        want["tz_offset_min"] = 0
        assert ms.load() == (want, None)

    fwtest.in_workdir(body, "meter")
