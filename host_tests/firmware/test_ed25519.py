"""firmware/lib/ed25519.py on CPython and in the MicroPython VM (plain asserts; see conftest.py).

RFC 8032 section 7.1 vectors, then rejection cases. Crafted signatures are made with the module's own scalar
multiplication (ed25519._combine) and an RFC 8032 signer written here; each crafted case first checks that the
verification equation itself holds, so the rejection is known to come from the check under test."""

from binascii import unhexlify

import ed25519
from ed25519 import L, P, verify

# ------------------------------------------------------------------------------------------------ RFC 8032 7.1

RFC = [
    # (secret key, public key, message, signature)
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]
TEST_SHA_ABC = (
    "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
    "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
    # the message is SHA-512("abc")
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
)
TEST1024_PK = "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e"
TEST1024_MSG = unhexlify(
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23f"
    "b1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c"
    "941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a82"
    "1a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
    "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53"
    "f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d"
    "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759"
    "d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
    "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22"
    "f04d83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8"
    "fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb"
    "038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d371459867"
    "80fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1"
    "b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a4"
    "3dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
    "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fd"
    "e7cb68606937380db2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca"
    "c60c905c15fc910840b94c00a0b9d0"
)
TEST1024_SIG = "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"


def h(s):
    return unhexlify(s)


def test_rfc8032_vectors():
    for _, pk, msg, sig in RFC + [TEST_SHA_ABC]:
        assert verify(h(pk), h(msg), h(sig)) is True, pk
    assert verify(h(TEST1024_PK), TEST1024_MSG, h(TEST1024_SIG)) is True
    assert len(TEST1024_MSG) == 1023


def test_bytes_like_arguments():
    _, pk, msg, sig = RFC[2]
    pk, msg, sig = h(pk), h(msg), h(sig)
    assert verify(bytearray(pk), bytearray(msg), bytearray(sig)) is True
    assert verify(memoryview(pk), memoryview(msg), memoryview(sig)) is True
    # a memoryview slice of a larger buffer
    buf = b"x" + sig + b"y"
    assert verify(pk, msg, memoryview(buf)[1:65]) is True


# ------------------------------------------------------------------------------------ test helpers: an RFC 8032 signer


def base_mul(n):
    """Encoding of [n]B (through the module's own double-scalar multiplication, with [0] of the identity)."""
    return ed25519._combine(n % L, 0, 0, 1).to_bytes(32, "little")


def hash_mod_l(*parts):
    d = ed25519.sha512()
    for part in parts:
        d.update(part)
    return int.from_bytes(d.digest(), "little") % L


def secret_scalar(seed):
    d = ed25519.sha512(seed).digest()
    return int.from_bytes(d[:32], "little") & ((1 << 254) - 8) | (1 << 254), d[32:]


def sign(seed, msg):
    a, prefix = secret_scalar(seed)
    pk = base_mul(a)
    r = hash_mod_l(prefix, msg)
    rb = base_mul(r)
    s = (r + hash_mod_l(rb, pk, msg) * a) % L
    return rb + s.to_bytes(32, "little")


def equation_holds(pk, msg, sig):
    """Only the cofactorless equation, none of verify()'s input checks: encoding of [S]B - [k]A == R."""
    x, y = ed25519.decode(pk)
    s = int.from_bytes(sig[32:], "little")
    k = hash_mod_l(sig[:32], pk, msg)
    return ed25519._combine(s % L, k, (P - x) % P, y) == int.from_bytes(sig[:32], "little")


def le(n):
    return n.to_bytes(32, "little")


def test_signer_helper_reproduces_rfc_signatures():
    for sk, pk, msg, sig in RFC:
        assert base_mul(secret_scalar(h(sk))[0]) == h(pk)
        assert sign(h(sk), h(msg)) == h(sig)
        assert equation_holds(h(pk), h(msg), h(sig))


def test_constants():
    d = ed25519.D
    assert d * 121666 % P == P - 121665
    assert ed25519.D2 == 2 * d % P
    assert ed25519.SQRT_M1 * ed25519.SQRT_M1 % P == P - 1
    x, y = ed25519.BX, ed25519.BY
    assert y * 5 % P == 4 and x & 1 == 0
    assert (y * y - x * x - 1 - d * x * x % P * y * y) % P == 0  # -x^2 + y^2 = 1 + d x^2 y^2
    assert base_mul(1) == h("5866666666666666666666666666666666666666666666666666666666666666")
    assert ed25519.decode(base_mul(1)) == (x, y)
    assert base_mul(L) == ed25519.SMALL_ORDER[0]  # B has order L
    assert base_mul(0) == ed25519.SMALL_ORDER[0]


# ------------------------------------------------------------------------------------------------------ rejections


def test_flipped_bits_rejected():
    _, pk, msg, sig = RFC[2]
    pk, msg, sig = h(pk), h(msg), h(sig)
    for bit in range(0, 512, 5):  # R is bits 0..255, S is 256..511
        bad = bytearray(sig)
        bad[bit >> 3] ^= 1 << (bit & 7)
        assert verify(pk, msg, bytes(bad)) is False, bit
    for bit in range(0, 256, 5):
        bad = bytearray(pk)
        bad[bit >> 3] ^= 1 << (bit & 7)
        assert verify(bytes(bad), msg, sig) is False, bit
    for bit in range(16):
        bad = bytearray(msg)
        bad[bit >> 3] ^= 1 << (bit & 7)
        assert verify(pk, bytes(bad), sig) is False, bit
    assert verify(pk, msg + b"\x00", sig) is False
    assert verify(pk, msg[:1], sig) is False


def test_malleable_s_rejected():
    for _, pk, msg, sig in RFC:
        pk, msg, sig = h(pk), h(msg), h(sig)
        s = int.from_bytes(sig[32:], "little")
        for t in (s + L, s + 2 * L, s + 15 * L):
            bad = sig[:32] + le(t)
            assert equation_holds(pk, msg, bad)  # [S]B is the same point: only the S < L check rejects it
            assert verify(pk, msg, bad) is False
        for t in (L, L + 1, 2**256 - 1):
            assert verify(pk, msg, sig[:32] + le(t)) is False


def test_non_canonical_encodings_rejected():
    _, pk, msg, sig = RFC[0]
    pk, msg, sig = h(pk), h(msg), h(sig)
    for i in range(19):  # y = p + i, both sign bits
        for top in (0, 1 << 255):
            enc = le(P + i + top)
            assert ed25519.decode(enc) is None, i
            assert verify(enc, msg, sig) is False, i
            assert verify(pk, msg, enc + sig[32:]) is False, i
    # x = 0 with the sign bit set: the identity (y = 1) and the point of order 2 (y = -1)
    for y in (1, P - 1):
        assert ed25519.decode(le(y)) is not None
        assert ed25519.decode(le(y | 1 << 255)) is None
    # a non-canonical R that would otherwise verify: the identity (y = 1) written as y = p + 1, with A the
    # identity, S = 0 (rejected as non-canonical and as small order whichever check comes first)
    assert verify(ed25519.SMALL_ORDER[0], msg, le(P + 1) + le(0)) is False


def point_order(enc):
    x, y = ed25519.decode(enc)
    q = (x, y, 1, x * y % P)
    for n in (1, 2, 4, 8):
        if q[0] % P == 0 and (q[1] - q[2]) % P == 0:
            return n
        q = ed25519._dbl(q)
    return None


def test_small_order_table_is_the_torsion_subgroup():
    encs = ed25519.SMALL_ORDER
    assert len(set(encs)) == 8
    assert sorted(point_order(e) for e in encs) == [1, 2, 4, 4, 8, 8, 8, 8]


def test_small_order_public_keys_rejected():
    _, _, msg, sig = RFC[1]
    msg, sig = h(msg), h(sig)
    for enc in ed25519.SMALL_ORDER:
        assert verify(enc, msg, sig) is False
    # with A the identity, R = B and S = 1 satisfy [S]B = R + [k]A for every message
    ident = ed25519.SMALL_ORDER[0]
    forged = base_mul(1) + le(1)
    for m in (b"", b"firmware", msg):
        assert equation_holds(ident, m, forged)
        assert verify(ident, m, forged) is False
    assert equation_holds(ident, msg, ident + le(0))
    assert verify(ident, msg, ident + le(0)) is False
    # A of order 2 (y = -1): the same forgery holds whenever k is even
    two = ed25519.SMALL_ORDER[1]
    m = next(m for m in (b"%d" % i for i in range(64)) if hash_mod_l(forged[:32], two, m) % 2 == 0)
    assert equation_holds(two, m, forged)
    assert verify(two, m, forged) is False


def mixed_order_key(seed):
    """A + T where T = (0, -1) has order 2: (x, y) + (0, -1) = (-x, -y); returns (a, A + T)."""
    a, _ = secret_scalar(seed)
    x, y = ed25519.decode(base_mul(a))
    return a, ed25519.encode(P - x, P - y)


def test_small_order_r_rejected():
    sk, pk, msg, _ = RFC[0]
    a, _ = secret_scalar(h(sk))
    pk = h(pk)
    ident = ed25519.SMALL_ORDER[0]
    # R = identity and S = k a: [S]B = [k]A = R + [k]A
    k = hash_mod_l(ident, pk, b"update")
    forged = ident + le(k * a % L)
    assert equation_holds(pk, b"update", forged)
    assert verify(pk, b"update", forged) is False
    # R = T (order 2) with the mixed-order key A' = A + T and S = k a: [S]B - [k]A' = -[k]T = T when k is odd
    a, pk2 = mixed_order_key(h(sk))
    t = ed25519.SMALL_ORDER[1]
    m = next(m for m in (b"%d" % i for i in range(64)) if hash_mod_l(t, pk2, m) % 2 == 1)
    forged = t + le(hash_mod_l(t, pk2, m) * a % L)
    assert equation_holds(pk2, m, forged)
    assert verify(pk2, m, forged) is False
    for enc in ed25519.SMALL_ORDER:
        assert verify(pk, h(msg), enc + le(1)) is False


def test_cofactorless_choice_on_a_mixed_order_key():
    # An honest-looking signature under A' = A + T (T of order 2): [S]B - [k]A' = R - [k]T, which equals R iff k is
    # even. Cofactorless verification (this module) accepts exactly then; cofactored verification would accept both.
    sk = h(RFC[1][0])
    a, pk2 = mixed_order_key(sk)
    seen = set()
    for i in range(12):
        m = b"image %d" % i
        r = hash_mod_l(b"nonce", m)
        rb = base_mul(r)
        k = hash_mod_l(rb, pk2, m)
        sig = rb + le((r + k * a) % L)
        assert verify(pk2, m, sig) is (k % 2 == 0), i
        seen.add(k % 2)
    assert seen == {0, 1}


def test_public_key_not_on_curve_rejected():
    _, _, msg, sig = RFC[0]
    d = ed25519.D
    found = 0
    for y in range(2, 40):
        u = (y * y - 1) % P
        v = (d * y * y + 1) % P
        square = pow(u * pow(v, P - 2, P) % P, (P - 1) // 2, P) == 1  # Euler's criterion, independent of decode
        assert (ed25519.decode(le(y)) is not None) == square, y
        if not square:
            found += 1
            assert verify(le(y), h(msg), h(sig)) is False
            assert verify(le(y | 1 << 255), h(msg), h(sig)) is False
    assert found >= 5


def test_wrong_lengths_rejected():
    _, pk, msg, sig = RFC[2]
    pk, msg, sig = h(pk), h(msg), h(sig)
    assert verify(pk, msg, sig) is True
    for bad_pk in (b"", pk[:31], pk + b"\x00", pk + pk):
        assert verify(bad_pk, msg, sig) is False
    for bad_sig in (b"", sig[:32], sig[:63], sig + b"\x00", sig + sig):
        assert verify(pk, msg, bad_sig) is False


def test_wrong_types_rejected_without_raising():
    _, pk, msg, sig = RFC[2]
    pk, msg, sig = h(pk), h(msg), h(sig)
    text_msg = "".join(chr(b) for b in msg)
    for bad in (None, 0, 1.5, "x" * 32, [0] * 32, tuple(pk), {}, object()):
        assert verify(bad, msg, sig) is False
        assert verify(pk, bad, sig) is False
        assert verify(pk, msg, bad) is False
    assert verify(pk, text_msg, sig) is False
    assert verify("".join(chr(b) for b in pk), msg, sig) is False
