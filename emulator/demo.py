"""The README demo: power up an emulated ESP32 meter, then talk to it over its serial port with the same tools a
field engineer uses on a real board. Usage: python -m emulator.demo [--board ID] [--keep]"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
out = Console(width=None if sys.stdout.isatty() else 120)  # a log or pipe: wide enough for the tables


def step(text: str) -> None:
    out.rule(f"[bold cyan]{text}")


def shell(*args: str) -> subprocess.CompletedProcess:
    shown = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(args))
    out.print(f"[dim]$ {shown}")
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        out.print(p.stdout + p.stderr)
        raise SystemExit(f"demo step failed: {shown}")
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--board", default="esp32_devkitc")
    ap.add_argument("--keep", action="store_true", help="leave the emulator running at the end")
    args = ap.parse_args()
    state = ROOT / "state" / f"demo-{args.board}"
    shutil.rmtree(state, ignore_errors=True)
    state.parent.mkdir(exist_ok=True)

    step(f"1. Power up an emulated {args.board} (real MicroPython VM, littlefs flash, console on a pty)")
    log = open(state.parent / f"demo-{args.board}.log", "w")
    emu = subprocess.Popen([str(BIN / "meter-emu"), "run", "--board", args.board, "--state", str(state)],
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.monotonic()
    ep = state / "endpoints.json"
    while not ep.exists():
        if emu.poll() is not None or time.monotonic() - t0 > 60:
            raise SystemExit("the emulator did not start; see " + log.name)
        time.sleep(0.05)
    console = json.loads(ep.read_text())["console"]
    out.print(f"console ready on [bold]{console}[/] (also {state}/console) after {time.monotonic() - t0:.2f} s")
    try:
        step("2. Ask the meter who it is over SMP on its console (`ota info`)")
        out.print(shell(str(BIN / "ota"), "info", "--port", console).stdout.rstrip())

        step("3. The same port with the reference SMP client (`smpmgr os echo`)")
        out.print(shell(str(BIN / "smpmgr"), "--port", console, "os", "echo", "hello meter").stdout.strip())

        step("4. Build and sign an update (mpy-cross for the board, deflate, MCUboot image, development key)")
        img = state.parent / f"demo-{args.board}-1.1.0.img"
        key = ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem"
        out.print(shell(str(BIN / "ota"), "build", str(ROOT / "firmware"), "--board", args.board, "--version",
                        "1.1.0", "--security-counter", "1", "--key", str(key), "-o", str(img)).stdout.strip())

        step("5. Push it over the serial port as a test boot; the new app confirms itself after its self-test")
        p = subprocess.run([str(BIN / "ota"), "push", str(img), "--port", console, "--test"], text=True,
                           timeout=180)
        if p.returncode != 0:
            raise SystemExit("demo step failed: ota push")
        for _ in range(40):
            rows = json.loads(shell(str(BIN / "ota"), "status", "--port", console, "--json").stdout)["slots"]
            if rows and rows[0]["confirmed"] and rows[0]["version"] == "1.1.0":
                break
            time.sleep(1.0)
        for r in rows:
            flags = ", ".join(k for k in ("active", "confirmed", "bootable") if r[k])
            out.print(f"slot {r['slot']}: version {r['version']:8} {flags}")

        step("6. The emulator's view: power, boots, device heap, virtual clock (`meter-emu ctl`)")
        st = json.loads(shell(str(BIN / "meter-emu"), "ctl", "--state", str(state), "status").stdout)
        tm = json.loads(shell(str(BIN / "meter-emu"), "ctl", "--state", str(state), "time").stdout)
        out.print(f"power {st['power']}, boots {st['boots']}, reset cause {st['reset_cause']}, "
                  f"heap free ≈ {st['device']['heap_free_board_estimate'] // 1024} KB of the board's "
                  f"{st['device']['heap_board_bytes'] // 1024} KB, uptime {tm['uptime_s']:.1f} s, RTC {tm['rtc']}")
        step("7. Calibrate it as a factory would: 230 V, 5 A, PF 1 from the emulated reference source")
        ctl = [str(BIN / "meter-emu"), "ctl", "--state", str(state)]
        shell(*ctl, "set", "grid.voltage=230", "load.type=resistive", "load.current=5", "load.pf=1")
        cal = json.loads(shell(str(BIN / "ota"), "meter", "calibrate", "--port", console, "--step", "gain",
                               "--voltage", "230", "--current", "5", "--pf", "1", "--readings", "5",
                               "--json").stdout)
        out.print("stored: " + ", ".join(f"{k}={v:.5g}" for k, v in cal["constants"].items()))

        step("8. Live readings under a changing load (`ota meter read`), time accelerated between them")
        table = Table("load", "V", "A", "W", "var", "PF", "Hz", "import Wh", "export Wh", "true import Wh")
        for label, settings in (("kettle 5 A", ["load.type=resistive", "load.current=5", "load.pf=1", "load.export=0"]),
                                ("motor 12 A PF 0.7", ["load.type=inductive", "load.current=12", "load.pf=0.7"]),
                                ("PC supply 3 A", ["load.type=rectifier", "load.current=3"]),
                                ("solar export 8 A", ["load.type=resistive", "load.current=8", "load.pf=1",
                                                      "load.export=1"])):
            shell(*ctl, "set", *settings, "speed=max")
            time.sleep(3.0)
            shell(*ctl, "set", "speed=1")
            r = json.loads(shell(str(BIN / "ota"), "meter", "read", "--port", console, "--json").stdout)["obis"]
            truth = json.loads(shell(*ctl, "status").stdout)["truth"]
            table.add_row(label, f"{r['1.0.12.7.0.255']:.1f}", f"{r['1.0.11.7.0.255']:.2f}",
                          f"{r['1.0.1.7.0.255']:.0f}", f"{r['1.0.3.7.0.255']:.0f}", f"{r['1.0.13.7.0.255']:.3f}",
                          f"{r['1.0.14.7.0.255']:.2f}", f"{r['1.0.1.8.0.255']:.1f}", f"{r['1.0.2.8.0.255']:.1f}",
                          f"{truth['import_wh']:.1f}")
        out.print(table)
        out.print("Registers are keyed by OBIS code; `ota meter read --port PORT --watch` refreshes them every second.")

        prepaid(state, console, ctl)

        if args.keep:
            out.print(f"\nThe meter keeps running. Try: mpremote connect {console} repl   |   "
                      f"meter-emu ctl --state {state} status   |   stop with: meter-emu ctl --state {state} stop")
            return
    finally:
        if not args.keep:
            emu.send_signal(signal.SIGTERM)
            emu.wait(timeout=15)
    out.print("\n[bold green]Demo done.[/] Run it yourself: meter-emu run --board esp32_devkitc --state state/mine")


def prepaid(state: Path, console: str, ctl: list[str]) -> None:
    """Step 9: the prepaid supply. Every change is a command signed with the (development) command key."""
    step("9. Prepaid: the credit runs out, the relay opens; a top-up closes it at once (device time accelerated)")
    ota = str(BIN / "ota")
    signed = ["--port", console, "--key", str(ROOT / "keys" / "dev" / "command-DEVELOPMENT-ONLY-ed25519.pem")]
    settings = state.parent / "demo-supply.json"
    settings.write_text(json.dumps({"tariff": {"flat": 1000}, "emergency": 2000, "thresholds": [30, 10, 0]}))
    shell(ota, "meter", "clock", "--time", str(int(time.time())), *signed, "--json")
    shell(ota, "meter", "tariff", "--set", str(settings), *signed, "--json")
    out.print(f"tariff: 10.00 per kWh, no allowance, emergency credit 20.00 ({settings.name}; the meter counts "
              "minor units, e.g. paise)")
    shell(*ctl, "set", "load.type=resistive", f"load.current={2000 / 230:.3f}", "load.pf=1", "load.export=0")
    table = Table("device time (UTC)", "what happened", "balance", "relay", "W measured", "time left (15-min avg)")

    def row(what: str) -> None:
        st = json.loads(shell(ota, "meter", "relay", "status", "--port", console, "--json").stdout)
        w = json.loads(shell(ota, "meter", "read", "--port", console, "--json").stdout)["obis"]["1.0.1.7.0.255"]
        c = st["credit"]
        left = c["time_left_s"]
        table.add_row(time.strftime("%H:%M:%S", time.gmtime(st["rtc"])), what, f"{c['balance'] / 100:.2f}",
                      "closed" if st["output"] else f"open ({st['reason']})", f"{w:.0f}",
                      "-" if left is None else f"{left // 60} min")

    top = json.loads(shell(ota, "meter", "topup", "--amount", "60", *signed, "--json").stdout)
    row(f"top-up 0.60 (token {top['tid']}), a 2 kW kettle on")
    shell(*ctl, "run", "--for", "240", "--wait")
    row("4 min later: credit gone, relay opened")
    top = json.loads(shell(ota, "meter", "topup", "--amount", "500", *signed, "--json").stdout)
    row(f"top-up 5.00: relay closed {top['round_trip_s']:.2f} s after the command")
    out.print(table)
    out.print("Tokens for a meter can be made offline (`ota token`); `ota meter events --port PORT` lists what "
              "happened (docs/relay-and-credit.md).")


if __name__ == "__main__":
    main()
