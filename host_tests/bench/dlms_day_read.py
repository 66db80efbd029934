"""Report (no emulator, no timing of this host): what a day of IS 15959's block load profile costs to read over HDLC,
as issue 20's benchmark asks — the meter reader's session (gurux-dlms as the client, the firmware's own port, link,
association and object model on CPython: app/dlms_port.py, hdlc.py, cosem.py, dlms_objects.py, load_profile.py)
reads 96 rows of 15-minute periods by range from a profile of two days in flash, at the client's default 128-byte
information field and a 128-byte PDU (a probe tool's usual setting) and at the meter's largest (512). It counts
the frames and bytes each way and gives the line time at 9600 baud 8N1 (10 bits a byte): the floor any real read
sits on, before turnarounds (each frame waits for its answer: the probe's and the meter's turnaround times add per
frame, so the frame count is given too). The session: SNRM, AARQ with the meter reader's secret, the read, RLRQ,
DISC.

Usage: python -m host_tests.bench.dlms_day_read [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BAUD = 9600
BITS_PER_BYTE = 10  # 8N1
ROWS = 96


def _session(pdu: int, info: int) -> dict:
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType
    from gurux_dlms.objects import GXDLMSProfileGeneric

    from host_tests import dlms_client
    from host_tests.firmware import fwtest

    line = fwtest.Line()
    port = fwtest.optical_port(line, None, buf_size=256)
    sent = {"to_meter": 0, "from_meter": 0, "frames_to_meter": 0, "frames_from_meter": 0}

    def send(frame) -> bytes:
        data = bytes(frame)
        sent["to_meter"] += len(data)
        sent["frames_to_meter"] += 1
        n = len(line.out)
        for i in range(0, len(data), len(port.buf)):
            piece = data[i:i + len(port.buf)]
            port.buf[:len(piece)] = piece
            port.feed(len(piece))
        assert len(line.out) == n + 1, "the meter answered no frame"
        answer = line.out[-1]
        sent["from_meter"] += len(answer)
        sent["frames_from_meter"] += 1
        return answer

    c = GXDLMSClient(True, 32, 1, Authentication.LOW, "bench reader", InterfaceType.HDLC)
    c.hdlcSettings.maxInfoTX = c.hdlcSettings.maxInfoRX = info
    c.maxReceivePDUSize = pdu

    def exchange(frames):
        return dlms_client.exchange(send, c, frames)

    c.parseUAResponse(exchange([c.snrmRequest()]).data)
    c.parseAareResponse(exchange(c.aarqRequest()).data)
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    c.updateValue(pg, 3, exchange(c.read(pg, 3)).value)
    before = dict(sent)
    day = datetime.datetime(2025, 12, 2)
    c.updateValue(pg, 2, exchange(c.readRowsByRange(pg, day, day + datetime.timedelta(hours=23, minutes=45))).value)
    read = {k: sent[k] - before[k] for k in sent}
    exchange(c.releaseRequest())
    send(c.disconnectRequest())
    port.close()
    assert len(pg.buffer) == ROWS, len(pg.buffer)
    line_s = (sent["to_meter"] + sent["from_meter"]) * BITS_PER_BYTE / BAUD
    read_s = (read["to_meter"] + read["from_meter"]) * BITS_PER_BYTE / BAUD
    return {"pdu": pdu, "info_field": info, "rows": len(pg.buffer),
            "read_bytes_from_meter": read["from_meter"], "read_bytes_to_meter": read["to_meter"],
            "read_frames_each_way": read["frames_from_meter"], "read_line_s_at_9600": round(read_s, 2),
            "session_bytes_each_way": [sent["to_meter"], sent["from_meter"]],
            "session_frames_each_way": [sent["frames_to_meter"], sent["frames_from_meter"]],
            "session_line_s_at_9600": round(line_s, 2),
            "row_bytes_at_9600_floor_ms": round(read_s / ROWS * 1000, 1)}


@contextlib.contextmanager
def two_days_of_rows():
    """A work folder as a meter's flash: the meter reader's secret ("bench reader", meter id "meter-42") and two local
    days of 15-minute block load profile rows from 2025-12-01 (+05:30), the firmware's modules importable."""
    for p in (ROOT / "firmware" / "lib", ROOT / "firmware", ROOT / "meterkit" / "mpy_compat",
              ROOT / "host_tests" / "firmware"):
        if str(p) not in sys.path:
            sys.path.insert(0, str(p))
    import mpy_port

    mpy_port.install()
    from app import load_profile

    here = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            os.mkdir("meter")
            Path("meter/dlms-reader.bin").write_bytes(hashlib.sha256(b"meter-42\x00bench reader").digest())
            t0 = 1764527400  # 2025-12-01 00:00 at +05:30: two local days of 15-minute rows, as the interop test
            for k in range(1, 2 * ROWS + 1):
                load_profile.capture((t0 + 900 * k, 23000 + k % 50, 4000 + k, 1000 * k, 1100 * k, k % 3))
            yield
        finally:
            os.chdir(here)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with two_days_of_rows():
        out = [_session(pdu, info) for pdu, info in ((128, 128), (512, 128))]
    res = {"machine": "see docs/BENCHMARKS.md", "baud": BAUD, "runs": out}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for r in out:
            print(f"PDU {r['pdu']:4}, info {r['info_field']}: {r['rows']} rows, "
                  f"{r['read_bytes_from_meter']} B from the meter in {r['read_frames_each_way']} frames, "
                  f"line floor {r['read_line_s_at_9600']} s at 9600 baud (session {r['session_line_s_at_9600']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
