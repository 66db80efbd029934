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
