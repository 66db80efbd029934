"""A day of block load profile read through the DLMS UDP wrapper over the emulator's radio link model
(host_tests/bench/dlms_wrapper_read.py, on CPython, in virtual time: no host timing): the firmware's own wrapper
port and gurux's client complete the read on every profile despite the link's losses, duplicates, reorderings and
the radio's reconnection, thanks to the client's resends and the meter's repeated answers. The bench's figures are in
docs/BENCHMARKS.md; here only that each read completes, with the day's 96 rows."""

from __future__ import annotations

import pytest

pytest.importorskip("gurux_dlms")

from host_tests.bench import dlms_wrapper_read as bench  # noqa: E402
from host_tests.bench.dlms_day_read import two_days_of_rows  # noqa: E402


@pytest.mark.parametrize("profile", bench.PROFILES)
def test_a_day_of_block_load_profile_comes_through_a_lossy_link(profile):
    with two_days_of_rows():
        runs = [bench._session(profile, seed) for seed in (1, 2, 3)]
    assert all(r["completed"] for r in runs), runs
    assert all(r["s"] >= r["minimum_s"] for r in runs), runs
    assert sum(r["sent_again"] for r in runs) > 0, runs  # (the radio's reconnection alone outlasts the first wait)
