"""Benchmark (issue 4): updating the emulated meter over its 115200-baud console (10 bits per byte: 11,520 B/s) with
the shared reference app (../shared/bench/reference-app: 15 modules, about 76 kB of .mpy) added to the firmware's
app, on both boards' heap sizes; median of N runs, each on a fresh meter:
- `ota push --test`: connect, upload, on-device verification, state write, reset, install at boot, reconnect
  (the command's wall time), and until the new app has confirmed itself;
- `smpmgr upgrade --confirm` with its defaults, and with --line-buffers matched to the meter's buf_size;
- `mpremote fs cp` of the same .mpy files (what a developer without OTA would do).
Wire efficiency = image bytes / (seconds x 11,520). Usage: python -m host_tests.bench.ota_push [--runs N] [--json F]"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from host_tests.bench import reference_app_env
from host_tests.emu import BIN, Emulator, ota, running

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_APP = ROOT.parent / "shared" / "bench" / "reference-app"
DEV_IMAGE_KEY = ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem"
LINE_RATE = 11520
BUF_SIZE = 2048
LINE_BUFFERS = BUF_SIZE // 128  # smpmgr's --line-buffers counts 128-byte console lines


def reference_firmware(tmp: Path) -> tuple[Path, Path, int]:
    """The firmware with the reference app's modules added to its app (as `ref_NAME.py`): (firmware folder, the
    reference app's build folder, the reference app's .mpy bytes)."""
    ref = tmp / "reference"
    env = reference_app_env(tmp)
    subprocess.run(["bash", str(REFERENCE_APP), str(ref)], check=True, capture_output=True, env=env)
    fw = tmp / "fw"
    shutil.copytree(ROOT / "firmware", fw)
    for p in (ref / "py" / "app").glob("*.py"):
        shutil.copy2(p, fw / "app" / f"ref_{p.name}")
    mpy_bytes = sum(p.stat().st_size for p in (ref / "mpy" / "app").glob("*.mpy"))
    return fw, ref, mpy_bytes


def build_image(fw: Path, board: str, out: Path, version: str = "2.0.0") -> Path:
    """`ota build` of a firmware folder, signed with the development image key (security counter 1)."""
    subprocess.run([str(BIN / "ota"), "build", str(fw), "--board", board, "--version", version,
                    "--security-counter", "1", "--key", str(DEV_IMAGE_KEY), "-o", str(out)], check=True,
                   capture_output=True)
    return out


def wait_confirmed(emu: Emulator, version: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = running(emu)
        if r and r["version"] == version and r["confirmed"]:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{version} not confirmed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--board", action="append", dest="boards")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--only", choices=["ota", "smpmgr", "mpremote"], help="Measure one tool only.")
    args = ap.parse_args()
    out: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
                 "date": time.strftime("%Y-%m-%d"), "runs": args.runs, "boards": {}}
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        fw, ref, mpy_bytes = reference_firmware(tmp)
        for board in args.boards or ["esp32_devkitc", "rpi_pico"]:
            img = build_image(fw, board, tmp / f"{board}.img")
            size = img.stat().st_size
            res: dict = {"image_bytes": size, "reference_mpy_bytes": mpy_bytes}
            cases: dict[str, list[float]] = {"ota_push_command": [], "ota_push_to_confirmed": [],
                                             "ota_upload_only": [], "smpmgr_defaults": [], "smpmgr_line_buffers": [],
                                             "mpremote_cp": []}
            for run in range(args.runs):
                if args.only not in (None, "ota"):
                    break
                emu = Emulator(tmp / f"{board}-ota-{run}", board=board)
                try:
                    ota("echo", "--port", emu.console, timeout=30)
                    t0 = time.monotonic()
                    p = ota("push", img, "--port", emu.console, "--test", "--json")
                    cases["ota_push_command"].append(time.monotonic() - t0)
                    assert p.returncode == 0, p.stdout + p.stderr
                    assert json.loads(p.stdout)["after"] == "app-2.0.0", p.stdout  # the report is of the new app
                    cases["ota_upload_only"].append(json.loads(p.stdout)["seconds"])
                    wait_confirmed(emu, "2.0.0")
                    cases["ota_push_to_confirmed"].append(time.monotonic() - t0)
                finally:
                    emu.stop()
            for run in range(args.runs):
                if args.only not in (None, "smpmgr"):
                    break
                for name, extra in (("smpmgr_defaults", []), ("smpmgr_line_buffers",
                                                             ["--line-buffers", str(LINE_BUFFERS)])):
                    emu = Emulator(tmp / f"{board}-{name}-{run}", board=board)
                    try:
                        ota("echo", "--port", emu.console, timeout=30)
                        t0 = time.monotonic()
                        p = subprocess.run([str(BIN / "smpmgr"), "--port", emu.console, "--timeout", "10", *extra,
                                            "upgrade", "--confirm", str(img)], capture_output=True, text=True,
                                           timeout=300)
                        assert p.returncode == 0, p.stdout + p.stderr
                        wait_confirmed(emu, "2.0.0")
                        cases[name].append(time.monotonic() - t0)
                    finally:
                        emu.stop()
            for run in range(args.runs):
                if args.only not in (None, "mpremote"):
                    break
                emu = Emulator(tmp / f"{board}-mpremote-{run}", board=board)
                try:
                    ota("echo", "--port", emu.console, timeout=30)
                    files = sorted(str(p) for p in (ref / "mpy" / "app").glob("*.mpy"))
                    t0 = time.monotonic()
                    p = subprocess.run([str(BIN / "mpremote"), "connect", emu.console, "fs", "mkdir", ":ref", "+",
                                        "fs", "cp", *files, ":ref/"], capture_output=True, text=True, timeout=300)
                    cases["mpremote_cp"].append(time.monotonic() - t0)
                    assert p.returncode == 0, p.stdout + p.stderr
                finally:
                    emu.stop()
            for name, xs in cases.items():
                if not xs:
                    continue
                med = statistics.median(xs)
                res[name] = {"median_s": round(med, 2), "runs_s": [round(x, 2) for x in xs]}
                if name != "mpremote_cp":
                    res[name]["wire_efficiency"] = round(size / (med * LINE_RATE), 2)
                res[name]["app_bytes_per_s"] = round(mpy_bytes / med)
            out["boards"][board] = res
            print(json.dumps({board: res}, indent=1), flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
