"""Report (emulator): an ESP32 meter's heap with its NB-IoT network up while a DLMS reader works its optical port
(issue 20). The meter gets a head-end (as `python -m host_tests.bench.supply --network` does: its module fitted, an
uplink every 60 s, the reset that starts the driver) and a 6 A load; then a gurux-dlms client connects on the
optical port and, for --minutes of wall time, reads what a head-end's reader reads: the object list once, then in
turn the power event profile, the instantaneous profile with its scaler profile, the energy and voltage registers.
Every few reads the bench samples the heap (`ctl status`: after a collection, board-scaled) while the session holds
it. Before and after, it samples the heap with no session; at the end it reads the meter's events (a MemoryError in
metering or the supply's rules is event 418, app/metering.py short_of_memory), its readings and its uplinks. A
session the meter ended to give its heap to metering or signed work shows on the client as a DM (disconnected): the
client connects again and the bench counts it.

    python -m host_tests.bench.dlms_network [--board esp32_devkitc] [--minutes 3] [--no-network] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from host_tests import supply_scenario as S
from host_tests.bench.supply import UPLINK_S, networked_meter

OUT_OF_MEMORY = 418  # firmware/app/events.py


def run(board: str, minutes: float, network: bool = True) -> dict:
    from gurux_dlms.objects import GXDLMSProfileGeneric, GXDLMSRegister

    from host_tests.dlms_client import Disconnected, DlmsClient

    heap_idle: list[int] = []
    heap_session: list[int] = []
    reads = reconnects = 0
    refused: dict[str, int] = {}  # "OBIS: data-access-result" -> reads the meter answered with it
    uplinks = None
    with networked_meter(board, network) as (emu, headend):
        emu.set(load__current=6)

        def sample(into: list[int]) -> None:
            dev = emu.status().get("device")
            if dev is not None:
                into.append(dev["heap_free_board_estimate"])

        for _ in range(3):
            sample(heap_idle)
            time.sleep(1)
        before = S.run_ota("meter", "read", "--port", emu.console, "--json")["readings"]
        reading = [(GXDLMSProfileGeneric("0.0.99.98.2.255"), (3, 2)),
                   (GXDLMSProfileGeneric("1.0.94.91.0.255"), (3, 2)),
                   (GXDLMSProfileGeneric("1.0.94.91.3.255"), (3, 2)),
                   (GXDLMSRegister("1.0.1.8.0.255"), (3, 2)), (GXDLMSRegister("1.0.12.7.0.255"), (3, 2))]
        t0 = time.monotonic()
        with DlmsClient(emu.endpoints["optical"], timeout=30) as c:
            c.connect()
            try:
                listed: int | None = len(c.objects())
            except LookupError as e:  # the object list found no room either
                listed = None
                refused["0.0.40.0.0.255 object list: " + str(e).rsplit(" ", 1)[-1]] = 1
            k = 0
            while time.monotonic() - t0 < minutes * 60:
                obj, attrs = reading[k % len(reading)]
                try:
                    c.read(obj, *attrs)
                    reads += 1
                except Disconnected:  # the meter gave the session's heap away: connect again, as a reader does
                    reconnects += 1
                    c.connect()
                except LookupError as e:  # a data-access-result (2 temporary-failure: the read found no room; 250 other-reason: a fault part-way)
                    why = f"{obj.logicalName}: {str(e).rsplit(' ', 1)[-1]}"
                    refused[why] = refused.get(why, 0) + 1
                k += 1
                if k % 4 == 0:
                    sample(heap_session)
            print(f"{board}: {reads} DLMS reads in {time.monotonic() - t0:.0f} s, {reconnects} reconnects",
                  file=sys.stderr, flush=True)
            c.disconnect()
        wall = time.monotonic() - t0
        time.sleep(7)  # the port's idle time (app/dlms_port.py _IDLE_MS 5 s): the layers leave the heap
        for _ in range(3):
            sample(heap_idle)
            time.sleep(1)
        after = S.run_ota("meter", "read", "--port", emu.console, "--json")["readings"]
        evs = S.run_ota("meter", "events", "--port", emu.console, "--json")  # the list (run_ota unwraps it)
        net = S.run_ota("meter", "network", "--port", emu.console, "--json") if network else None
        if headend is not None:
            uplinks = headend.uplinks
    out = {"board": board, "network": network, "wall_s": round(wall, 1), "objects_listed": listed,
           "dlms_reads": reads, "reconnects": reconnects, "refused_reads": refused, "readings": after - before,
           "out_of_memory_events": [e["detail"] for e in evs if e["code"] == OUT_OF_MEMORY],
           "heap_free_idle": {"before": heap_idle[:3], "after": heap_idle[3:]},
           "heap_free_session": {"min": min(heap_session), "max": max(heap_session), "samples": len(heap_session)}}
    if uplinks is not None:
        out["headend"] = {"uplink_s": UPLINK_S, "uplinks_received": uplinks}
        out["meter_network"] = net
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="esp32_devkitc", help="Board id (a board whose file names uarts.modem).")
    ap.add_argument("--minutes", type=float, default=3.0, help="Wall minutes the reader reads (default 3).")
    ap.add_argument("--no-network", action="store_true", help="No module and no head-end: the same reads, for the "
                                                                 "heap without the network.")
    ap.add_argument("--json", action="store_true", help="One JSON object on stdout (progress goes to stderr).")
    a = ap.parse_args()
    r = run(a.board, a.minutes, network=not a.no_network)
    if a.json:
        print(json.dumps(r))
        return
    s, i = r["heap_free_session"], r["heap_free_idle"]
    print(f"{r['board']} ({'network up' if r['network'] else 'no network'}): {r['dlms_reads']} DLMS reads in "
          f"{r['wall_s']:.0f} s, {r['reconnects']} reconnects, refused {r['refused_reads'] or 'none'}; "
          f"{r['readings']} readings; heap free (board estimate) "
          f"idle before {min(i['before']) // 1024} KB, during the session {s['min'] // 1024}-{s['max'] // 1024} KB, "
          f"idle after {min(i['after']) // 1024} KB; out-of-memory events: {r['out_of_memory_events'] or 'none'}")


if __name__ == "__main__":
    main()
