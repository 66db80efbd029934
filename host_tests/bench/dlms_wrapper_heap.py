"""Report (emulator): whether a meter with its NB-IoT network up has the heap for a meter reader's DLMS sessions
through its module (issue 20, the IEC 62056-47 wrapper). A meter with its module is given, by signed commands, the
reader's secret, utility keys and a head-end with a DLMS port, and reset so that its network is up (the e2e test's
`_networked`, host_tests/emulator/test_dlms_wrapper_e2e.py); then gurux-dlms as the meter reader, in wrapper mode,
associates --sessions times one after the other and reads the import register in each. Per session: associated or
how it was refused (rejected-transient: no heap for the secret's check now; "authentication failure" would be a wrong
secret), and the heap (`ctl status`, after a collection, VM bytes) while the session is still in. At the end the
meter's out-of-memory events (418: metering found no room beside the sessions) and its daily load profile's rows.
The edge this measures is a qstr pool: on the emulated ESP32 the reader's check needs a new one (2,560 VM B) once the
seventh is full, which a dozen more names in the app brought about (docs/BENCHMARKS.md, sixth stop).

    python -m host_tests.bench.dlms_wrapper_heap [--board esp32_devkitc] [--sessions 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from host_tests.emu import Emulator, exit_on_sigterm

OUT_OF_MEMORY = 418  # firmware/app/events.py


def run(board: str, sessions: int) -> dict:
    from gurux_dlms.objects import GXDLMSRegister

    from host_tests.dlms_client import DlmsUdpClient
    from host_tests.emulator import test_dlms_wrapper_e2e as W

    started: list[Emulator] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlms-wrapper-heap-") as tmp:
        def start(board: str, **kw) -> Emulator:
            emu = Emulator(Path(tmp) / "meter", board=board, **kw)
            started.append(emu)
            return emu

        try:
            emu, meter, dlms_port = W._networked(start, Path(tmp), board)
            for _ in range(sessions):
                with DlmsUdpClient(meter, ("127.0.0.1", dlms_port), secret=W.SECRET) as c:
                    try:
                        c.connect()
                        c.read(GXDLMSRegister("1.0.1.8.0.255"), 3, 2)
                        outcome = "associated"
                        c.disconnect()
                    except Exception as e:  # noqa: BLE001 - gurux's own exception types: the refusal is the figure
                        outcome = " ".join(str(e).split())
                rows.append({"outcome": outcome, "heap_free_vm": emu.status(collect=True)["device"].get("heap_free")})
                print(f"session {len(rows)}: {outcome}, heap {rows[-1]['heap_free_vm']} VM B", file=sys.stderr)
            events = W._json("meter", "events", "--port", emu.console, "--json")["events"]
            daily = W._json("meter", "profile", "--daily", "--port", emu.console, "--json")
        finally:
            for e in started:
                e.stop()
    return {"board": board, "sessions": rows,
            "associated": sum(r["outcome"] == "associated" for r in rows),
            "out_of_memory": [e["detail"] for e in events if e["code"] == OUT_OF_MEMORY],
            "daily_rows": daily["held"]}


def main() -> int:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="esp32_devkitc")
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run(args.board, args.sessions)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{res['board']}: {res['associated']} of {len(res['sessions'])} reader sessions associated; heap "
              f"{', '.join(str(r['heap_free_vm']) for r in res['sessions'])} VM B; out of memory: "
              f"{res['out_of_memory'] or 'none'}; daily rows {res['daily_rows']}")
    return 0 if res["associated"] == len(res["sessions"]) and not res["out_of_memory"] else 1


if __name__ == "__main__":
    sys.exit(main())
