"""Verify-only Ed25519 (RFC 8032 5.1.7) for signed OTA images; runs unchanged on MicroPython boards, the VM and CPython.

verify(public_key, message, signature) -> bool
    True only for a valid signature. Returns False, and never raises, for anything else: arguments that are not
    bytes-like (bytes, bytearray, memoryview), a key that is not 32 bytes or a signature that is not 64 bytes,
    S >= L (malleable), non-canonical encodings of A or R (y >= p, or x = 0 with the sign bit set), A not on the
    curve, and small-order A or R (one of the 8 encodings of the points of order 1, 2, 4 or 8).

Verification is cofactorless, as in most libraries: it accepts iff the encoding of [S]B - [k]A, k = SHA-512(R || A
|| M) mod L, equals the 32 bytes of R exactly. That is the same as decoding R and checking [S]B == R + [k]A, because
only a canonical encoding of a curve point can be equal to an encoding this module produces.

Speed: extended twisted Edwards coordinates (Hisil-Wong-Carter-Dawson 2008, a = -1) and one interleaved (Straus)
double-scalar multiplication with width-6 wNAF for B (16 odd multiples of B, affine, built on the first call and
kept: 48 ints) and width-5 wNAF for A (8 odd multiples, built per call); sums are left unreduced and every product
is reduced once (% p); the square root and the final inversion use the usual 2**250 - 1 addition chain (faster than
MicroPython's three-argument pow). One verify of a 32-byte message takes about 3.9 ms in the unix VM (1.1 ms on
CPython), the first call 1.4 ms more for the table of B. Not constant-time, which a verifier does not need: all its
inputs are public.
"""

from array import array
from binascii import unhexlify

try:
    from hashlib import sha512  # type: ignore[attr-defined]  # CPython; the MicroPython stubs have no sha512
except ImportError:  # MicroPython's hashlib has no sha512
    from sha512 import sha512  # type: ignore[assignment,no-redef]

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = 0x52036CEE2B6FFE738CC740797779E89800700A4D4141D8AB75EB4DCA135978A3  # -121665 / 121666 mod p
D2 = 0x2406D9DC56DFFCE7198E80F2EEF3D13000E0149A8283B156EBD69B9426B2F159  # 2 * D mod p
SQRT_M1 = 0x2B8324804FC1DF0B2B4D00993DFBD7A72F431806AD2FE478C4EE1B274A0EA0B0  # 2 ** ((p - 1) / 4) mod p
BX = 0x216936D3CD6E53FEC0A4E231FDD6DC5C692CC7609525A7B2C9562D608F25D51A
BY = 0x6666666666666666666666666666666666666666666666666666666666666658  # 4 / 5 mod p
_M255 = 2**255 - 1

# the canonical encodings of the 8 points of small order (1, 2, 4, 4, 8, 8, 8, 8)
SMALL_ORDER = (
    b"\x01" + bytes(31),
    b"\xec" + b"\xff" * 30 + b"\x7f",
    bytes(32),
    bytes(31) + b"\x80",
    unhexlify("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    unhexlify("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    unhexlify("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    unhexlify("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
)

_BT = None  # odd multiples 1B, 3B, ..., 31B as (y + x, y - x, 2dxy)


def verify(public_key, message, signature):
    for v in (public_key, message, signature):
        if not isinstance(v, (bytes, bytearray, memoryview)):
            return False
    if len(public_key) != 32 or len(signature) != 64:
        return False
    pk = bytes(public_key)
    rb = bytes(signature[:32])
    if pk in SMALL_ORDER or rb in SMALL_ORDER:
        return False
    s = int.from_bytes(bytes(signature[32:]), "little")
    r = int.from_bytes(rb, "little")
    if s >= L or r & _M255 >= P:  # (a non-canonical R would fail the final comparison too: this only saves time)
        return False
    a = decode(pk)
    if a is None:
        return False
    return _combine(s, _challenge(rb, pk, message), P - a[0], a[1]) == r


def _challenge(rb, pk, message):
    # k = SHA-512(R || A || M) mod L (a function of its own, so that the hash object is gone before _combine)
    h = sha512(rb)
    h.update(pk)
    h.update(message)
    return int.from_bytes(h.digest(), "little") % L


def decode(b):
    """(x, y) of the point encoded by 32 bytes b (RFC 8032 5.1.3), or None if b is not a canonical encoding."""
    p = P
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= _M255
    if y >= p:
        return None
    # x = sqrt(u / v) = u v^3 (u v^7)^((p - 5) / 8)
    u = (y * y - 1) % p
    v = (D * y % p * y + 1) % p
    v3 = v * v % p * v % p
    t = u * v3 % p
    x = t * _pow22523(t * v3 % p * v % p) % p
    vxx = v * x % p * x % p
    if vxx != u:
        if vxx != p - u:
            return None
        x = x * SQRT_M1 % p
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = p - x
    return x, y


def encode(x, y):
    return (y | (x & 1) << 255).to_bytes(32, "little")


# ---------------------------------------------------------------------------------------------------- field helpers


def _sq(x, n):
    p = P
    for _ in range(n):
        x = x * x % p
    return x


def _pow250(z):
    # (z ** (2**250 - 1), z ** 11) mod p
    p = P
    z2 = z * z % p
    z9 = _sq(z2, 2) * z % p
    z11 = z9 * z2 % p
    t5 = z11 * z11 % p * z9 % p
    t10 = _sq(t5, 5) * t5 % p
    t20 = _sq(t10, 10) * t10 % p
    t50 = _sq(_sq(t20, 20) * t20 % p, 10) * t10 % p
    t100 = _sq(t50, 50) * t50 % p
    return _sq(_sq(t100, 100) * t100 % p, 50) * t50 % p, z11


def _inv(z):
    # z ** (p - 2) = z ** (2**255 - 21); never pow(z, -1, p): MicroPython returns 0
    t, z11 = _pow250(z)
    return _sq(t, 5) * z11 % P


def _pow22523(z):
    # z ** ((p - 5) / 8) = z ** (2**252 - 3)
    t, _ = _pow250(z)
    return _sq(t, 2) * z % P


# ---------------------------------------------------------------------------------------------------- point helpers
# Extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z. "Niels" form of a point for additions:
# (Y + X, Y - X, 2dT, 2Z); its negation swaps the first two and negates the third.


def _dbl(q):
    p = P
    X, Y, Z, _ = q
    a = X * X % p
    b = Y * Y % p
    c = 2 * Z * Z % p
    h = a + b
    e = h - (X + Y) * (X + Y) % p
    g = a - b
    f = c + g
    return e * f % p, g * h % p, f * g % p, e * h % p


def _add(q, n):
    # extended point q plus Niels point n
    p = P
    X, Y, Z, T = q
    yp, ym, t2, z2 = n
    a = (Y - X) * ym % p
    b = (Y + X) * yp % p
    c = T * t2 % p
    d = Z * z2 % p
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return e * f % p, g * h % p, f * g % p, e * h % p


def _niels(q):
    # "| 0" copies into an exactly sized int: a "%" result keeps the digit buffer of its dividend (MicroPython)
    p = P
    X, Y, Z, T = q
    return (Y + X) % p | 0, (Y - X) % p | 0, D2 * T % p | 0, 2 * Z % p | 0


def _odd_multiples(x, y, n):
    # Niels forms of 1Q, 3Q, ..., (2n - 1)Q for the affine point Q = (x, y)
    q = (x, y, 1, x * y % P)
    q2 = _niels(_dbl(q))
    out = [_niels(q)]
    for _ in range(n - 1):
        q = _add(q, q2)
        out.append(_niels(q))
    return out


def _base_table():
    global _BT
    p = P
    pts = _odd_multiples(BX, BY, 16)
    # affine (y + x, y - x, 2dxy) with one shared inversion: Z = z2 / 2, x + y = (Y + X) / Z, ...
    acc = [1]
    for q in pts:
        acc.append(acc[-1] * q[3] % p)
    inv = _inv(acc[-1])
    tab = []
    for i in range(15, -1, -1):
        yp, ym, t2, z2 = pts[i]
        zi = 2 * inv * acc[i] % p  # 1 / Z
        inv = inv * z2 % p
        tab.append((yp * zi % p | 0, ym * zi % p | 0, t2 * zi % p | 0))
    tab.reverse()
    _BT = tab
    return tab


def _wnaf(k, w):
    # width-w NAF of 0 <= k < 2**253: odd digits |d| < 2**(w-1), little-endian, the w - 1 digits after a nonzero
    # digit are zero; returns (digits, 1 + index of the top nonzero digit)
    naf = array("b", bytes(256))
    full = 1 << w
    i = top = 0
    while k:
        if k & 1:
            d = k & (full - 1)
            if d >= full >> 1:
                d -= full
            naf[i] = d
            top = i + 1
            k = (k - d) >> w
            i += w
        else:
            k >>= 1
            i += 1
    return naf, top


def _combine(s, k, ax, ay):
    """Encoding (as an int) of [s]B + [k](ax, ay). The doubling and the two additions are written out (no calls, no
    tuples) because this loop is nearly all of the work; T is computed only when an addition comes next."""
    p = P
    bt = _BT or _base_table()
    at = _odd_multiples(ax, ay, 8)
    ns, n1 = _wnaf(s, 6)
    nk, n2 = _wnaf(k, 5)
    X, Y, Z = 0, 1, 1
    for i in range(max(n1, n2) - 1, -1, -1):
        da = nk[i]
        db = ns[i]
        a = X * X % p
        b = Y * Y % p
        c = 2 * Z * Z % p
        h = a + b
        e = X + Y
        e = h - e * e % p
        g = a - b
        f = c + g
        X = e * f % p
        Y = g * h % p
        Z = f * g % p
        if da:
            if da > 0:
                yp, ym, t2, z2 = at[da >> 1]
            else:
                ym, yp, t2, z2 = at[-da >> 1]
                t2 = -t2
            a = (Y - X) * ym % p
            b = (Y + X) * yp % p
            c = e * h % p * t2 % p
            d = Z * z2 % p
            e = b - a
            f = d - c
            g = d + c
            h = b + a
            X = e * f % p
            Y = g * h % p
            Z = f * g % p
        if db:
            if db > 0:
                yp, ym, t2 = bt[db >> 1]
            else:
                ym, yp, t2 = bt[-db >> 1]
                t2 = -t2
            a = (Y - X) * ym % p
            b = (Y + X) * yp % p
            c = e * h % p * t2 % p
            d = Z + Z
            e = b - a
            f = d - c
            g = d + c
            h = b + a
            X = e * f % p
            Y = g * h % p
            Z = f * g % p
    zi = _inv(Z)
    x = X * zi % p
    return Y * zi % p | (x & 1) << 255
