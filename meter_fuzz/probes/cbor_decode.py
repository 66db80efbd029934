"""The firmware's CBOR decoder (lib/cbor.py), which every SMP request on the console and over UDP goes through.

Documented errors: CBORError (a ValueError) for malformed or unsupported input. The host's differential check
compares what it accepts and returns with cbor2 (meter_fuzz/host/cbor_decode.py)."""

import cbor

ERRORS = (cbor.CBORError,)
MODULES = ("lib/cbor.py",)
MEM_BASE = 32 * 1024  # CPython's own cost of a raised exception and its frames is several KB
MEM_PER_BYTE = 200


def run(data):
    return cbor.loads(data)
