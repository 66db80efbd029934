"""Property tests (CPython only) for firmware/lib/ed25519.py, cross-checked against cryptography's Ed25519 (OpenSSL)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

import ed25519

L = ed25519.L

seeds = st.binary(min_size=32, max_size=32)
messages = st.binary(max_size=300)


def keypair(seed: bytes) -> tuple[Ed25519PrivateKey, bytes]:
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    return sk, sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def reference_verify(pk: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit >> 3] ^= 1 << (bit & 7)
    return bytes(out)


@settings(max_examples=150, deadline=None)
@given(seeds, messages)
def test_accepts_real_signatures(seed, msg):
    sk, pk = keypair(seed)
    sig = sk.sign(msg)
    assert ed25519.verify(pk, msg, sig) is True
    assert ed25519.verify(bytearray(pk), memoryview(msg), bytearray(sig)) is True


@settings(max_examples=300, deadline=None)
@given(seeds, messages, st.sampled_from(["sig", "pk", "msg"]), st.data())
def test_any_single_bit_flip_is_rejected(seed, msg, part, data):
    sk, pk = keypair(seed)
    sig = sk.sign(msg)
    if part == "msg" and not msg:
        part = "sig"
    bits = {"sig": 512, "pk": 256, "msg": 8 * len(msg)}[part]
    bit = data.draw(st.integers(0, bits - 1), label="bit")
    if part == "sig":
        sig = flip(sig, bit)
    elif part == "pk":
        pk = flip(pk, bit)
    else:
        msg = flip(msg, bit)
    assert ed25519.verify(pk, msg, sig) is False


@settings(max_examples=200, deadline=None)
@given(seeds, messages, st.binary(min_size=64, max_size=64))
def test_random_signatures_are_rejected(seed, msg, sig):
    _, pk = keypair(seed)
    assert ed25519.verify(pk, msg, sig) is False


@st.composite
def mutated(draw):
    """A real (pk, msg, sig) and a mutation of it: random bytes overwritten anywhere, S + L, a truncated or extended
    message, R and S swapped, a random public key, or nothing at all."""
    sk, pk = keypair(draw(seeds))
    msg = draw(messages)
    sig = sk.sign(msg)
    kind = draw(st.sampled_from(["bytes", "s_plus_l", "msg_len", "swap", "random_pk", "none"]))
    if kind == "bytes":
        blob = bytearray(pk + sig + msg)
        for _ in range(draw(st.integers(1, 4))):
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
        pk, sig, msg = bytes(blob[:32]), bytes(blob[32:96]), bytes(blob[96:])
    elif kind == "s_plus_l":
        s = int.from_bytes(sig[32:], "little") + L * draw(st.integers(1, 15))
        sig = sig[:32] + s.to_bytes(32, "little")
    elif kind == "msg_len":
        msg = msg[:-1] if msg and draw(st.booleans()) else msg + draw(st.binary(min_size=1, max_size=4))
    elif kind == "swap":
        sig = sig[32:] + sig[:32]
    elif kind == "random_pk":
        pk = draw(st.binary(min_size=32, max_size=32))
    return kind, pk, msg, sig


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_agrees_with_cryptography_on_mutated_inputs(case):
    kind, pk, msg, sig = case
    assert ed25519.verify(pk, msg, sig) is reference_verify(pk, msg, sig)
