"""Property tests (CPython only) for firmware/lib/cbor.py: cross-checked against cbor2 and fuzzed."""

from __future__ import annotations

import math

import cbor2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cbor

U64 = 2**64 - 1

keys = st.one_of(st.text(max_size=12), st.integers(-U64 - 1, U64))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-U64 - 1, U64),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=80),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=40,
)


def depth(v) -> int:
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    return 0


def same(a, b) -> bool:
    """Equality that tells True from 1, 1 from 1.0 and -0.0 from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(type(k) is type(next(j for j in b if j == k)) and same(a[k], b[k])
                                            for k in a)
    return a == b


@settings(max_examples=400, deadline=None)
@given(values)
def test_ours_encodes_cbor2_decodes(v):
    assume(depth(v) <= cbor.MAX_DEPTH)
    enc = cbor.dumps(v)
    assert same(cbor2.loads(enc), v)
    assert same(cbor.loads(enc), v)
    assert cbor.dumps(cbor.loads(enc)) == enc  # deterministic


@settings(max_examples=400, deadline=None)
@given(values, st.booleans())
def test_cbor2_encodes_ours_decodes(v, canonical):
    # canonical=True is what the smp library sends (sorted keys, shortest floats: float16/32/64)
    assume(depth(v) <= cbor.MAX_DEPTH)
    assert same(cbor.loads(cbor2.dumps(v, canonical=canonical)), v)


no_maps_no_floats = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-U64 - 1, U64), st.text(max_size=300), st.binary(max_size=300)),
    lambda inner: st.lists(inner, max_size=30),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(no_maps_no_floats)
def test_heads_match_cbor2_shortest_form(v):
    # without maps (whose key order differs) and floats (cbor2 may shorten them) both encoders agree byte for byte
    assume(depth(v) <= cbor.MAX_DEPTH)
    assert cbor.dumps(v) == cbor2.dumps(v)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), leaves, max_size=8))
def test_map_keys_in_rfc8949_order(d):
    # RFC 8949 4.2.1: bytewise order of the encoded keys (cbor2's canonical=True is RFC 7049's length-first order)
    assert list(cbor.loads(cbor.dumps(d))) == sorted(d, key=cbor2.dumps)


def test_nan_and_indefinite_from_cbor2():
    assert math.isnan(cbor.loads(cbor2.dumps(float("nan"))))
    assert math.isnan(cbor2.loads(cbor.dumps(float("nan"))))
    enc = cbor2.dumps(cbor2.CBORTag(2, b"\x01" * 9))
    assert cbor.loads(enc) == b"\x01" * 9  # tags are skipped


@pytest.mark.parametrize("version", [0, 1])
def test_real_smp_upload_request_payload(version):
    from smp.image_management import ImageUploadWriteRequest

    data = bytes(range(256)) * 8
    req = ImageUploadWriteRequest(off=0, data=data, image=0, len=300000, sha=b"\x42" * 32, upgrade=True,
                                  version=version)
    payload = bytes(req)[8:]
    got = cbor.loads(payload)
    assert got == {"off": 0, "data": data, "image": 0, "len": 300000, "sha": b"\x42" * 32, "upgrade": True}


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120))
def test_fuzz_only_cbor_error(data):
    try:
        cbor.loads(data)
    except cbor.CBORError:
        pass


@st.composite
def mutated(draw):
    v = draw(values)
    assume(depth(v) <= cbor.MAX_DEPTH)
    b = bytearray(cbor2.dumps(v, canonical=draw(st.booleans())))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not b:
            break
        i = draw(st.integers(0, len(b) - 1))
        if op == "flip":
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            b[i] = draw(st.integers(0, 255))
        elif op == "insert":
            b.insert(i, draw(st.integers(0, 255)))
        elif op == "delete":
            del b[i]
        else:
            del b[i:]
    return bytes(b)


class _TagSpy(cbor._Decoder):
    """Our decoder, noting whether the input holds any tag (cbor2 gives tags meaning, we skip them)."""

    tagged = False

    def item(self, depth):
        if self.pos < self.end and self.mv[self.pos] >> 5 == 6:
            self.tagged = True
        return super().item(depth)


def has_tags(data: bytes) -> bool:
    spy = _TagSpy(memoryview(data), cbor.MAX_DEPTH, cbor.MAX_ITEMS)
    spy.item(0)
    return spy.tagged


def plain_value(x) -> bool:
    if isinstance(x, list):
        return all(plain_value(y) for y in x)
    if isinstance(x, dict):
        return all(plain_value(k) and plain_value(y) for k, y in x.items())
    return x is None or isinstance(x, (bool, int, float, str, bytes))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_only_cbor_error_and_agree_with_cbor2(data):
    try:
        ours = cbor.loads(data)
    except cbor.CBORError:
        return
    if has_tags(data):
        return  # cbor2 gives tags meaning (and rejects ill-typed tag content); we skip them
    # whatever else we accept, cbor2 accepts too and reads the same way
    theirs = cbor2.loads(data)
    if plain_value(theirs):  # undefined comes back from cbor2 as a non-plain value
        assert same(ours, theirs)


def test_limits_hold_for_hostile_lengths():
    for head in (b"\x5b", b"\x7b", b"\x9b", b"\xbb"):
        with pytest.raises(cbor.CBORError, match="length exceeds input"):
            cbor.loads(head + b"\xff" * 8)
    with pytest.raises(cbor.CBORError, match="depth"):
        cbor.loads(b"\x9f" * 5000)
    with pytest.raises(cbor.CBORError, match="too many items"):
        cbor.loads(b"\x9f" + b"\x00" * 5000 + b"\xff")
