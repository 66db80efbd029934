"""`ota meter events --log`'s reading of a log row (ota_tool/supply.py): the supply's figures at each event in the
host's units, an earlier meter's rows without them, and a row of another shape refused by name."""

from __future__ import annotations

import pytest

from ota_tool.errors import Refused
from ota_tool.supply import logged_event


def test_a_row_s_snapshot_comes_out_in_volts_amperes_and_watt_hours():
    e = logged_event([7, 301, 1764547200, 23013, 5000, -982, 987654321])
    assert e == {"seq": 7, "code": 301, "event": "load disconnected", "rtc": 1764547200, "voltage": 230.13,
                 "current": 5.0, "pf": -0.982, "import_wh": 987654.321}


def test_unknown_figures_and_an_earlier_meter_s_rows_give_none():
    assert logged_event([1, 102, None, None, None, None, 5])["import_wh"] == 0.005
    assert logged_event([1, 102, None, None, None, None, 5])["voltage"] is None
    old = logged_event([3, 251, 1764547200])  # an app whose logs keep no snapshot
    assert old["voltage"] is old["current"] is old["pf"] is old["import_wh"] is None and old["event"] == "cover opened (tamper)"


@pytest.mark.parametrize("row", [[1, 2], [1, 2, 3, 4], [1, 2, 3, 4, 5, 6, 7, 8], (1, 251, 0), "x", None,
                                 [1, 251, 0, True, 1, 1, 1], [1, 251, 0, "230", 1, 1, 1], [1, 251, 0, 1.5, 1, 1, 1],
                                 [None, 251, 0], [1, None, 0]])
def test_a_row_of_another_shape_is_refused_by_name(row):
    with pytest.raises(Refused, match="event log row"):
        logged_event(row)


def test_the_text_shows_each_figure_the_meter_had_and_a_question_mark_for_the_others():
    from ota_tool.cli.meter import event_line

    line = event_line(logged_event([1, 301, 1764547200, 23013, None, -982, 5]))
    assert line == "     1 2025-12-01 00:00:00 301 load disconnected      230.13 V ? A PF -0.982 0.005 Wh", line
    assert event_line(logged_event([2, 102, None, None, None, None, None])).endswith("power restored"), \
        event_line(logged_event([2, 102, None, None, None, None, None]))
