"""Report (no emulator, no timing of this host): what a day of IS 15959's block load profile costs to read through the
IEC 62056-47 UDP wrapper over NB-IoT, as issue 20's benchmark asks ("over nb1-good"). The meter reader's session
(gurux-dlms's client in its wrapper mode, with host_tests/dlms_client.py's rule: an answer awaited `wait` s, the
request sent again byte for byte, 4 tries in all, an answer that cannot be the request's passed over) against the firmware's own wrapper port, association, object model
and load profile on CPython (app/dlms_wrapper.py WrapperPort, cosem.py, dlms_objects.py, load_profile.py), reading 96
rows of 15-minute periods by range from a profile of two days, and between them the emulator's own radio link model
(emulator/device/_emu_link.py: the profile's rates, RTT, loss, duplication, reordering, the radio going idle and
reconnecting), in virtual time, seeded: every datagram each way goes through it, and what it loses is asked again.

The meter's time per exchange is its module's UART (115,200 baud, 10 bits a byte): the request's hex in a +QIURC
and the answer's hex in an AT+QISEND, each with about 40 bytes of AT around it; the VM's own processing is not
counted (the emulator's SMP server answers an upload chunk in about 0.23 s, docs/BENCHMARKS.md "Pushes over NB-IoT").
The minimum: each exchange waits for its answer (the wrapper has no window): the sum over the exchanges of the
profile's mean RTT and each datagram's air time, without the first datagram's radio reconnection (the read's time
includes it). The session: AARQ with the meter reader's secret, the capture objects, the read, RLRQ.

Usage: python -m host_tests.bench.dlms_wrapper_read [--seeds 5] [--json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys

ROWS = 96
UART_BAUD = 115200
AT_BYTES = 40  # AT+QISEND=<id>,<len>," ... "\r, OK, SEND OK / +QIURC: "recv",<id>,<len>," ... "
PROFILES = ("nb2-good", "nb1-good", "nb1-edge")
TRIES = 4


def _uart_us(n: int) -> int:
    return (2 * n + AT_BYTES) * 10 * 1000000 // UART_BAUD


class _Radio:
    """The client's datagrams through the link model to the meter's WrapperPort and back, in virtual µs."""

    def __init__(self, port, link, wait_us: int):
        from emulator.device import _emu_link

        self.port = port
        self.link = link
        self.L = _emu_link
        self.wait_us = wait_us
        self.now = 0
        self.pending: list[tuple[int, bytes]] = []  # answers on their way to the client: (arrival µs, datagram)
        self.exchanges = self.sent = self.resent = self.up_bytes = self.down_bytes = 0
        self.air_us = 0  # the exchanges' air time each way, for the minimum

    def send(self, fr) -> bytes:
        from host_tests import dlms_client

        req = bytes(fr)
        self.exchanges += 1
        self.pending = [p for p in self.pending if p[0] > self.now]  # what came already was drained: stale
        t = self.now
        for k in range(TRIES):
            self.sent += 1
            self.resent += k > 0
            self.up_bytes += len(req)
            for a in self.link.send(self.L.UP, t, len(req))[1]:
                r = self.port.reply(memoryview(req))  # (each copy that arrives is handled: a duplicate too)
                if r is None:
                    continue
                out = bytes(r)
                self.down_bytes += len(out)
                ready = a + _uart_us(len(req)) + _uart_us(len(out))
                self.pending.extend((b, out) for b in self.link.send(self.L.DOWN, ready, len(out))[1])
            self.pending.sort()
            got = [p for p in self.pending if t < p[0] <= t + self.wait_us and dlms_client.answers(req, p[1])]
            if got:
                self.now = got[0][0]
                self.pending.remove(got[0])
                if k == 0:
                    self.air_us += (self.link.airtime_us(self.L.UP, len(req))
                                    + self.link.airtime_us(self.L.DOWN, len(got[0][1])))
                return got[0][1]
            t += self.wait_us
        self.now = t
        raise TimeoutError(f"no answer in {TRIES} tries")


def _session(profile: str, seed: int) -> dict:
    from gurux_dlms.enums import InterfaceType
    from gurux_dlms.objects import GXDLMSProfileGeneric

    from emulator.device import _emu_link
    from host_tests import dlms_client
    from host_tests.firmware import fwtest

    p = _emu_link.profile(profile)
    link = _emu_link.Link(p, seed)
    rtt_lo, rtt_hi = p["rtt_s"]
    # the client's wait: above the worst RTT with a full datagram's air time each way
    wait_s = max(5.0, 1.5 * (rtt_hi + 512 * 8 / (1000 * p["down_kbps"]) + 64 * 8 / (1000 * p["up_kbps"])))
    port = fwtest.wrapper_port(fwtest.Datagrams())
    radio = _Radio(port, link, int(wait_s * 1000000))
    c = dlms_client.gurux_client(InterfaceType.WRAPPER, secret="bench reader")
    c.maxReceivePDUSize = 0xFFFF  # the meter's (the module's datagram less the wrapper's header) is then the limit

    def exchange(frames):
        return dlms_client.exchange(radio.send, c, frames)

    ok = True
    try:
        c.parseAareResponse(exchange(c.aarqRequest()).data)
        pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
        c.updateValue(pg, 3, exchange(c.read(pg, 3)).value)
        day = datetime.datetime(2025, 12, 2)
        c.updateValue(pg, 2, exchange(c.readRowsByRange(pg, day, day + datetime.timedelta(hours=23, minutes=45))).value)
        radio.send(c.releaseRequest()[0])
        ok = len(pg.buffer) == ROWS
    except Exception:  # noqa: BLE001 - counted: a read that did not complete
        ok = False
    port.close()
    mean_rtt_us = (rtt_lo + rtt_hi) / 2 * 1000000
    minimum_s = (radio.exchanges * mean_rtt_us + radio.air_us) / 1e6
    return {"profile": profile, "seed": seed, "completed": ok, "s": round(radio.now / 1e6, 1),
            "minimum_s": round(minimum_s, 1), "exchanges": radio.exchanges, "datagrams_sent": radio.sent,
            "sent_again": radio.resent, "bytes_up": radio.up_bytes, "bytes_down": radio.down_bytes,
            "repeated_by_meter": port.repeated, "reconnects": link.reconnects, "wait_s": round(wait_s, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="runs per profile (seeds 1..N)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from host_tests.bench.dlms_day_read import two_days_of_rows

    with two_days_of_rows():
        runs = [_session(profile, seed) for profile in PROFILES for seed in range(1, args.seeds + 1)]
    summary = []
    for profile in PROFILES:
        rs = [r for r in runs if r["profile"] == profile]
        done = [r for r in rs if r["completed"]]
        summary.append({"profile": profile, "runs": len(rs), "completed": len(done),
                        "median_s": statistics.median(r["s"] for r in done) if done else None,
                        "max_s": max(r["s"] for r in done) if done else None,
                        "minimum_s": statistics.median(r["minimum_s"] for r in rs),
                        "exchanges": rs[0]["exchanges"], "bytes_down": rs[0]["bytes_down"]})
    res = {"machine": "see docs/BENCHMARKS.md", "rows": ROWS, "summary": summary, "runs": runs}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for s in summary:
            print(f"{s['profile']:9s} {s['completed']}/{s['runs']} completed; median {s['median_s']} s, "
                  f"max {s['max_s']} s; minimum {s['minimum_s']} s; {s['exchanges']} exchanges, "
                  f"{s['bytes_down']} B down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
