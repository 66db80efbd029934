"""The oracles of the signed-input targets (ed25519_verify, envelope, image_header, trust_store, bundle,
topup_token) can fail: each test breaks the firmware's check with a stand-in and shows the target report a finding on
an input it judges clean against the real firmware."""

from __future__ import annotations

import struct

import cbor2
import pytest

from meter_fuzz import oracle, targets


@pytest.fixture
def load():
    def _load(name):
        t = targets.load(name)
        setup = getattr(t.probe, "setup", None)
        if setup is not None:
            setup()
        return t

    return _load


def _verdict(t, data):
    return oracle.execute(t, data, slow_ms=None)


def _always(value):
    return lambda *a, **k: value


def test_ed25519_differential_catches_a_verifier_that_accepts_or_refuses_wrongly(load, monkeypatch):
    t = load("ed25519_verify")
    good = bytes([1])  # RFC 8032 test 1 as it is
    bad = bytes([1]) + bytes(96) + b"\x01"  # its message one bit longer: invalid
    small = bytes([3, 0, 0])  # the identity as A: the firmware's documented refusal
    assert _verdict(t, good).kind == "ok" and _verdict(t, bad).kind == "ok" and _verdict(t, small).kind == "ok"
    monkeypatch.setattr(t.probe.ed25519, "verify", _always(True))
    assert "accepts a signature OpenSSL refuses" in _verdict(t, bad).message
    monkeypatch.setattr(t.probe.ed25519, "verify", _always(False))
    assert "refuses a valid signature" in _verdict(t, good).message
    assert _verdict(t, small).kind == "ok"  # refusing a small-order key is documented, never a finding


def test_envelope_differential_catches_loose_argument_equality_and_an_unchecked_signature(load, monkeypatch):
    t = load("envelope")
    loose = t.host.pack(32, cbor2.dumps(5), 5.0)
    zero = (t.corpus_dir / "regress-negative-zero").read_bytes()
    supply = cbor2.loads(t.host.signing.fixture("supply.cbor"))
    altered = t.host.pack(0, supply["token_altered"], ["credit.topup", {"tid": 4, "amount": 100000}])
    assert {_verdict(t, x).kind for x in (loose, zero)} == {"ok"} and _verdict(t, altered).kind == "rejected"
    monkeypatch.setattr(t.probe.strict, "same", lambda a, b: a == b)
    assert _verdict(t, loose).kind == "violation" and _verdict(t, zero).kind == "violation"
    monkeypatch.undo()
    from loader import envelope

    monkeypatch.setattr(envelope.ed25519, "verify", _always(True))
    v = _verdict(t, altered)
    assert v.kind == "violation" and "does not verify" in v.message


def test_image_differential_catches_an_unchecked_signature(load, monkeypatch):
    t = load("image_header")
    payload = t.host._payload(b"\x00" + t.host.signing.fixture("bundle_good.img"))
    forged = b"\x00" + t.host.build(payload, sig_override=bytes(32) + b"\x01" + bytes(31))
    assert _verdict(t, forged).kind == "rejected"

    class Yes:
        @staticmethod
        def verify(*a):
            return True

    monkeypatch.setattr(t.probe.image, "_ed", Yes)
    v = _verdict(t, forged)
    assert v.kind == "violation" and "cryptography refuses" in v.message


def test_image_invariant_catches_an_unchecked_hash(load, monkeypatch):
    t = load("image_header")
    good = b"\x00" + t.host.signing.fixture("bundle_good.img")
    hdr_size = struct.unpack_from("<H", good, 9)[0]
    bad = bytearray(good)
    bad[1 + hdr_size + 5] ^= 1  # a payload byte: the SHA256 TLV no longer matches
    assert _verdict(t, bytes(bad)).message.startswith("hash-mismatch")
    real = t.probe.image.accept

    def no_hash_check(info, *a):
        info = dict(info, digest=info["sha256"])
        return real(info, *a)

    monkeypatch.setattr(t.probe.image, "accept", no_hash_check)
    v = _verdict(t, bytes(bad))
    assert v.kind == "violation" and "SHA-256 differs" in v.message


def test_trust_store_invariants_catch_a_foreign_signer_and_a_dropped_root(load, monkeypatch):
    t = load("trust_store")
    stranger = b"\x01" + t.host.signing.fixture("trust_v2_stranger.cbor")
    rotation = (t.corpus_dir / "regress-rotation-drops-signer").read_bytes()
    assert _verdict(t, stranger).kind == "rejected" and _verdict(t, rotation).kind == "rejected"
    real = t.probe.trust._root_key

    def any_root(keys, signer):  # the firmware before the fix: any root key of the new store would do
        return real(keys, signer) or next((k for k in keys if "root" in k["roles"]), None)

    monkeypatch.setattr(t.probe.trust, "_root_key", any_root)
    v = _verdict(t, rotation)  # the store it accepts, every later use refuses
    assert v.kind == "violation" and "trusts nothing" in v.message
    monkeypatch.setattr(t.probe.trust, "_root_signed", _always(True))
    v = _verdict(t, stranger)
    assert v.kind == "violation" and "not signed by a root key of the current store" in v.message


def test_bundle_invariants_catch_an_unsafe_path_and_a_half_written_slot(load, monkeypatch):
    t = load("bundle")
    dotdot = b"\x01" + t.host.inflate(t.host.payload_of(t.host.signing.fixture("bundle_dotdot.img")))
    bad_hash = b"\x01" + t.host.inflate(t.host.payload_of(t.host.signing.fixture("bundle_hash.img")))
    assert _verdict(t, dotdot).kind == "rejected" and _verdict(t, bad_hash).kind == "rejected"
    monkeypatch.setattr(t.probe.install, "rmtree", _always(None))
    v = _verdict(t, bad_hash)
    assert v.kind == "violation" and "left behind" in v.message
    monkeypatch.undo()
    monkeypatch.setattr(t.probe.bundle, "safe_path", lambda p, k="app": isinstance(p, str))
    v = _verdict(t, dotdot)
    assert v.kind == "violation" and "the slot holds" in v.message


def test_topup_invariants_catch_a_replayed_tid_and_an_unsigned_token(load, monkeypatch):
    t = load("topup_token")
    replay = t.host.topup(1, 1000) + t.host.topup(1, 1000)
    altered = b"\x07\x0a"
    assert _verdict(t, replay).kind == "ok" and _verdict(t, altered).kind == "ok"
    from app import tokens

    monkeypatch.setattr(tokens.TokenWindow, "check", lambda self, tid: None)
    v = _verdict(t, replay)
    assert v.kind == "violation" and "applied twice" in v.message
    monkeypatch.undo()
    from loader import envelope

    monkeypatch.setattr(envelope.ed25519, "verify", _always(True))
    v = _verdict(t, altered)
    assert v.kind == "violation" and "not a valid top-up" in v.message
