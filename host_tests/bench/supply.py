"""Benchmark and report: the prepaid supply in the emulator (issue 6).

On the BL0942 boards, the month: each day 3000 of credit at 17:00 local runs out inside the 18:00-08:00 window, no
cut until 08:00, the cut within 60 s after it, a top-up closes the relay; on the way, tokens out of order, a
load-limit trip, emergency credit from the button and an RTC loss (supply_scenario.month). On the ADC boards, which
run near 50x at max speed, the five-hour scenario (supply_scenario.hours). Records the top-up round trip (command
sent to relay closed, as `ota meter topup` sees it), where each cut came after its window, and the wall time.

With --network (issue 18), the emulator fits its NB-IoT module (`meter-emu run --modem`) and the meter gets a head-end
right after its first boot: 127.0.0.1:<a UDP port the bench binds>, an uplink every 60 s, signed, used from the reset
that follows. The scenario then runs as before with the driver and the SMP-over-UDP server running; a thread drains
the head-end's socket and counts the uplinks, and the meter's `ota meter network --json` is read at the end. --modem
fits the module without a head-end (the app leaves it off), which separates the emulator's model from the driver.

    python -m host_tests.bench.supply [--board B ...] [--days 30] [--modem | --network] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from host_tests import supply_scenario as S
from host_tests.emu import Emulator

UPLINK_S = 60  # the head-end's uplink period with --network (device time)


class HeadEnd:
    """The head-end's UDP socket on 127.0.0.1, drained in a thread: counts the meter's uplinks (a CBOR map, first
    byte 0xA4) and anything else that arrives."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.uplinks = 0
        self.other = 0
        self.last: dict | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        import cbor2

        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if data[:1] == b"\xa4":
                self.uplinks += 1
                try:
                    self.last = cbor2.loads(data)
                except ValueError:
                    pass
            else:
                self.other += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def network_up(emu: Emulator, headend: HeadEnd) -> None:
    """Give the meter its head-end (signed, uplink every UPLINK_S), reset it, and wait for its socket."""
    S.run_ota("meter", "network", "--port", emu.console, "--headend", f"127.0.0.1:{headend.port}", "--uplink",
              UPLINK_S, "--key", S.KEY, "--expires-in", S.SIGNED_FOR, "--json")
    boots = emu.status()["boots"]
    S.run_ota("reset", "--port", emu.console)
    emu.wait_boots(boots + 1)
    emu.wait_status(lambda st: st["device"].get("modem", {}).get("sockets") == [0], timeout=120,
                    what="the head-end's socket")

@contextlib.contextmanager
def networked_meter(board: str, network: bool) -> Iterator[tuple[Emulator, HeadEnd | None]]:
    """An emulated meter in a temporary state folder, booted; with `network` its NB-IoT module fitted and a head-end
    given (network_up). Yields (emulator, head-end or None); stops both."""
    headend = None
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(Path(tmp) / "meter", board=board, args=("--modem",) if network else ())
        try:
            emu.wait_boots(1)
            if network:
                headend = HeadEnd()
                network_up(emu, headend)
            yield emu, headend
        finally:
            emu.stop()
            if headend is not None:
                headend.close()


BL0942_BOARDS = ["rpi_pico_bl0942", "esp32_devkitc_bl0942"]
ADC_BOARDS = ["rpi_pico", "esp32_devkitc"]


def _interrupted(board: str, emu: Emulator, heap: list[int], headend: HeadEnd | None) -> None:
    """A --modem or --network run stopped before its end (a month with the network up runs far slower than one without:
    the driver's polling keeps --speed max from skipping idle time): what it had measured, as one JSON line."""
    try:
        net = S.run_ota("meter", "network", "--port", emu.console, "--json")
    except Exception as e:  # noqa: BLE001 - best effort on the way out
        net = {"error": str(e)}
    out: dict = {"board": board, "interrupted": True, "heap_samples": heap, "network": net}
    if heap:
        out["heap_free"] = {"start": heap[0], "min": min(heap), "end": heap[-1]}
    if headend is not None:
        out["headend"] = {"port": headend.port, "uplink_s": UPLINK_S, "uplinks_received": headend.uplinks,
                          "other_datagrams": headend.other, "last_uplink": headend.last}
    print(json.dumps(out), flush=True)


def run(board: str, days: int, modem: bool = False, network: bool = False) -> dict:
    # the console is kept (a traceback is the first thing to read when a run stops): state/bench-supply-<board>.log
    tag = "-network" if network else "-modem" if modem else ""
    log = Path(__file__).resolve().parents[2] / "state" / f"bench-supply-{board}{tag}.log"
    log.parent.mkdir(exist_ok=True)
    os.environ["METERKIT_EMU_CONSOLE_LOG"] = str(log)
    headend: HeadEnd | None = None
    net_status: dict | None = None
    # heap after a collection (ctl status collects first), board-scaled, once the supply is set and after each
    # step: the event ring fills (64 events) in the first days, then the live data must stay flat
    heap: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(Path(tmp) / "meter", board=board, args=("--modem",) if modem or network else ())
        try:
            emu.wait_boots(1)
            if network:
                headend = HeadEnd()
                network_up(emu, headend)
            base = time.time() + 86400
            day = [time.strftime("%Y-%m-%d", time.gmtime(base + k * 86400)) for k in range(days + 1)]

            def sample_heap() -> str:
                dev = emu.status(collect=True).get("device")
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
            if modem or network:
                net_status = S.run_ota("meter", "network", "--port", emu.console, "--json")  # type: ignore
        except (KeyboardInterrupt, SystemExit):
            if modem or network:  # stopped (Ctrl-C, SIGTERM from `timeout`): the figures so far, one JSON line
                _interrupted(board, emu, heap, headend)
            raise
        finally:
            emu.stop()
            if headend is not None:
                headend.close()
    out = {"board": board, "simulated": sim, "wall_s": round(r["wall_s"], 1), "cut_after_s": [min(cuts), max(cuts)],
           "topup_s_median": round(statistics.median(s.topup_s), 3), "topup_s_max": round(max(s.topup_s), 3),
           "topups": len(s.topup_s),
           "heap_free": {"start": heap[0], "min": min(heap), "end": heap[-1],
                         "min_last_half": min(heap[len(heap) // 2:])}}
    if modem or network:
        out["modem"] = True
        out["network"] = net_status
        out["heap_samples"] = heap  # after the supply is set, then after each day (month) or step (5 h)
    if headend is not None:
        out["headend"] = {"port": headend.port, "uplink_s": UPLINK_S, "uplinks_received": headend.uplinks,
                          "other_datagrams": headend.other, "last_uplink": headend.last}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", help="Board id (repeatable; default: all four).")
    ap.add_argument("--days", type=int, default=30, help="Days of the month scenario on BL0942 boards (>= 9).")
    ap.add_argument("--json", action="store_true", help="One JSON object per board on stdout (progress goes to stderr).")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--modem", action="store_true",
                      help="Fit the emulator's NB-IoT module (meter-emu run --modem), no head-end: the app leaves it "
                           "off.")
    mode.add_argument("--network", action="store_true",
                      help="Fit the module and give the meter a head-end (127.0.0.1, a port the bench binds, uplink "
                           f"every {UPLINK_S} s) after its first boot, then reset it: the scenario runs with the "
                           "network up.")
    a = ap.parse_args()
    if a.days < 9:
        ap.error("--days: the month scenario's events need at least 9 days")
    for board in a.board or BL0942_BOARDS + ADC_BOARDS:
        r = run(board, a.days, modem=a.modem, network=a.network)
        if a.json:
            print(json.dumps(r))
            continue
        h = r["heap_free"]
        print(f"{r['board']}: {r['simulated']} in {r['wall_s']:.0f} s wall; cuts {r['cut_after_s'][0]}-"
              f"{r['cut_after_s'][1]} s after their window; top-up to relay closed (SMP round trip) median "
              f"{r['topup_s_median']:.3f} s, max {r['topup_s_max']:.3f} s over {r['topups']}; heap free after a "
              f"collection {h['start'] // 1024} KB at the start, {h['min'] // 1024} KB at least, "
              f"{h['min_last_half'] // 1024} KB at least in the second half, {h['end'] // 1024} KB at the end")
        if "network" in r:
            n = r["network"] or {}
            got = r.get("headend", {}).get("uplinks_received", "-")
            print(f"  network: link {n.get('link')}, head-end {n.get('headend')}, {n.get('uplinks')} uplinks sent "
                  f"since the last boot, {got} received by the bench's head-end")


if __name__ == "__main__":
    main()
