"""The prepaid supply through the whole firmware in the emulator (issue 6), on the BL0942 Pico, driven as a field
team and a head-end would (`ota meter ...` with the command key, the button through `meter-emu ctl press`): about
five hours of device time with two no-disconnection windows — credit running out inside the first window and the
cut within 60 s of its end, two tokens entered out of order and a replay refused, a top-up closing the relay at
once, a load-limit trip and its lockout, the credit out again and emergency credit from the button, then an RTC
loss inside the second window (no cut while the time is unknown, the cut once the clock is set). The month-long
run of this on both BL0942 boards, and this one on the ADC boards, are `python -m host_tests.bench.supply`."""

from __future__ import annotations

import time

from host_tests import supply_scenario as S


def test_prepaid_evening_window_tokens_load_limit_emergency_and_rtc_loss(start_emulator):
    emu = start_emulator("rpi_pico_bl0942", speed="1")
    emu.wait_boots(1)
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    s = S.start_day(emu, day, S.SHORT_SETTINGS)
    r = S.hours(s, day, progress=lambda what: None)
    assert 0 <= r["cut_after_s"] <= S.CUT_LATE_S
    assert max(s.topup_s) < 5  # command sent to relay closed, as `ota meter topup` sees it
    codes = [e["code"] for e in s.events()]
    for code in (402, 403, 404, 405, 406, 407, 301, 302):  # cut, emergency, top-up, refused token, time unknown, ...
        assert code in codes, (code, codes)
