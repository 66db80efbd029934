"""Compact AES-128-GCM and GMAC (NIST SP 800-38D) for DLMS/COSEM security suite 0 (IEC 62056-5-3, Green Book).

    from gcm import GCM
    g = GCM(key)                                  # 16-byte block cipher key (EK); the hash subkey is made here
    ct, tag = g.encrypt(iv, plaintext, aad, 12)   # iv: 12 bytes (system title 8 + invocation counter 4)
    pt = g.decrypt(iv, ct, aad, tag)              # the plaintext, or None when the tag is wrong
    t = g.tag(iv, aad, 12)                        # GMAC: authentication only (HLS-GMAC, authenticated APDUs)
    ok = g.verify(iv, aad, t)                     # True when t is GMAC(iv, aad)

What a caller may rely on:
- Inputs are bytes-like (bytes, bytearray, memoryview); the ciphertext and plaintext come back as new bytearrays
  and tags as bytes. `tag_len` is 12 (DLMS truncates to 12) or 16 (the default); decrypt and verify take the tag's
  length from the tag given. A key that is not 16 bytes, an IV that is not 12 bytes or a tag length other than 12
  or 16 raises ValueError: those are the caller's sizes, never the peer's data.
- decrypt checks the tag over the whole ciphertext before it decrypts anything: on a wrong tag it returns None and no
  plaintext is made. Tags are compared in time that does not depend on where they differ.
- Each IV must be used at most once per key (DLMS: a fresh invocation counter per APDU); the caller keeps that.
- One GCM object serves one call at a time (it keeps its counter and keystream blocks); it can be kept for the
  session and reused for any number of messages.

Only AES encryption in ECB mode comes from `cryptolib` (every port that has cryptolib offers that); CTR mode is built
here. `cryptolib` on the boards (MicroPython source, checked at v1.29.0-preview): the rp2 port defines
MICROPY_PY_CRYPTOLIB on every board (RPI_PICO included; mbedTLS is always linked); the esp32 port gets it with
MICROPY_PY_SSL, which follows MICROPY_PY_NETWORK, on by default (ESP32_GENERIC has it). v1.26 enabled it explicitly
on both; the v1.27 previews briefly lost it on rp2 boards without networking (fixed in e6a7dc1 before v1.27.0). A
build without it (an esp32 board built with network off, a trimmed custom build) fails `import gcm` with ImportError,
so the meter then cannot speak suite 0 (public and LLS associations are unaffected): keep cryptolib in such builds.

GHASH: field elements are Python ints holding the 128 bits in GCM's order (the first bit of a block is the int's
top bit). A product is a 4-bit windowed carry-less multiplication by H over one table of 16 unreduced multiples n*H,
reduced once per block by x^128 = x^7 + x^2 + x + 1 rather than per nibble as in Shoup's method: 40% fewer
big-int operations. Measured in the unix VM (64-bit): about 10 us per 16-byte block for GMAC and 11 us for
encryption (a 256-byte APDU: 0.15 ms / 0.19 ms); a GCM object holds 1.8 KB; each block leaves about 5.6 KB of
short-lived big-int garbage (on a board every 128-bit value is a heap-allocated big int too). A second table of
n*H*x^4 would save 15% of the time and 18% of the garbage for 1.1 KB more per object; Shoup's method is 45% slower.
"""

from struct import pack_into

from cryptolib import aes  # on CPython: meterkit/mpy_compat/cryptolib.py
from micropython import const  # on CPython: meterkit/mpy_compat/micropython.py

_ECB = const(1)  # cryptolib's mode number for ECB (cryptolib.MODE_ECB is left out of the esp32 and rp2 builds)
_M127 = const(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF)  # 2**127 - 1


class GCM:
    def __init__(self, key):
        if len(key) != 16:
            raise ValueError("key must be 16 bytes")
        self._aes = aes(key, _ECB)
        self._ctr = bytearray(16)  # counter block: IV then a 32-bit big-endian counter
        self._ks = bytearray(16)  # keystream block, and the lengths block
        self._aes.encrypt(self._ks, self._ks)  # H = E(K, 0^128)
        h = int.from_bytes(self._ks, "big")
        t = [0] * 16  # t[n] = n * H (carry-less, unreduced): bit 3 of n is the coefficient of x^0
        for n in range(1, 16):
            t[n] = (t[n >> 1] << 1) ^ (h if n & 1 else 0)
        self._t = t

    def encrypt(self, iv, plaintext, aad=b"", tag_len=16):
        """(ciphertext, tag) of plaintext under iv, authenticating aad too."""
        self._start(iv, tag_len)
        ct = self._crypt(plaintext)
        return ct, self._mac(aad, ct, tag_len)

    def decrypt(self, iv, ciphertext, aad, tag):
        """The plaintext, or None when tag is not the tag of (iv, ciphertext, aad)."""
        n = len(tag)
        self._start(iv, n)
        if not _same(self._mac(aad, ciphertext, n), tag):
            return None
        return self._crypt(ciphertext)

    def tag(self, iv, aad, tag_len=16):
        """GMAC of aad under iv: the GCM tag with no plaintext."""
        self._start(iv, tag_len)
        return self._mac(aad, b"", tag_len)

    def verify(self, iv, aad, tag):
        """True when tag is the GMAC of aad under iv."""
        n = len(tag)
        self._start(iv, n)
        return _same(self._mac(aad, b"", n), tag)

    def _start(self, iv, tag_len):
        if len(iv) != 12:
            raise ValueError("iv must be 12 bytes")
        if tag_len != 12 and tag_len != 16:
            raise ValueError("tag must be 12 or 16 bytes")
        self._ctr[0:12] = iv

    def _crypt(self, data):
        # CTR: block i (from 0) is XORed with E(K, IV || i + 2); counter 1 (J0) is kept for the tag
        n = len(data)
        out = bytearray(n)
        mv = memoryview(data)
        ctr = self._ctr
        ks = self._ks
        enc = self._aes.encrypt
        c = 2
        for o in range(0, n, 16):
            pack_into(">I", ctr, 12, c)
            c += 1
            enc(ctr, ks)
            k = min(16, n - o)
            x = int.from_bytes(mv[o:o + k], "big") ^ (int.from_bytes(ks, "big") >> (128 - 8 * k))
            out[o:o + k] = x.to_bytes(k, "big")
        return out

    def _mac(self, aad, ct, tag_len):
        ks = self._ks
        y = self._ghash(self._ghash(0, aad), ct)
        pack_into(">QQ", ks, 0, len(aad) * 8, len(ct) * 8)
        y = self._ghash(y, ks)
        ctr = self._ctr
        pack_into(">I", ctr, 12, 1)
        self._aes.encrypt(ctr, ks)  # E(K, J0)
        return (y ^ int.from_bytes(ks, "big")).to_bytes(16, "big")[:tag_len]

    def _ghash(self, y, data):
        # y = (y ^ block) * H for each 16-byte block of data, the last one zero-padded
        t = self._t
        n = len(data)
        mv = memoryview(data)
        for o in range(0, n, 16):
            k = n - o
            if k >= 16:
                y ^= int.from_bytes(mv[o:o + 16], "big")
            else:
                y ^= int.from_bytes(mv[o:], "big") << (128 - 8 * k)
            # p = y * H carry-less: bit 254 - m of p is the coefficient of x^m
            p = 0
            for b in y.to_bytes(16, "big"):
                p = (p << 8) ^ (t[b >> 4] << 4) ^ t[b & 15]
            # reduce: the low 127 bits m of p stand for x^128 * m(x), and x^128 = 1 + x + x^2 + x^7 makes that
            # m<<1 ^ m ^ m>>1 ^ m>>6; the terms that >>1 and >>6 push out (x^128..x^133, from m's low 6 bits) are
            # folded into m first
            m = p & _M127
            m ^= ((m & 1) << 126) ^ ((m & 63) << 121)
            y = (p >> 127) ^ (m << 1) ^ m ^ (m >> 1) ^ (m >> 6)
        return y


def _same(a, b):
    # compares equal-length tags in time that does not depend on where they differ
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0
