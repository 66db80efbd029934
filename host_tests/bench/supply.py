"""Benchmark and report: the prepaid supply in the emulator (issue 6).

On the BL0942 boards, the month: each day 3000 of credit at 17:00 local runs out inside the 18:00-08:00 window, no
cut until 08:00, the cut within 60 s after it, a top-up closes the relay; on the way, tokens out of order, a
load-limit trip, emergency credit from the button and an RTC loss (supply_scenario.month). On the ADC boards, which
run near 50x at max speed, the five-hour scenario (supply_scenario.hours). Records the top-up round trip (command
sent to relay closed, as `ota meter topup` sees it), where each cut came after its window, and the wall time.

    python -m host_tests.bench.supply [--board B ...] [--days 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from host_tests import supply_scenario as S
from host_tests.emu import Emulator

BL0942_BOARDS = ["rpi_pico_bl0942", "esp32_devkitc_bl0942"]
ADC_BOARDS = ["rpi_pico", "esp32_devkitc"]


def run(board: str, days: int) -> dict:
    # the console is kept (a traceback is the first thing to read when a run stops): state/bench-supply-<board>.log
    log = Path(__file__).resolve().parents[2] / "state" / f"bench-supply-{board}.log"
    log.parent.mkdir(exist_ok=True)
    os.environ["METERKIT_EMU_CONSOLE_LOG"] = str(log)
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(Path(tmp) / "meter", board=board)
        try:
            emu.wait_boots(1)
            base = time.time() + 86400
            day = [time.strftime("%Y-%m-%d", time.gmtime(base + k * 86400)) for k in range(days + 1)]

            # heap after a collection (ctl status collects first), board-scaled, once the supply is set and after
            # each step: the event ring fills (64 events) in the first days, then the live data must stay flat
            heap: list[int] = []

            def sample_heap() -> str:
                dev = emu.status().get("device")
                if dev is None:
                    return "heap not read (not answering)"
                heap.append(dev["heap_free_board_estimate"])
                return f"heap free {heap[-1] // 1024} KB"

            def progress(what: str) -> None:
                print(f"{board} {what}; {sample_heap()}", file=sys.stderr, flush=True)

            if board in ADC_BOARDS:
                s = S.start_day(emu, day[0], S.SHORT_SETTINGS)
                sample_heap()
                r = S.hours(s, day[0], progress)
                cuts, sim = [r["cut_after_s"]], "5 hours"
            else:
                s = S.start_day(emu, day[0])
                sample_heap()
                r = S.month(s, day, progress)
                cuts, sim = r["cut_after_s"], f"{days} days"
        finally:
            emu.stop()
    return {"board": board, "simulated": sim, "wall_s": round(r["wall_s"], 1), "cut_after_s": [min(cuts), max(cuts)],
            "topup_s_median": round(statistics.median(s.topup_s), 3), "topup_s_max": round(max(s.topup_s), 3),
            "topups": len(s.topup_s),
            "heap_free": {"start": heap[0], "min": min(heap), "end": heap[-1],
                          "min_last_half": min(heap[len(heap) // 2:])}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", help="Board id (repeatable; default: all four).")
    ap.add_argument("--days", type=int, default=30, help="Days of the month scenario on BL0942 boards (>= 9).")
    ap.add_argument("--json", action="store_true", help="One JSON object per board on stdout (progress goes to stderr).")
    a = ap.parse_args()
    if a.days < 9:
        ap.error("--days: the month scenario's events need at least 9 days")
    for board in a.board or BL0942_BOARDS + ADC_BOARDS:
        r = run(board, a.days)
        if a.json:
            print(json.dumps(r))
            continue
        h = r["heap_free"]
        print(f"{r['board']}: {r['simulated']} in {r['wall_s']:.0f} s wall; cuts {r['cut_after_s'][0]}-"
              f"{r['cut_after_s'][1]} s after their window; top-up to relay closed (SMP round trip) median "
              f"{r['topup_s_median']:.3f} s, max {r['topup_s_max']:.3f} s over {r['topups']}; heap free after a "
              f"collection {h['start'] // 1024} KB at the start, {h['min'] // 1024} KB at least, "
              f"{h['min_last_half'] // 1024} KB at least in the second half, {h['end'] // 1024} KB at the end")


if __name__ == "__main__":
    main()
