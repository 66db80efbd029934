"""firmware/lib/sha512.py (the pure-Python SHA-512) on CPython and in the MicroPython VM (plain asserts; see conftest.py).

The pure module is imported directly, so it is tested on CPython too (where ed25519.py uses hashlib's)."""

from binascii import hexlify, unhexlify

import fwtest
import sha512
from sha512 import sha512 as SHA512


def hexd(data):
    return SHA512(data).hexdigest()


# FIPS 180-2 appendix C / NIST example values
def test_fips_empty():
    assert hexd(b"") == ("cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                         "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")


def test_fips_abc():
    assert hexd(b"abc") == ("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")


def test_fips_896_bit_message():
    m = (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
         b"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
    assert len(m) * 8 == 896
    assert hexd(m) == ("8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
                       "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909")


def pattern(n):
    return bytes((i * 131 + (i >> 8)) & 0xFF for i in range(n))


def test_10kB_input():
    # 78 full blocks and a tail; the digest was computed with CPython's hashlib.sha512
    assert hexd(pattern(10000)) == ("d6292bb56cf31bcf325d61be70177dd5007cf436cda5396d2d1e7d219d0c0bc1"
                                    "9668d29d30c9b417390a7d643e0ced35e2ef6126cd0d143a98885c6918e4c8ab")


# first 16 bytes of SHA-512(bytes(range(n))) from CPython's hashlib: lengths around the padding boundaries
# (111 is the longest one-block tail, 112 needs a second padding block)
PREFIXES = [
    (1, "b8244d028981d693af7b456af8efa4ca"), (55, "6856647f269c2ee3d8128f0b25427659"),
    (111, "a1a111449b198d9b1f538bad7f3fc102"), (112, "c5fbd731d19d2ae1180f001be72c2c1a"),
    (113, "61b2e77db697dfe5571fff3ed06bd60c"), (127, "eab89674feaa34e27aebeeff3c0a4d70"),
    (128, "1dffd5e3adb71d45d2245939665521ae"), (129, "1d9da57fbbdab09afb3506ab2d223d06"),
    (239, "cb4c7fd522756d5781ad3a4f590a1d86"), (240, "6c48466c9f6c07e4ab762c696b7eeb35"),
    (256, "1e7b80bc8edc552c8feeb2780e111477"),
]


def test_padding_boundaries():
    data = bytes(range(256))
    for n, want in PREFIXES:
        assert hexd(data[:n])[:32] == want, n


def test_incremental_update_equals_one_shot():
    data = pattern(700)
    want = SHA512(data).digest()
    for cut in (0, 1, 63, 111, 112, 127, 128, 129, 255, 256, 257, 400, 699, 700):
        h = SHA512(data[:cut])
        h.update(data[cut:])
        assert h.digest() == want, cut
    for step in (1, 7, 64, 127, 128, 129, 300):
        h = SHA512()
        for i in range(0, len(data), step):
            h.update(data[i:i + step])
        assert h.digest() == want, step
    # three-way split crossing a block boundary inside the buffered tail
    h = SHA512(data[:100])
    h.update(data[100:150])
    h.update(data[150:])
    assert h.digest() == want


def test_digest_does_not_end_the_object_and_copy_is_independent():
    h = SHA512(b"ab")
    first = h.digest()
    assert h.digest() == first
    c = h.copy()
    h.update(b"c")
    assert h.digest() == SHA512(b"abc").digest()
    assert c.digest() == first
    c.update(b"x" * 200)
    assert c.digest() == SHA512(b"ab" + b"x" * 200).digest()
    assert h.digest() == SHA512(b"abc").digest()


def test_interface():
    h = sha512.new(b"abc")
    assert h.digest_size == 64 and h.block_size == 128 and h.name == "sha512"
    d = h.digest()
    assert isinstance(d, bytes) and len(d) == 64
    assert h.hexdigest() == hexlify(d).decode()
    assert d == unhexlify(hexd(b"abc"))
    assert SHA512().digest() == SHA512(b"").digest()


def test_bytes_like_inputs_and_str_rejected():
    want = SHA512(b"hello world").digest()
    assert SHA512(bytearray(b"hello world")).digest() == want
    assert SHA512(memoryview(b"hello world")).digest() == want
    h = SHA512(b"hello ")
    h.update(memoryview(b"world"))
    assert h.digest() == want
    big = pattern(300)
    assert SHA512(memoryview(big)).digest() == SHA512(big).digest()
    fwtest.raises(TypeError, SHA512, "text")
    fwtest.raises(TypeError, SHA512().update, "text")
