"""Compact pure-Python SHA-512 (FIPS 180-4) for runtimes whose hashlib lacks it (MicroPython: md5/sha1/sha256 only).

    from sha512 import sha512
    h = sha512(b"abc"); h.update(b"more"); h.digest()   # 64 bytes; also hexdigest() and copy()

Same interface as hashlib.sha512 (new() is an alias). digest() does not end the object: more data may follow.
Runs unchanged on MicroPython boards, the unix VM and CPython. Words are Python ints masked to 64 bits; rotations
are built unmasked and masked once per result (XOR/OR/addition never carry high garbage into the low 64 bits).
About 0.25 ms per 128-byte block in the unix VM (on a board every 64-bit word is a heap-allocated big int).
"""

from struct import pack, unpack_from

_M = 0xFFFFFFFFFFFFFFFF

# initial hash value and round constants: first 64 bits of the fractional parts of the square roots of the first 8
# primes and of the cube roots of the first 80 primes (FIPS 180-4 5.3.5, 4.2.3)
_IV = (
    0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
    0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179,
)
_K = (
    0x428A2F98D728AE22, 0x7137449123EF65CD, 0xB5C0FBCFEC4D3B2F, 0xE9B5DBA58189DBBC,
    0x3956C25BF348B538, 0x59F111F1B605D019, 0x923F82A4AF194F9B, 0xAB1C5ED5DA6D8118,
    0xD807AA98A3030242, 0x12835B0145706FBE, 0x243185BE4EE4B28C, 0x550C7DC3D5FFB4E2,
    0x72BE5D74F27B896F, 0x80DEB1FE3B1696B1, 0x9BDC06A725C71235, 0xC19BF174CF692694,
    0xE49B69C19EF14AD2, 0xEFBE4786384F25E3, 0x0FC19DC68B8CD5B5, 0x240CA1CC77AC9C65,
    0x2DE92C6F592B0275, 0x4A7484AA6EA6E483, 0x5CB0A9DCBD41FBD4, 0x76F988DA831153B5,
    0x983E5152EE66DFAB, 0xA831C66D2DB43210, 0xB00327C898FB213F, 0xBF597FC7BEEF0EE4,
    0xC6E00BF33DA88FC2, 0xD5A79147930AA725, 0x06CA6351E003826F, 0x142929670A0E6E70,
    0x27B70A8546D22FFC, 0x2E1B21385C26C926, 0x4D2C6DFC5AC42AED, 0x53380D139D95B3DF,
    0x650A73548BAF63DE, 0x766A0ABB3C77B2A8, 0x81C2C92E47EDAEE6, 0x92722C851482353B,
    0xA2BFE8A14CF10364, 0xA81A664BBC423001, 0xC24B8B70D0F89791, 0xC76C51A30654BE30,
    0xD192E819D6EF5218, 0xD69906245565A910, 0xF40E35855771202A, 0x106AA07032BBD1B8,
    0x19A4C116B8D2D0C8, 0x1E376C085141AB53, 0x2748774CDF8EEB99, 0x34B0BCB5E19B48A8,
    0x391C0CB3C5C95A63, 0x4ED8AA4AE3418ACB, 0x5B9CCA4F7763E373, 0x682E6FF3D6B2B8A3,
    0x748F82EE5DEFB2FC, 0x78A5636F43172F60, 0x84C87814A1F0AB72, 0x8CC702081A6439EC,
    0x90BEFFFA23631E28, 0xA4506CEBDE82BDE9, 0xBEF9A3F7B2C67915, 0xC67178F2E372532B,
    0xCA273ECEEA26619C, 0xD186B8C721C0C207, 0xEADA7DD6CDE0EB1E, 0xF57D4F7FEE6ED178,
    0x06F067AA72176FBA, 0x0A637DC5A2C898A6, 0x113F9804BEF90DAE, 0x1B710B35131C471B,
    0x28DB77F523047D84, 0x32CAAB7B40C72493, 0x3C9EBE0A15C9BEBC, 0x431D67C49C100D4C,
    0x4CC5D4BECB3E42B6, 0x597F299CFC657E2A, 0x5FCB6FAB3AD6FAEC, 0x6C44198C4A475817,
)


_W = [0] * 80  # the message schedule, one for every hash: preallocated at import (a verification then needs no block
# of 80 words on a heap in small pieces: the loader imports the verifier while the heap is whole); _compress runs to
# its end before another can start (no threads; nothing awaits inside it)


def _compress(st, w, data, off):
    # one 128-byte block of data at off into the state list st; w is a preallocated 80-word schedule.
    # rotr(x, n) is the low 64 bits of xx >> n where xx = x * (2**64 + 1) holds x twice, so a sum of rotations is
    # (xx ^ xx >> i ^ xx >> j) >> n; the bits above 64 are garbage that the next masked addition drops.
    M = _M
    D = 0x10000000000000001
    K = _K
    w[0:16] = unpack_from(">16Q", data, off)
    for t in range(16, 80):
        x = w[t - 15]
        y = w[t - 2]
        xx = x * D
        yy = y * D
        w[t] = (((xx ^ xx >> 7) >> 1 ^ x >> 7) + ((yy ^ yy >> 42) >> 19 ^ y >> 6) + w[t - 7] + w[t - 16]) & M
    a, b, c, d, e, f, g, h = st
    for t in range(80):
        ee = e * D
        t1 = h + ((ee ^ ee >> 4 ^ ee >> 27) >> 14) + (g ^ (e & (f ^ g))) + K[t] + w[t]
        h = g
        g = f
        f = e
        e = (d + t1) & M
        d = c
        c = b
        b = a
        aa = a * D
        # c and d now hold the old b and c: maj(a, b, c) = (a & b) | (c & (a | b))
        a = (t1 + ((aa ^ aa >> 6 ^ aa >> 11) >> 28) + ((a & c) | (d & (a | c)))) & M
    st[0] = (st[0] + a) & M
    st[1] = (st[1] + b) & M
    st[2] = (st[2] + c) & M
    st[3] = (st[3] + d) & M
    st[4] = (st[4] + e) & M
    st[5] = (st[5] + f) & M
    st[6] = (st[6] + g) & M
    st[7] = (st[7] + h) & M


class sha512:
    digest_size = 64
    block_size = 128
    name = "sha512"

    def __init__(self, data=b""):
        self._st = list(_IV)
        self._buf = bytearray()
        self._n = 0
        if data:
            self.update(data)

    def update(self, data):
        if isinstance(data, str):
            raise TypeError("strings must be encoded before hashing")
        n = len(data)
        self._n += n
        i = 0
        buf = self._buf
        if buf:
            i = min(128 - len(buf), n)
            buf.extend(data[:i])
            if len(buf) < 128:
                return
            _compress(self._st, _W, buf, 0)
            buf = self._buf = bytearray()
        while n - i >= 128:
            _compress(self._st, _W, data, i)
            i += 128
        if i < n:
            buf.extend(data[i:])

    def digest(self):
        n = self._n
        r = len(self._buf)
        # 0x80, zeros up to 112 mod 128, then the message length in bits as a 128-bit big-endian number
        tail = self._buf + b"\x80" + bytes((111 - r) % 128) + pack(">QQ", n >> 61, (n << 3) & _M)
        st = list(self._st)
        for off in range(0, len(tail), 128):
            _compress(st, _W, tail, off)
        return pack(">8Q", *st)

    def hexdigest(self):
        return "".join("%02x" % b for b in self.digest())

    def copy(self):
        c = sha512()
        c._st = list(self._st)
        c._buf = bytearray(self._buf)
        c._n = self._n
        return c


new = sha512
