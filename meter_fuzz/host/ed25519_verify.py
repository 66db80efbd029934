"""Host extras of ed25519_verify: every verdict of the firmware's verify against `cryptography` (OpenSSL), and seeds
(RFC 8032 vectors from cryptography-vectors, S >= L, small-order and non-canonical encodings, mixed-order keys with
signatures valid under the cofactorless equation).

The firmware is stricter than OpenSSL in the ways lib/ed25519.py documents: it refuses the 8 small-order encodings
as A or R and any non-canonical encoding of A or R (y >= p, or x = 0 with the sign bit set), which OpenSSL accepts for
A. Those rules are encoded here (`documented_refusal`): a firmware refusal that OpenSSL accepts is a finding unless
one of them applies; a firmware acceptance that OpenSSL refuses is always a finding."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from meter_fuzz import paths
from meter_fuzz.probes import fuzzcore

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def reference(pk: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def _x_of(y: int, sign: int) -> int | None:
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P != u:
        if v * x * x % P != (-u) % P:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    return P - x if x & 1 != sign else x


def canonical_point(b: bytes) -> bool:
    """b is the canonical encoding of a curve point (RFC 8032 5.1.3 decoding succeeds)."""
    if len(b) != 32:
        return False
    n = int.from_bytes(b, "little")
    return _x_of(n & (2**255 - 1), n >> 255) is not None


def documented_refusal(pk: bytes, sig: bytes) -> bool:
    """A refusal lib/ed25519.py documents beyond what OpenSSL refuses: a small-order or non-canonical A or R."""
    from ed25519 import SMALL_ORDER  # the firmware's own list, on the path the probe put there

    if len(pk) != 32 or len(sig) != 64:
        return False
    r = sig[:32]
    return pk in SMALL_ORDER or r in SMALL_ORDER or not canonical_point(pk) or not canonical_point(r)


def differential(data: bytes, result) -> None:
    if isinstance(result, BaseException):
        return
    pk, sig, msg, ok = result
    ref = reference(pk, sig, msg)
    if ok and not ref:
        raise fuzzcore.Violation(f"the firmware accepts a signature OpenSSL refuses: pk {pk.hex()} sig {sig.hex()} "
                                 f"msg {msg[:64].hex()}")
    if ref and not ok and not documented_refusal(pk, sig):
        raise fuzzcore.Violation(f"the firmware refuses a valid signature (no documented rule): pk {pk.hex()} "
                                 f"sig {sig.hex()} msg {msg[:64].hex()}")


# ---- seeds: a little Edwards arithmetic (affine, host only) for mixed-order keys


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P, (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def _mul(k: int, pt: tuple[int, int]) -> tuple[int, int]:
    out = (0, 1)
    while k:
        if k & 1:
            out = _add(out, pt)
        pt = _add(pt, pt)
        k >>= 1
    return out


def _enc(pt: tuple[int, int]) -> bytes:
    return (pt[1] | (pt[0] & 1) << 255).to_bytes(32, "little")


def _dec(b: bytes) -> tuple[int, int]:
    n = int.from_bytes(b, "little")
    y = n & (2**255 - 1)
    x = _x_of(y, n >> 255)
    assert x is not None
    return x, y


BASE = _dec((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))
ORDER8 = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"  # a point of order 8


def mixed_order_signature(secret: int, nonce: int, msg_prefix: bytes) -> tuple[bytes, bytes, bytes]:
    """(A', sig, msg): A' = aB + T with T of order 8, and a message ground until 8 divides k, so that [S]B = R + [k]A'
    holds exactly (cofactorless valid) although A' is not in the prime-order subgroup."""
    t = _dec(bytes.fromhex(ORDER8))
    a_pt = _add(_mul(secret, BASE), t)
    pk = _enc(a_pt)
    r_enc = _enc(_mul(nonce, BASE))
    for i in range(4096):
        msg = msg_prefix + i.to_bytes(2, "little")
        k = int.from_bytes(hashlib.sha512(r_enc + pk + msg).digest(), "little") % L
        if k % 8 == 0:
            s = (nonce + k * secret) % L
            return pk, r_enc + s.to_bytes(32, "little"), msg
    raise AssertionError("no message found")


def _sign_input_lines(n: int) -> list[tuple[bytes, bytes, bytes]]:
    import cryptography_vectors

    f = Path(cryptography_vectors.__file__).parent / "asymmetric" / "Ed25519" / "sign.input"
    out = []
    for line in f.read_text().splitlines()[:n]:
        _sk, pk, msg, sigmsg = line.split(":")[:4]
        out.append((bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sigmsg)[:64]))
    return out


def seeds() -> Iterator[bytes]:
    paths.firmware_on_path()
    for k in range(3):  # the RFC 8032 vectors as they are (mode 1, nothing XORed), S + L (mode 2)
        yield bytes([1 | k << 2])
        yield bytes([2 | k << 2, 0])
    for edge in (0, 1, 4, 8, 27, 28):  # small-order and non-canonical A and R (mode 3)
        yield bytes([3, 0, edge])
        yield bytes([3, 1, edge])
    for pk, msg, sig in _sign_input_lines(8)[3:]:  # raw vectors (mode 0), one with a flipped message bit
        yield b"\x00" + pk + sig + msg
    pk, msg, sig = _sign_input_lines(5)[4]
    yield b"\x00" + pk + sig + bytes([msg[0] ^ 1]) + msg[1:]
    ident = b"\x01" + bytes(31)  # the identity as A and R, S = 0: valid for any message under the plain equation
    yield b"\x00" + ident + ident + bytes(32) + b"any message"
    yield b"\x00" + (P + 1).to_bytes(32, "little") + ident + bytes(32) + b"non-canonical identity"
    for secret, nonce in ((5, 7), (123456789, 987654321)):
        pk, sig, msg = mixed_order_signature(secret, nonce, b"mixed")
        yield b"\x00" + pk + sig + msg
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    msg = hashlib.sha256(b"image").digest()
    from meter_fuzz.host.signing import raw_public

    yield b"\x00" + raw_public(key) + key.sign(msg) + msg
