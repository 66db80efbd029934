"""Benchmark and report: what IS 15959's block load profile (firmware/app/load_profile.py) costs the flash, on a
board's littlefs geometry (a real littlefs on CPython, host_tests/lfs_meter.py's NOR flash counting programs and
erases per block).

Rows are written as the meter writes them, one per demand period (`--period`, 900 s by default: the most rows a
day), for `--days` days after the profile is full (DAYS days of files: each new day's first row removes the oldest
day's file). The report gives flash programs and erases per row and per day and projects 15 years: littlefs
spreads erases over the volume's blocks (block_cycles), so the projection divides them by the blocks and compares
with the board's erase_cycles; the registers' and event logs' own writes come on top (docs/BENCHMARKS.md).

    python -m host_tests.bench.load_profile_wear [--board B] [--days N] [--period S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os

from host_tests.lfs_meter import Volume, unbind  # first: it puts the firmware on sys.path
from host_tests.registers_flash import WearFlash
from meterkit.boards import load_board

from app import load_profile  # noqa: E402  isort: skip

YEARS = 15
T0 = 1_800_000_000 - 1_800_000_000 % 86400  # a UTC midnight


def run(board_id: str, days: int, period: int) -> dict:
    board = load_board(board_id)
    geo = board["flash"]
    bs, bc = geo["block_size"], geo["block_count"]
    flash = WearFlash(bs * bc, bs)
    vol = Volume(flash, bs, bc, fresh=True)
    vol.mkdir("meter")
    load_profile.os = vol
    load_profile.open = vol.open
    per_day = 86400 // period
    try:
        t = T0
        for _ in range(load_profile.DAYS * per_day):  # the profile full first: the steady state is measured
            t += period
            load_profile.capture((t, 23000, 5000, 250000, 260000, 0))
        ops0, erases0 = flash.ops, sum(flash.erases.values())
        for _ in range(days * per_day):
            t += period
            load_profile.capture((t, 23000, 5000, 250000, 260000, 0))
        rows = days * per_day
        ops, erases = flash.ops - ops0, sum(flash.erases.values()) - erases0
        kept = load_profile.count()
        newest = sum(1 for _ in load_profile.rows(t - 86400 + 1, t))  # a range read of the last day finds them all
    finally:
        unbind()
        load_profile.os = os
        load_profile.__dict__.pop("open", None)
    erases_per_day = erases / days
    life = erases_per_day * 365 * YEARS / bc / geo["erase_cycles"]
    return {"board": board_id, "period_s": period, "rows_per_day": per_day, "days": days, "rows_kept": kept,
            "ops_per_row": round(ops / rows, 2), "erases_per_row": round(erases / rows, 3),
            "erases_per_day": round(erases_per_day, 2), "years": YEARS, "blocks": bc,
            "erase_cycles": geo["erase_cycles"], "life_used": round(life, 5), "newest_day_rows": newest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="esp32_devkitc", help="Board id (its flash geometry and erase cycles).")
    ap.add_argument("--days", type=int, default=20, help="Days of rows measured after the profile is full.")
    ap.add_argument("--period", type=int, default=900, choices=(300, 600, 900, 1800, 3600),
                    help="The demand period (app/meter_settings.py MD_PERIODS): a row each.")
    ap.add_argument("--json", action="store_true", help="One JSON object on stdout.")
    a = ap.parse_args()
    r = run(a.board, a.days, a.period)
    if a.json:
        print(json.dumps(r))
        return
    print(f"{r['board']}, a row every {r['period_s']} s ({r['rows_per_day']} a day, {r['rows_kept']} kept): "
          f"{r['ops_per_row']} flash ops and {r['erases_per_row']} erases per row, {r['erases_per_day']} erases a day")
    print(f"{YEARS} years, wear-levelled over {r['blocks']} blocks of {r['erase_cycles']} cycles: "
          f"{100 * r['life_used']:.2f} % of the flash's life")


if __name__ == "__main__":
    main()
