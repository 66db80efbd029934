"""A target with bugs planted on purpose, so the harness's tests can show that each oracle can fail: it parses
"KIND:payload" and misbehaves for the kinds below (and rejects everything else with ValueError, its documented
error). Loaded through $METER_FUZZ_PROBES, never part of the package."""

import fuzzcore

ERRORS = (ValueError,)
MODULES = ("lib/cbor.py",)  # coverage needs a firmware module; the planted bugs live here
MEM_BASE = 64 * 1024
MEM_PER_BYTE = 64


def run(data):
    if data.startswith(b"crash:"):
        return {}["no such key"]  # KeyError: not documented
    if data.startswith(b"lie:"):
        fuzzcore.check(False, "the planted invariant is broken")
    if data.startswith(b"hog:"):
        return bytearray(1 << 20)  # 1 MB for a tiny input
    if data.startswith(b"slow:"):
        n = 0
        for i in range(3000000):
            n += i
        return n
    raise ValueError("not a planted kind")
