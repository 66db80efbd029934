"""Host extras of envelope: the differential checks (cryptography on every accepted envelope's signature; canonical
CBOR, cbor2's, on every pair of arguments the firmware calls the same), a structure-aware mutator that re-signs what
it changes (so mutated bodies get past the signature), and seeds from the firmware fixtures and meterkit's encoder."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from meter_fuzz.host import signing
from meter_fuzz.probes import fuzzcore

LATER = 2_000_000_000


def canonical(v) -> bytes | None:
    try:
        return cbor2.dumps(v, canonical=True)
    except (cbor2.CBOREncodeError, TypeError, ValueError):
        return None


def differential(data: bytes, result) -> None:
    if not isinstance(result, dict):
        return
    if result.get("same"):
        a, b = canonical(result["a"]), canonical(result["b"])
        if a != b:
            raise fuzzcore.Violation(f"the firmware treats {result['a']!r} and {result['b']!r} as the same argument; "
                                     f"canonical CBOR differs: {a and a.hex()} {b and b.hex()}")
    if result.get("accepted"):
        outer = cbor2.loads(result["env"])
        try:
            Ed25519PublicKey.from_public_bytes(result["key"]).verify(outer["sig"], outer["body"])
        except (InvalidSignature, ValueError, TypeError):
            raise fuzzcore.Violation("an envelope was authorised whose signature does not verify (cryptography)") from None


def pack(switch: int, env: bytes, req) -> bytes:
    return bytes([switch]) + struct.pack(">H", len(env)) + env + (cbor2.dumps(req) if req is not None else b"")


def make(cmd: str, args: dict, *, now: int = LATER, ident: bytes = bytes(range(16)), key=None, meter: str = "m-1") -> bytes:
    from meterkit import envelope

    return envelope.make(key or signing.command_key(), meter, cmd, args, now=now, ident=ident)


# values that equal each other under Python's == but not by type or CBOR encoding
TRICKY = [5, 5.0, True, False, 0, 0.0, -0.0, 1, 1.0, float("nan"), float("inf"), -1, 2**64, -(2**64), 2**63 - 1,
          b"", "", None, [], {}, [5], {"a": 5}, {1: 1}, {1.0: 1}, "5", b"5", 1.5, 2**53 + 1, float(2**53)]


def _tricky(rng: random.Random):
    v = rng.choice(TRICKY)
    if rng.randrange(4) == 0:
        return [v, rng.choice(TRICKY)]
    if rng.randrange(4) == 0:
        return {rng.choice(["a", "slot", "state", 1]): v}
    return v


def mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    try:
        s, n = data[0], struct.unpack(">H", data[1:3])[0]
        env = data[3:3 + n]
        outer = cbor2.loads(env)
        body = cbor2.loads(outer["body"])
        if not isinstance(body, dict):
            raise ValueError
    except Exception:  # noqa: BLE001 - not a well-formed input: start from a fresh envelope
        s, body = rng.randrange(256) & ~32, {"format": 1, "role": "command", "meter": "m-1", "cmd": "relay",
                                            "args": {}, "id": bytes(range(16)), "exp": LATER + 3600}
    args: dict = body["args"] if isinstance(body.get("args"), dict) else {}
    key = rng.choice(["state", "slot", "confirm", "tid", "amount", "t", 1])
    args[key] = _tricky(rng)
    body["args"] = args
    if rng.randrange(5) == 0:
        body[rng.choice(["meter", "role", "exp", "id", "format", "cmd"])] = _tricky(rng)
    raw_body = cbor2.dumps(body, canonical=rng.randrange(4) != 0)
    signer = rng.choice([signing.command_key(), signing.command_key(), signing.dev_image_key(), signing.image_only_key()])
    new = cbor2.dumps({"body": raw_body, "signer": signing.keyhash(signing.raw_public(signer)),
                       "sig": signer.sign(raw_body)}, canonical=True)
    req_args = dict(args)
    if rng.randrange(2):
        req_args[key] = _tricky(rng)
    s = s & ~32 if rng.randrange(4) else s | 32
    if s & 32:
        out = pack(s, cbor2.dumps(args[key]), req_args[key])
    else:
        out = pack(s, new, [body.get("cmd") if isinstance(body.get("cmd"), str) else "relay", req_args])
    return out[:max_size]


def seeds() -> Iterator[bytes]:
    good = signing.fixture("env_good.cbor")
    yield pack(0, good, ["relay", {"state": "disconnect"}])
    yield pack(0, good, ["relay", {"state": "connect"}])
    yield pack(1, good, ["relay", {"state": "disconnect"}])
    yield pack(2, good, ["relay", {"state": "disconnect"}])
    yield pack(16, good, ["relay", {"state": "disconnect"}])
    yield pack(0, signing.fixture("env_clock.cbor"), ["clock.set", {"t": 1_800_000_000}])
    yield pack(1, signing.fixture("env_clock.cbor"), ["clock.set", {"t": 1_800_000_000}])
    yield pack(4, signing.fixture("env_wrong_role.cbor"), ["relay", {}])
    yield pack(72, signing.fixture("env_confirm.cbor"), ["image.state", {"confirm": True}])
    yield pack(72, signing.fixture("env_confirm.cbor"), ["image.state", {"confirm": 1}])
    yield pack(72 | 16, signing.fixture("env_confirm.cbor"), ["image.state", {"confirm": True}])
    yield pack(72 | 128, signing.fixture("env_confirm.cbor"), ["image.state", {"confirm": True}])
    yield pack(76, signing.fixture("env_reset.cbor"), ["os.reset", {}])
    supply = cbor2.loads(signing.fixture("supply.cbor"))
    yield pack(0, supply["settings_mode5"], ["supply.config", {"settings": {"control_mode": 5}}])
    yield pack(0, supply["settings_mode5"], ["supply.config", {"settings": {"control_mode": 5.0}}])
    yield pack(72, supply["settings_mode5"], ["supply.config", {"settings": {"control_mode": True}}])
    yield pack(0, supply["token1"], ["credit.topup", {"tid": 1, "amount": 10000}])
    yield pack(0, supply["token_altered"], ["credit.topup", {"tid": 4, "amount": 100000}])
    yield pack(0, supply["token_foreign"], ["credit.topup", {"tid": 5, "amount": 100}])
    from ota_tool import keys

    dev_cmd = keys.load_private(signing.paths.ROOT / "keys" / "dev" / "command-DEVELOPMENT-ONLY-ed25519.pem")
    env = make("relay", {"state": "disconnect"}, key=dev_cmd)
    yield pack(0, env, ["relay", {"state": "disconnect"}])
    yield pack(4, env, ["relay", {"state": "disconnect"}])
    yield pack(72, env, ["relay", {"state": "disconnect"}])
    yield pack(0, make("image.erase", {"slot": 1.5, "n": [1, {"k": b"x"}]}), ["image.erase", {"slot": 1.5, "n": [1, {"k": b"x"}]}])
    yield pack(0, make("image.erase", {"slot": 0.0}), ["image.erase", {"slot": 0.0}])
    for a, b in ((5, 5.0), (5, True), (1, True), (0.0, -0.0), ({"a": 1}, {"a": 1.0}), ([1, 2], [1, 2]),
                 (math.inf, math.inf), ({1: "x"}, {1: "x"}), ("x", b"x")):
        yield pack(32, cbor2.dumps(a), b)
