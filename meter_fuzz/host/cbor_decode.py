"""cbor_decode against cbor2 (the host's reference decoder) and against the firmware's own encoder.

- What the firmware accepts, cbor2 accepts too, with the same value (cbor2's tags unwrapped as the firmware skips
  them; a bignum tag's int against the firmware's bytes; undefined as None), and nothing is left over.
- What the firmware refuses as malformed (truncated, a length beyond the input, invalid UTF-8, a stray break,
  reserved additional info, trailing bytes), cbor2 refuses too. The firmware's own limits (depth, item count, key
  types, duplicate keys, simple values it does not support) are stricter than cbor2 on purpose and not compared.
- The firmware's encoder round-trips what its decoder returned: cbor2 reads cbor.dumps(value) back as value.
"""

from __future__ import annotations

import io
import math
from typing import Any

import cbor2

VALUE_PROFILE = False  # 200k inputs reach the same 207 edges with and without it, at 11k exec/s instead of 8k

MALFORMED = {"truncated", "length exceeds input", "invalid utf-8", "unexpected break", "reserved additional info",
             "trailing bytes"}


class _Skip(Exception):
    pass


def _reference(data: bytes) -> Any:
    dec = cbor2.CBORDecoder(io.BytesIO(data))
    value = dec.decode()
    if dec.fp.tell() != len(data):
        raise cbor2.CBORDecodeError("trailing bytes")
    return value


def _semantic_refusal(data: bytes, e: Exception) -> bool:
    """cbor2 also refuses a tag whose content does not fit its meaning (a datetime tag on an int, a bigfloat on a
    non-array); the firmware skips tag numbers by design. cbor2 does not let its semantic decoders be turned off, so
    such a refusal counts as one when the input may hold a tag head (0xC0-0xDB) and cbor2 did not complain about the
    input's structure (end of stream, text)."""
    structural = isinstance(e, cbor2.CBORDecodeEOF) or "text string" in str(e) or "premature" in str(e)
    return not structural and any(0xC0 <= b <= 0xDB for b in data)


def same(fw: Any, ref: Any) -> bool:
    if isinstance(ref, cbor2.CBORTag):
        return same(fw, ref.value)
    if ref is cbor2.undefined:
        return fw is None
    if isinstance(ref, bool) or ref is None:
        return fw is ref
    if isinstance(ref, int):
        if isinstance(fw, bytes):  # a bignum tag (2 or 3): cbor2 gives the int, the firmware the tagged bytes
            n = int.from_bytes(fw, "big")
            return ref in (n, -1 - n)
        return type(fw) is int and fw == ref
    if isinstance(ref, float):
        return type(fw) is float and (fw == ref or (math.isnan(fw) and math.isnan(ref)))
    if isinstance(ref, (str, bytes)):
        return type(fw) is type(ref) and fw == ref
    if isinstance(ref, (list, tuple)):
        return isinstance(fw, list) and len(fw) == len(ref) and all(same(a, b) for a, b in zip(fw, ref, strict=True))
    if isinstance(ref, dict):
        if not isinstance(fw, dict) or len(fw) != len(ref):
            return False
        for k, v in ref.items():
            while isinstance(k, cbor2.CBORTag):  # a tagged key: the firmware keeps the key, without its tag
                k = k.value
            if not isinstance(k, (int, str, list, dict, bytes, float, tuple)) and k is not None:
                raise _Skip  # a key cbor2 gave a meaning (tag 1 on 0: a datetime), which the firmware has no use for
            if isinstance(k, (list, dict, bytes, float)) or k not in fw or not same(fw[k], v):
                return False
        return True
    raise _Skip  # datetimes, decimals, UUIDs... cbor2's semantic tags the firmware has no use for


def differential(data: bytes, result: Any) -> None:
    import fuzzcore  # type: ignore[import-not-found]  # the probes' own, on the path with the firmware

    import cbor

    if isinstance(result, cbor.CBORError):
        if str(result) in MALFORMED:
            try:
                ref = _reference(data)
            except Exception:  # noqa: BLE001 - cbor2 refuses it too, in its own words
                return
            raise fuzzcore.Violation(f"the firmware calls this input {str(result)!r}, cbor2 reads {ref!r}")
        return
    try:
        ref = _reference(data)
    except Exception as e:  # noqa: BLE001
        if _semantic_refusal(data, e):
            return
        raise fuzzcore.Violation(f"the firmware accepted what cbor2 refuses ({type(e).__name__}: {e}): {result!r}") from None
    try:
        if not same(result, ref):
            raise fuzzcore.Violation(f"the firmware read {result!r}, cbor2 {ref!r}")
        back = cbor2.loads(cbor.dumps(result))
        if not same(result, back):
            raise fuzzcore.Violation(f"cbor.dumps does not round-trip {result!r} (cbor2 reads back {back!r})")
    except _Skip:
        return
