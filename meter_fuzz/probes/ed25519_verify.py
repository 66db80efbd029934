"""The firmware's verify-only Ed25519 (lib/ed25519.py over lib/sha512.py on boards without hashlib.sha512): the
check every signed image, command envelope, top-up token and trust store update rests on.

verify() documents no exception: it returns False for anything that is not a valid signature. ERRORS therefore
holds a class nothing raises (every exception is a finding). The host's differential check
(meter_fuzz/host/ed25519_verify.py) compares every verdict with `cryptography` (OpenSSL).

The first input byte is a switch, so that mutated inputs reach past the cheap rejections:
    mode 0 (s & 3 == 0): raw, public key = bytes 1..32, signature = 33..96, message = the rest;
    mode 1: an RFC 8032 vector (s >> 2 picks it) with the rest of the input XORed onto key | signature | message
            (an all-zero rest leaves the vector valid; bytes past them extend the message);
    mode 2: a vector whose S is made non-canonical, S + k * L with k = 1 + byte 1 % 15 (S < 2**256 still);
    mode 3: a vector whose public key (byte 1 even) or R (odd) is replaced by edge encoding number byte 2 of EDGES
            (small-order points, non-canonical y >= p, x = 0 with the sign bit), the rest XORed on as in mode 1.
"""

from binascii import unhexlify

import fuzzcore

import ed25519


class NeverRaised(Exception):
    """verify() documents no error: nothing raises this, so any exception from it is a finding."""


ERRORS = (NeverRaised,)
MODULES = ("lib/ed25519.py", "lib/sha512.py")
MEM_BASE = 48 * 1024
MEM_PER_BYTE = 64

# RFC 8032 7.1 tests 1, 2, 3 and 1024 (public key, message, signature), as in cryptography-vectors' sign.input
VECTORS = (
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
)
_P = 2**255 - 19


def _le(n):
    return n.to_bytes(32, "little")


# edge encodings: the 8 small-order points, non-canonical y = p .. p + 18 (y >= p), x = 0 with the sign bit set
# (y = 1 and y = p - 1), and y = p - 1 / p + 1 with and without the sign bit
EDGES = tuple(ed25519.SMALL_ORDER) + tuple(_le(_P + i) for i in range(19)) + (
    _le(1 | 1 << 255), _le((_P - 1) | 1 << 255), _le(_P - 1), bytes(31) + b"\x80", b"\xff" * 32,
    _le((_P + 1) | 1 << 255))
_vec = []


def setup():
    if not _vec:
        for pk, msg, sig in VECTORS:
            _vec.append((unhexlify(pk), unhexlify(msg), unhexlify(sig)))


def _xor(base, delta, off):
    out = bytearray(base)
    for i in range(min(len(out), max(0, len(delta) - off))):
        out[i] ^= delta[off + i]
    return out


def parts(data):
    """(public key, signature, message) that input `data` stands for (see the module docstring)."""
    if not data:
        return b"", b"", b""
    setup()
    s = data[0]
    mode = s & 3
    if mode == 0:
        return bytes(data[1:33]), bytes(data[33:97]), bytes(data[97:])
    pk, msg, sig = _vec[(s >> 2) % len(_vec)]
    rest = data[1:]
    if mode == 2:
        k = 1 + (rest[0] % 15 if rest else 0)
        sv = int.from_bytes(sig[32:], "little") + k * ed25519.L
        return pk, sig[:32] + sv.to_bytes(32, "little"), msg
    if mode == 3:
        edge = EDGES[(rest[1] if len(rest) > 1 else 0) % len(EDGES)]
        if rest and rest[0] & 1:
            sig = edge + sig[32:]
        else:
            pk = edge
        rest = rest[2:]
    whole = pk + sig + msg + bytes(max(0, len(rest) - 96 - len(msg)))
    whole = _xor(whole, rest, 0)
    return bytes(whole[:32]), bytes(whole[32:96]), bytes(whole[96:])


def run(data):
    pk, sig, msg = parts(data)
    ok = ed25519.verify(pk, msg, sig)
    fuzzcore.check(ok is True or ok is False, "verify returned %r, not a bool" % (ok,))
    return (pk, sig, msg, ok)
