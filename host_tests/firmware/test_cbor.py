"""firmware/lib/cbor.py on CPython and in the MicroPython VM (plain asserts; see conftest.py)."""

import binascii

import cbor
import fwtest


def h(s):
    return binascii.unhexlify(s)


def same(a, b):
    # equality that also tells 1 from True, 1 from 1.0, -0.0 from 0.0 and accepts NaN == NaN
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if a != a:
            return b != b
        return a == b and str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(a[i], b[i]) for i in range(len(a)))
    if isinstance(a, dict):
        # MicroPython dicts have no insertion order: compare as mappings
        return len(a) == len(b) and all(k in b and type(k) is type(_key(b, k)) and same(a[k], b[k]) for k in a)
    return a == b


def _key(d, k):
    for x in d:
        if x == k:
            return x
    return None


def err(data, **kw):
    return str(fwtest.raises(cbor.CBORError, cbor.loads, h(data), **kw))


# RFC 8949 Appendix A (tags are skipped: bignums come back as their byte strings, dates as their content)
NAN = float("nan")
INF = float("inf")
APPENDIX_A = [
    ("00", 0), ("01", 1), ("0a", 10), ("17", 23), ("1818", 24), ("1819", 25), ("1864", 100), ("1903e8", 1000),
    ("1a000f4240", 1000000), ("1b000000e8d4a51000", 1000000000000),
    ("1bffffffffffffffff", 18446744073709551615),
    ("c249010000000000000000", b"\x01\x00\x00\x00\x00\x00\x00\x00\x00"),
    ("3bffffffffffffffff", -18446744073709551616),
    ("c349010000000000000000", b"\x01\x00\x00\x00\x00\x00\x00\x00\x00"),
    ("20", -1), ("29", -10), ("3863", -100), ("3903e7", -1000),
    ("f90000", 0.0), ("f98000", -0.0), ("f93c00", 1.0), ("fb3ff199999999999a", 1.1), ("f93e00", 1.5),
    ("f97bff", 65504.0), ("fa47c35000", 100000.0), ("fa7f7fffff", 3.4028234663852886e38),
    ("fb7e37e43c8800759c", 1.0e300), ("f90001", 5.960464477539063e-8), ("f90400", 0.00006103515625),
    ("f9c400", -4.0), ("fbc010666666666666", -4.1),
    ("f97c00", INF), ("f97e00", NAN), ("f9fc00", -INF),
    ("fa7f800000", INF), ("fa7fc00000", NAN), ("faff800000", -INF),
    ("fb7ff0000000000000", INF), ("fb7ff8000000000000", NAN), ("fbfff0000000000000", -INF),
    ("f4", False), ("f5", True), ("f6", None), ("f7", None),
    ("c074323031332d30332d32315432303a30343a30305a", "2013-03-21T20:04:00Z"),
    ("c11a514b67b0", 1363896240), ("c1fb41d452d9ec200000", 1363896240.5),
    ("d74401020304", b"\x01\x02\x03\x04"), ("d818456449455446", b"dIETF"),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", "http://www.example.com"),
    ("40", b""), ("4401020304", b"\x01\x02\x03\x04"),
    ("60", ""), ("6161", "a"), ("6449455446", "IETF"), ("62225c", '"\\'), ("62c3bc", "\u00fc"),
    ("63e6b0b4", "\u6c34"), ("64f0908591", "\U00010151"),
    ("80", []), ("83010203", [1, 2, 3]), ("8301820203820405", [1, [2, 3], [4, 5]]),
    ("98190102030405060708090a0b0c0d0e0f101112131415161718181819", list(range(1, 26))),
    ("a0", {}), ("a201020304", {1: 2, 3: 4}), ("a26161016162820203", {"a": 1, "b": [2, 3]}),
    ("826161a161626163", ["a", {"b": "c"}]),
    ("a56161614161626142616361436164614461656145", {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}),
    ("5f42010243030405ff", b"\x01\x02\x03\x04\x05"), ("7f657374726561646d696e67ff", "streaming"),
    ("9fff", []), ("9f018202039f0405ffff", [1, [2, 3], [4, 5]]), ("9f01820203820405ff", [1, [2, 3], [4, 5]]),
    ("83018202039f0405ff", [1, [2, 3], [4, 5]]), ("83019f0203ff820405", [1, [2, 3], [4, 5]]),
    ("9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", list(range(1, 26))),
    ("bf61610161629f0203ffff", {"a": 1, "b": [2, 3]}), ("826161bf61626163ff", ["a", {"b": "c"}]),
    ("bf6346756ef563416d7421ff", {"Fun": True, "Amt": -2}),
]


def test_rfc8949_appendix_a_decode():
    for hx, want in APPENDIX_A:
        got = cbor.loads(h(hx))
        assert same(got, want), (hx, got, want)


def test_rfc8949_appendix_a_encode_definite_examples():
    # every Appendix A example our encoder can produce byte-for-byte (ints, strings, containers, simple values)
    n = 0
    for hx, want in APPENDIX_A:
        heads = [hx[i : i + 2] for i in range(0, len(hx), 2)]
        indefinite = "5f" in heads or "7f" in heads or "9f" in heads or "bf" in heads
        if indefinite or hx[:2] in ("f7", "c0", "c1", "c2", "c3", "d7", "d8") or isinstance(want, float):
            continue  # indefinite lengths, undefined, tags and floats are decode-only forms
        assert cbor.dumps(want) == h(hx), (hx, cbor.dumps(want))
        n += 1
    assert n == 37


def test_encode_canonical_heads():
    cases = [
        (0, "00"), (23, "17"), (24, "1818"), (255, "18ff"), (256, "190100"), (65535, "19ffff"),
        (65536, "1a00010000"), (4294967295, "1affffffff"), (4294967296, "1b0000000100000000"),
        (18446744073709551615, "1bffffffffffffffff"), (-1, "20"), (-24, "37"), (-25, "3818"), (-256, "38ff"),
        (-257, "390100"), (-18446744073709551616, "3bffffffffffffffff"),
    ]
    for v, hx in cases:
        assert cbor.dumps(v) == h(hx), (v, cbor.dumps(v))
    assert cbor.dumps("a" * 23)[:1] == h("77")
    assert cbor.dumps("a" * 24)[:2] == h("7818")
    assert cbor.dumps(b"\x00" * 256)[:3] == h("590100")
    assert cbor.dumps(list(range(24)))[:2] == h("9818")
    assert cbor.dumps({i: i for i in range(24)})[:2] == h("b818")


def test_encode_types():
    assert cbor.dumps(None) == h("f6")
    assert cbor.dumps(True) == h("f5")
    assert cbor.dumps(False) == h("f4")
    assert cbor.dumps(1.5) == h("fb3ff8000000000000")
    assert cbor.dumps(-0.0) == h("fb8000000000000000")
    assert cbor.dumps(bytearray(b"ab")) == h("426162")
    assert cbor.dumps(memoryview(b"xaby")[1:3]) == h("426162")
    assert cbor.dumps((1, 2)) == h("820102")
    assert cbor.dumps("\u00fc") == h("62c3bc")
    assert cbor.dumps({"rc": 0}) == h("a1627263" + "00")
    assert cbor.dumps({-1: "x"}) == h("a1206178")
    assert isinstance(cbor.dumps(1), bytes)


def test_encode_errors():
    fwtest.raises(ValueError, cbor.dumps, 18446744073709551616)
    fwtest.raises(ValueError, cbor.dumps, -18446744073709551617)
    fwtest.raises(ValueError, cbor.dumps, [2**70])
    fwtest.raises(TypeError, cbor.dumps, {1.5: 1})
    fwtest.raises(TypeError, cbor.dumps, {(1, 2): 1})
    fwtest.raises(TypeError, cbor.dumps, {True: 1})
    fwtest.raises(TypeError, cbor.dumps, {None: 1})
    fwtest.raises(TypeError, cbor.dumps, {1, 2})
    fwtest.raises(TypeError, cbor.dumps, object())
    deep = 0
    for _ in range(cbor.MAX_DEPTH):
        deep = [deep]
    assert cbor.loads(cbor.dumps(deep)) == deep
    e = fwtest.raises(ValueError, cbor.dumps, [deep])
    assert str(e) == "depth"
    cyc = []
    cyc.append(cyc)
    fwtest.raises(ValueError, cbor.dumps, cyc)


def test_round_trip():
    values = [
        0, 1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63, 2**64 - 1, -(2**64),
        0.0, -0.0, 1.1, -4.1, 1e300, float("inf"), -float("inf"), float("nan"), 5e-324,
        "", "a", "IETF", "\u00fc\u6c34\U00010151", "x" * 300, b"", b"\x00\xff" * 200,
        [], [1, [2, [3, []]]], {}, {"a": {"b": {"c": [None, True, False]}}}, {1: "x", -2: "y", "z": 3},
        list(range(300)),
    ]
    for v in values:
        got = cbor.loads(cbor.dumps(v))
        assert same(got, v), (v, got)
    assert cbor.loads(cbor.dumps((1, (2, 3)))) == [1, [2, 3]]
    assert cbor.loads(cbor.dumps(bytearray(b"q"))) == b"q"


def test_smp_upload_request_round_trip():
    data = bytes(range(256)) * 8
    req = {"image": 0, "len": 123456, "off": 0, "sha": b"\x11" * 32, "data": data, "upgrade": False}
    enc = cbor.dumps(req)
    assert len(enc) < len(data) + 80
    got = cbor.loads(enc)
    assert got == req
    assert isinstance(got["data"], bytes)


def test_decode_inputs_bytes_bytearray_memoryview():
    enc = cbor.dumps({"off": 2048, "data": b"abc"})
    want = {"off": 2048, "data": b"abc"}
    assert cbor.loads(enc) == want
    assert cbor.loads(bytearray(enc)) == want
    buf = bytearray(b"\xee\xee" + enc + b"\xee")
    assert cbor.loads(memoryview(buf)[2 : 2 + len(enc)]) == want


def test_decode_non_shortest_heads_accepted():
    assert cbor.loads(h("1800")) == 0
    assert cbor.loads(h("1b0000000000000001")) == 1
    assert cbor.loads(h("5900026162")) == b"ab"
    assert cbor.loads(h("b8010102")) == {1: 2}


def test_decode_half_floats():
    assert cbor.loads(h("f93555")) == 0.333251953125
    assert cbor.loads(h("f903ff")) == 1023 * 2.0**-24  # largest subnormal
    assert cbor.loads(h("f97bff")) == 65504.0
    assert cbor.loads(h("f9fbff")) == -65504.0
    assert str(cbor.loads(h("f98000"))) == "-0.0"
    v = cbor.loads(h("f97c01"))
    assert v != v


def test_error_truncated():
    for hx in ("", "18", "19", "1901", "1a000000", "1b00000000000000", "38", "f9", "f900", "fa0000", "fb00",
               "828100", "a201818100", "5f", "5f4161", "7f", "9f", "9f01", "bf", "bf0102", "c1", "d9", "f8"):
        assert err(hx) == "truncated", hx
    for hx in ("81", "8201", "a1", "a101", "a20102"):  # counts checked against the remaining input up front
        assert err(hx) == "length exceeds input", hx


def test_error_trailing_bytes():
    for hx in ("0000", "f600", "8000", "a0ff", "9fff00", "6161ff"):
        assert err(hx) == "trailing bytes", hx


def test_error_reserved_additional_info():
    for mt in range(8):
        for ai in (28, 29, 30):
            hx = "%02x" % ((mt << 5) | ai)
            assert err(hx) == "reserved additional info", hx


def test_error_indefinite_misuse():
    assert err("1f") == "indefinite integer"
    assert err("3f") == "indefinite integer"
    assert err("df00") == "indefinite tag"
    assert err("ff") == "unexpected break"
    assert err("81ff") == "unexpected break"
    assert err("bf6161ff") == "unexpected break"  # break where a value belongs
    assert err("a1ff00") == "unexpected break"
    assert err("5f6161ff") == "indefinite chunk type"
    assert err("7f4161ff") == "indefinite chunk type"
    assert err("5f5f4161ffff") == "indefinite chunk type"
    assert err("7f01ff") == "indefinite chunk type"


def test_error_invalid_utf8():
    for hx in ("61ff", "6180", "62c080", "62c1bf", "63e08080", "63eda080", "63edbfbf", "64f4908080", "64f8888080",
               "62c328", "61c3", "62e282", "7f61c361a9ff"):
        assert err(hx) == "invalid utf-8", hx
    assert cbor.loads(h("63ed9fbf")) == "\ud7ff"
    assert cbor.loads(h("63ee8080")) == "\ue000"
    assert cbor.loads(h("64f48fbfbf")) == "\U0010ffff"
    assert cbor.loads(h("7f62c3bc6161ff")) == "\u00fca"


def test_error_map_keys():
    for hx in ("a1f601", "a1f501", "a18001", "a1a001", "a1416101", "a1fb3ff000000000000001", "bf8001ff"):
        assert err(hx) == "map key type", hx
    assert err("a201020103") == "duplicate key"
    assert err("a2616101616102") == "duplicate key"
    assert cbor.loads(h("a2016161616101")) == {1: "a", "a": 1}
    assert cbor.loads(h("a1c1616101")) == {"a": 1}  # a tagged key counts as its content


def test_error_depth():
    ok = "81" * 16 + "00"
    assert cbor.loads(h(ok)) is not None
    assert err("81" * 17 + "00") == "depth"
    assert err("9f" * 17 + "00" + "ff" * 17) == "depth"
    assert err("a100" * 17 + "00") == "depth"
    assert cbor.loads(h("a100" * 16 + "00")) is not None
    assert err("c1" * 17 + "00") == "depth"
    assert cbor.loads(h("c1" * 16 + "00")) == 0
    assert err("8100", max_depth=0) == "depth"
    assert cbor.loads(h("8100"), max_depth=1) == [0]


def test_error_item_limit():
    assert cbor.loads(h("83010203"), max_items=4) == [1, 2, 3]
    assert err("83010203", max_items=3) == "too many items"
    assert err("9f010203ff", max_items=3) == "too many items"
    assert err("a201020304", max_items=4) == "too many items"
    big = h("5904b0") + bytes(1200)  # 1200 bytes: one item
    assert len(cbor.loads(big)) == 1200
    many = h("990800") + bytes(2048)  # 2048 zeros
    assert str(fwtest.raises(cbor.CBORError, cbor.loads, many)) == "too many items"
    assert len(cbor.loads(many, max_items=2049)) == 2048


def test_error_length_exceeds_input():
    for hx in ("5bffffffffffffffff", "7bffffffffffffffff", "9bffffffffffffffff", "bbffffffffffffffff",
               "5a7fffffff", "6261", "4401020300"[:8], "830000", "a20102", "5f4301ff"):
        assert err(hx) in ("length exceeds input", "truncated"), hx
    assert err("5bffffffffffffffff") == "length exceeds input"
    assert err("9bffffffffffffffff") == "length exceeds input"
    assert err("bb0000000100000000") == "length exceeds input"
    assert err("6261") == "length exceeds input"
    assert err("a20102") == "length exceeds input"


def test_error_simple_values():
    for hx in ("e0", "f0", "f3", "f820", "f8ff"):
        assert err(hx) == "unsupported simple value", hx
    for hx in ("f800", "f813", "f81f"):
        assert err(hx) == "invalid simple value", hx


def test_error_is_value_error():
    e = fwtest.raises(ValueError, cbor.loads, b"\xff")
    assert isinstance(e, cbor.CBORError)


def test_junk_never_escapes_as_other_exception():
    # deterministic mini-fuzz (the hypothesis version lives in host_tests/unit): prefixes and byte flips of a
    # realistic message must decode or raise CBORError, nothing else
    base = cbor.dumps({"images": [{"slot": 0, "version": "1.2.3", "hash": b"\x01" * 32, "active": True}],
                       "x": [1.5, -7, "\u00fc", None]}) + h("bf6161ff")
    for n in range(len(base) + 1):
        try:
            cbor.loads(base[:n])
        except cbor.CBORError:
            pass
    seed = 12345
    for _ in range(3000):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        b = bytearray(base)
        b[seed % len(b)] = (seed >> 8) & 0xFF
        try:
            cbor.loads(b)
        except cbor.CBORError:
            pass


def test_encode_map_keys_sorted_deterministically():
    # bytewise order of encoded keys: small ints, then negative ints, then short strings before longer ones
    d = {"zz": 1, "a": 2, 10: 3, -1: 4, 0: 5, "b": 6}
    assert cbor.dumps(d) == h("a6" + "0005" + "0a03" + "2004" + "616102" + "616206" + "627a7a01")
    assert cbor.loads(cbor.dumps(d)) == d
