"""Delta debugging (Zeller's ddmin, then single-byte simplification) of a finding's input: the smallest input that
still gives the same signature. Engine-independent, so findings of either engine and of the VM minimise alike."""

from __future__ import annotations

from collections.abc import Callable


def ddmin(data: bytes, still_fails: Callable[[bytes], bool], *, max_tests: int = 20000) -> bytes:
    """Shrink `data` while `still_fails` holds: drop chunks (halves, quarters, ... single bytes), then try zeroing
    each byte (a simpler input of the same length). `max_tests` bounds the work on a slow target."""
    tests = 0
    n = 2
    while len(data) >= 2 and tests < max_tests:
        chunk = max(1, len(data) // n)
        reduced = False
        start = 0
        while start < len(data) and tests < max_tests:
            candidate = data[:start] + data[start + chunk:]
            tests += 1
            if candidate != data and still_fails(candidate):
                data = candidate
                n = max(n - 1, 2)
                reduced = True
            else:
                start += chunk
        if not reduced:
            if chunk == 1:
                break
            n = min(len(data), n * 2)
    if len(data) == 1 and tests < max_tests and still_fails(b""):
        return b""
    out = bytearray(data)
    for i in range(len(out)):
        if tests >= max_tests:
            break
        if out[i] == 0:
            continue
        old = out[i]
        out[i] = 0
        tests += 1
        if not still_fails(bytes(out)):
            out[i] = old
    return bytes(out)
