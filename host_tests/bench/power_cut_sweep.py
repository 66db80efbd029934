"""Report (issue 4): a power cut at every flash operation of a whole update, on CPython over littlefs
(host_tests/lfs_meter.py), for each board's flash geometry and three images — the firmware's own app, the shared
76 kB reference app, and a loader image — with plain cuts and torn writes. Every point must recover (a valid signed app boots, old or
new, never a mix; rerunning the push completes the update). Prints a table, writes JSON, exits 1 on any failure.
The default test suite runs the Pico's plain cuts in full and samples the rest.

Usage: python -m host_tests.bench.power_cut_sweep [--board B ...] [--app own|reference ...] [--torn N ...]
       [--stride K] [--json out.json]"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from host_tests import lfs_meter as L
from host_tests.bench import reference_app_env
from meterkit.boards import load_board

REFERENCE_APP = L.ROOT.parent / "shared" / "bench" / "reference-app"


def reference_edit(tmp: Path):
    """Adds the reference app's 15 modules to the firmware's app package."""
    out = tmp / "reference"
    if not out.exists():
        env = reference_app_env(tmp)
        subprocess.run(["bash", str(REFERENCE_APP), str(out)], check=True, capture_output=True, env=env)

    def edit(app: Path) -> None:
        for p in (out / "py" / "app").glob("*.py"):
            shutil.copy2(p, app / f"ref_{p.name}")

    return edit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", dest="boards")
    ap.add_argument("--app", action="append", dest="apps", choices=["own", "reference", "loader"],
                    help="own: the firmware's app; reference: it plus the 76 kB reference app; loader: a loader "
                         "image (stage 0 picks the folder). Repeatable; default all three.")
    ap.add_argument("--torn", action="append", type=int, dest="torns",
                    help="Bytes of the interrupted operation that land (0: a clean cut). Repeatable.")
    ap.add_argument("--stride", type=int, default=1, help="Cut at every K-th operation only.")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    boards = args.boards or ["rpi_pico", "esp32_devkitc"]
    apps = args.apps or ["own", "reference", "loader"]
    torns = args.torns if args.torns is not None else [0, 16]
    rows = []
    failed = 0
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        for board_id in boards:
            board = load_board(board_id)
            base = bytes(L.Meter(board).snapshot())
            for app in apps:
                d = tmp / f"{board_id}-{app}"
                d.mkdir()
                edit = reference_edit(tmp) if app == "reference" else None
                kind = "loader" if app == "loader" else "app"
                img = L.build_image(board_id, "1.5.0", 1, d, edit=edit, kind=kind)
                old, new = ("1.0.0", "1.5.0+0") if kind == "loader" else ("0.1.0", "1.5.0")
                n = L.total_ops(board, base, img)
                for torn in torns:
                    t0 = time.monotonic()
                    outcomes: collections.Counter = collections.Counter()
                    failures = []
                    points = range(1, n + 1, args.stride)
                    for k in points:
                        try:
                            r = L.sweep_point(board, base, img, old, new, k, torn, kind=kind)
                            outcomes["old" if r["after_cut"] == old else "new"] += 1
                        except AssertionError as e:
                            failures.append(str(e))
                    row = {"board": board_id, "app": app, "image_bytes": len(img), "ops": n, "torn": torn,
                           "points": len(points), "failures": len(failures), "first_failures": failures[:5],
                           "boots_old": outcomes["old"], "boots_new": outcomes["new"],
                           "seconds": round(time.monotonic() - t0, 1)}
                    failed += len(failures)
                    rows.append(row)
                    print(f"{board_id:14} {app:9} image {len(img):6} B  ops {n:5}  torn {torn:3}  points "
                          f"{row['points']:5}  old/new after the cut {row['boots_old']:5}/{row['boots_new']:5}  "
                          f"failures {row['failures']}  {row['seconds']} s", flush=True)
                    L.unbind()
    result = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "stride": args.stride, "rows": rows}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
