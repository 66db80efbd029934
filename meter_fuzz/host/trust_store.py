"""Host extras of trust_store: cryptography checks the signature of every accepted update; a structure-aware mutator
that builds and signs stores (keys, roles, counters, signer chosen among the roots and strangers); seeds from the
fixtures and meterkit.trust's encoder."""

from __future__ import annotations

import random
from collections.abc import Iterator

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from meter_fuzz.host import signing
from meter_fuzz.probes import fuzzcore


def differential(data: bytes, result) -> None:
    if not isinstance(result, dict) or not result.get("accepted"):
        return
    try:
        outer = cbor2.loads(result["raw"])
    except cbor2.CBORDecodeError:  # a semantic tag cbor2 gives a meaning and refuses (a decimal fraction on a
        outer = None  # non-array): the firmware's decoder skips tag numbers by design
    if isinstance(outer, dict):
        body, sig = _untagged(outer.get("body")), _untagged(outer.get("sig"))
        if isinstance(body, bytes) and isinstance(sig, bytes) and (body, sig) != (result["body"], result["sig"]):
            raise fuzzcore.Violation("the firmware took another body or signature from the update than cbor2 reads")
    try:  # the body and signature the firmware took (checked against cbor2's reading above where cbor2 reads them)
        Ed25519PublicKey.from_public_bytes(result["key"]).verify(result["sig"], result["body"])
    except (InvalidSignature, ValueError, TypeError):
        raise fuzzcore.Violation("a trust store update was accepted whose root signature cryptography refuses") from None


def _untagged(v):
    while isinstance(v, cbor2.CBORTag):
        v = v.value
    return v


def store(entries: list[dict], counter, signer, *, body_extra: dict | None = None, canonical: bool = True,
          sig: bytes | None = None, signer_hash: bytes | None = None) -> bytes:
    body = {"format": 1, "counter": counter,
            "keys": [{"key": e["key"], "roles": e["roles"], "dev": e.get("dev", False), "name": e.get("name", "")}
                     for e in entries]}
    body.update(body_extra or {})
    raw = cbor2.dumps(body, canonical=canonical)
    return cbor2.dumps({"body": raw,
                        "signer": signer_hash if signer_hash is not None else signing.keyhash(signing.raw_public(signer)),
                        "sig": sig if sig is not None else signer.sign(raw)}, canonical=True)


def _entries():
    a, b = signing.roots()
    return {
        "root_a": {"key": signing.raw_public(a), "roles": ["root"], "name": "root-a"},
        "root_b": {"key": signing.raw_public(b), "roles": ["root"], "name": "root-b"},
        "image_dev": {"key": signing.raw_public(signing.dev_image_key()), "roles": ["image"], "dev": True},
        "cmd": {"key": signing.raw_public(signing.command_key()), "roles": ["image", "command"]},
        "image_only": {"key": signing.raw_public(signing.image_only_key()), "roles": ["image"]},
    }


def mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    e = _entries()
    a, b = signing.roots()
    names = rng.sample(sorted(e), rng.randrange(1, len(e) + 1))
    entries = [dict(e[n]) for n in names]
    if rng.randrange(4) == 0:
        ent = rng.choice(entries)
        ent[rng.choice(["key", "roles", "dev"])] = rng.choice([b"\x00" * 31, ["root", "image"], "root", [], True, 1, None])
    if rng.randrange(6) == 0:
        entries.append(dict(rng.choice(entries)))  # a duplicate
    counter = rng.choice([0, 1, 2, 3, 4, 2**32, 2**64, -1, 1.0, True])
    signer = rng.choice([a, a, a, b, signing.command_key()])
    kw: dict = {}
    if rng.randrange(8) == 0:
        kw["body_extra"] = {rng.choice(["format", "keys", "extra"]): rng.choice([2, [], {}, "x", None])}
    if rng.randrange(10) == 0:
        kw["sig"] = rng.randbytes(64)
    if rng.randrange(10) == 0:
        kw["signer_hash"] = rng.randbytes(32)
    kw["canonical"] = rng.randrange(4) != 0
    try:
        raw = store(entries, counter, signer, **kw)
    except (TypeError, ValueError, cbor2.CBOREncodeError):
        raw = store([e["root_a"]], 3, a)
    s = rng.randrange(4) | (4 if rng.randrange(6) == 0 else 0)
    return (bytes([s]) + raw)[:max_size]


def seeds() -> Iterator[bytes]:
    for s, name in ((0, "trust_v1.cbor"), (1, "trust_v2.cbor"), (1, "trust_v2_stranger.cbor"), (1, "trust_v1.cbor"),
                    (1, "trust_v2_noroot.cbor"), (0, "trust_v2_noroot.cbor"), (3, "trust_v2.cbor"),
                    (1, "trust_dev_command.cbor"), (2, "trust_supply.cbor"), (4, "trust_v2.cbor"), (4, "trust_v1.cbor")):
        yield bytes([s]) + signing.fixture(name)
    e = _entries()
    a, b = signing.roots()
    yield bytes([2]) + store([e["root_a"], e["root_b"], e["cmd"]], 3, a)  # root rotation, step 1: both roots
    yield bytes([1]) + store([e["root_a"], e["cmd"]], 2**40, a)
    yield bytes([1]) + store([e["root_a"], e["cmd"]], 2, a, canonical=False)
    yield bytes([4]) + b"\xa3\x64body\x41\xa0\x66signer\x40\x63sig\x40"
