"""Benchmark and report: what IS 15959's event logs (firmware/app/event_logs.py) cost the flash, against the event
ring alone (app/events.py), on a board's littlefs geometry (a real littlefs on CPython, host_tests/lfs_meter.py's
NOR flash counting programs and erases per block).

N events of one kind are logged one after the other, first with the compartments, then with the ring alone; the
report gives flash operations and block erases per event, and projects 15 years at two rates: a busy meter's
IS 15959 events (power, relay, clock: `--per-day`, 40 by default) and the worst a consumer can cause, a terminal
cover toggled without end (one event a minute, the supply's hold). littlefs spreads erases over the free blocks
(block_cycles), so the projection divides the erases by the blocks the volume has and compares with the board's
erase_cycles; the metering registers' own writes (docs/BENCHMARKS.md, registers) come on top.

    python -m host_tests.bench.event_log_wear [--board B] [--events N] [--per-day N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os

from host_tests.lfs_meter import Volume, unbind  # first: it puts the firmware on sys.path
from host_tests.registers_flash import WearFlash
from meterkit.boards import load_board

from app import event_logs, events  # noqa: E402  isort: skip
import loader  # noqa: E402  isort: skip
from loader import store  # noqa: E402  isort: skip

YEARS = 15
COVER_PER_DAY = 24 * 60  # app/supply.py _COVER_HOLD_MS: one cover event a minute at most


def _measure(board: dict, n: int, code: int, compartments: bool) -> dict:
    geo = board["flash"]
    bs, bc = geo["block_size"], geo["block_count"]
    flash = WearFlash(bs * bc, bs)
    vol = Volume(flash, bs, bc, fresh=True)
    vol.mkdir("meter")
    for m in (store, event_logs):
        m.os = vol
        m.open = vol.open
    events.open = vol.open
    forget = loader.forget  # the app forgets app/event_logs.py after each add: the bound module object is kept
    loader.forget = lambda name: None if name == "app.event_logs" else forget(name)
    try:
        now = [1_800_000_000]
        log = events.EventLog(clock=lambda: now[0], logs=events.LOGS if compartments else None)
        log.load()
        for _ in range(60):  # the ring and the compartment full first: the steady state is measured
            now[0] += 60
            log.add(code, "warm-up")
        ops0, erases0 = flash.ops, sum(flash.erases.values())
        for _ in range(n):
            now[0] += 60
            log.add(code, "event")
        return {"ops_per_event": round((flash.ops - ops0) / n, 2),
                "erases_per_event": round((sum(flash.erases.values()) - erases0) / n, 3),
                "blocks": bc, "erase_cycles": geo["erase_cycles"]}
    finally:
        loader.forget = forget
        unbind()
        for m in (store, event_logs):
            m.os = os
            m.__dict__.pop("open", None)
        events.__dict__.pop("open", None)


def _life(per_event: dict, per_day: float) -> float:
    """The share of the flash's erase cycles the events use up in YEARS, wear-levelled over the volume."""
    erases = per_event["erases_per_event"] * per_day * 365 * YEARS
    return erases / per_event["blocks"] / per_event["erase_cycles"]


def run(board_id: str, n: int, per_day: float) -> dict:
    board = load_board(board_id)
    out: dict = {"board": board_id, "events": n, "per_day": per_day, "years": YEARS}
    for name, code in (("power", events.POWER_RESTORE), ("cover", events.COVER_OPEN)):
        with_logs = _measure(board, n, code, True)
        ring_only = _measure(board, n, code, False)
        out[name] = {"with_logs": with_logs, "ring_only": ring_only}
    busy = out["power"]["with_logs"]
    cover = out["cover"]["with_logs"]
    out["life_used_busy"] = round(_life(busy, per_day), 4)
    out["life_used_cover_flood"] = round(_life(cover, COVER_PER_DAY), 4)
    out["life_used_cover_flood_ring_only"] = round(_life(out["cover"]["ring_only"], COVER_PER_DAY), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="esp32_devkitc", help="Board id (its flash geometry and erase cycles).")
    ap.add_argument("--events", type=int, default=300, help="Events measured per kind.")
    ap.add_argument("--per-day", type=float, default=40.0, help="A busy meter's IS 15959 events a day.")
    ap.add_argument("--json", action="store_true", help="One JSON object on stdout.")
    a = ap.parse_args()
    r = run(a.board, a.events, a.per_day)
    if a.json:
        print(json.dumps(r))
        return
    for name in ("power", "cover"):
        w, o = r[name]["with_logs"], r[name]["ring_only"]
        print(f"{r['board']} {name} events: {w['ops_per_event']} flash ops and {w['erases_per_event']} erases per "
              f"event with the logs, {o['ops_per_event']} and {o['erases_per_event']} with the ring alone")
    print(f"{YEARS} years, wear-levelled over {r['power']['with_logs']['blocks']} blocks of "
          f"{r['power']['with_logs']['erase_cycles']} cycles: {r['per_day']:g} IS 15959 events a day use "
          f"{100 * r['life_used_busy']:.2f} % of the flash's life; a cover toggled once a minute for all of it "
          f"{100 * r['life_used_cover_flood']:.1f} % ({100 * r['life_used_cover_flood_ring_only']:.1f} % with the "
          f"ring alone)")


if __name__ == "__main__":
    main()
