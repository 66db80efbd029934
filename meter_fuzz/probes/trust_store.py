"""The trust store (loader/trust.py): its parser, its self-check (signed by one of its own root keys) and its update
rules (signed by a root key of the current store, a higher counter, a root key kept). Documented error: TrustError.

Input: a switch byte s, then the new store's bytes.
    s & 3   the current store on the meter: 0 none, 1 trust_v1 (root A, the development image key), 2 trust_v2
            (counter 2, root A, the command key with image and command roles), 3 a corrupt one (v1, signature bit
            flipped)
    s & 4   parse only (trust.parse: no signature check, fast), else trust.update on a meter holding that store
Invariants of an accepted update: the file now holds exactly the new bytes, its counter is above the old one, it
keeps a root key, its signer is (by keyhash) a root key of the current store (of the new store itself when there was
none), and the store as written passes the check every later use applies (trust.load() returns its keys): an update
the meter accepts must not leave it trusting nothing. The host checks the signature with cryptography."""

from binascii import unhexlify

import fuzzcore

from loader import image, trust

ERRORS = (trust.TrustError,)
MODULES = ("loader/trust.py",)
MEM_BASE = 48 * 1024
MEM_PER_BYTE = 200

V1 = unhexlify("a36373696758403e07f7f0d413749fba754b25e5917edc8f1ab28f5f091be8e08fea7d0bf6d7659737678317d43dbbd44537a7b346e98cfd0956ea9a6e02e01e812357ed78430d64626f647958a4a3646b65797382a463646576f4636b65795820b533d8ad9fcfbdde0b481c1b334ddc3c53412fd614564e7e5afd020368d382c3646e616d6566726f6f742d6165726f6c65738164726f6f74a463646576f5636b65795820cb85ae1f4ef1b1bbf1308d9bc18224859752fe9034d253ac48fa4981f02506c5646e616d65696465762d696d61676565726f6c65738165696d61676566666f726d61740167636f756e74657201667369676e6572582028274ecb54954b7a493b29b6918cd90dc372300d6007f3a14770f3dc092a670c")
V2 = unhexlify("a3637369675840f1b8e36abc87aac0b205f7e2fbe082ada2135b01d045b1d4e5261b96e547470d3650e9929f4ffbbf5988181000541dcd99c524cfc7a6fee8da12560d0d6d7a0d64626f647958a3a3646b65797382a463646576f4636b65795820b533d8ad9fcfbdde0b481c1b334ddc3c53412fd614564e7e5afd020368d382c3646e616d6566726f6f742d6165726f6c65738164726f6f74a463646576f4636b6579582003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8646e616d656065726f6c65738265696d61676567636f6d6d616e6466666f726d61740167636f756e74657202667369676e6572582028274ecb54954b7a493b29b6918cd90dc372300d6007f3a14770f3dc092a670c")


def current(s):
    if s & 3 == 3:
        bad = bytearray(V1)
        bad[-5] ^= 1
        return bytes(bad)
    return (None, V1, V2)[s & 3]


def _root_of(keys, signer):
    for k in keys:
        if image.ROLE_ROOT in k["roles"] and image.keyhash(k["key"]) == signer:
            return k
    return None


def run(data):
    s = data[0] if data else 0
    raw = bytes(data[1:])
    if s & 4:
        body, body_bytes, signer, sig = trust.parse(raw)
        return {"parsed": True}
    fuzzcore.scratch("trust_store")
    import os

    os.mkdir("meter")
    cur = current(s)
    if cur is not None:
        with open(trust.PATH, "wb") as f:
            f.write(cur)
    try:
        new = trust.update(raw)
    except trust.TrustError:
        fuzzcore.check(trust.store.read_bytes(trust.PATH) == cur, "a refused update changed the stored trust store")
        raise
    fuzzcore.check(trust.store.read_bytes(trust.PATH) == raw, "the accepted store is not what was written")
    _, body_bytes, signer, sig = trust.parse(raw)
    if cur is not None:
        old = trust.check(cur)
        fuzzcore.check(new["counter"] > old["counter"], "an update without a higher counter was accepted")
        signed_by = _root_of(old["keys"], signer)
    else:
        signed_by = _root_of(new["keys"], signer)
    fuzzcore.check(signed_by is not None, "an update not signed by a root key of the current store was accepted")
    fuzzcore.check(any(image.ROLE_ROOT in k["roles"] for k in new["keys"]), "an update without a root key was accepted")
    fuzzcore.check(trust.load() == new["keys"] and trust.counter() == new["counter"],
                   "an accepted update is a store every later use refuses (not signed by one of its own root keys): "
                   "the meter now trusts nothing")
    return {"accepted": True, "raw": raw, "key": signed_by["key"], "body": bytes(body_bytes), "sig": bytes(sig)}
