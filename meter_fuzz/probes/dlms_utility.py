"""IS 15959's utility-settings association (client SAP 48: HLS-GMAC, every APDU glo-ciphered, the one association
that operates the relay): app/cosem.py with app/dlms_hls.py's security, as a client at the probe or on the RS-485 bus
reaches it, with or without the meter's keys. Structure-aware: the probe holds the keys, so the fuzzer's bytes can be
ciphered properly and reach the association's inner dispatch, or go raw.

Input: records `[u8 length][record]` (a record's length past the input's end takes what is left), at most 16. A
record's first byte picks what is sent: 1 the rest glo-ciphered under the keys with the client's next invocation
counter (the tag from the rest's first byte, + 8); 2 a well-formed utility AARQ whose InitiateRequest is the rest
(gurux's when empty), ciphered; 3 HLS pass 3 with a right f(StoC) for the last AARE's challenge (the rest empty) or
the rest as f, ciphered; anything else the rest as it is.

apdu() documents no exception for any request: ERRORS names one that is never raised. Invariants (fuzzcore.Violation):
- every answer is an AARE (0x61), RLRE (0x63), a glo-ciphered GET, SET or ACTION response (0xCC, 0xCD, 0xCF) or an
  ExceptionResponse (0xD8): never a plain GET, SET or ACTION response on this association;
- every ciphered answer authenticates under the keys and the meter's system title, carries the answer to the
  service asked for, and **no invocation counter of the meter's is used twice** (the AARE's InitiateResponse, every
  answer, the f(CtoS) inside pass 4's): a repeat would leak the keystream;
- the association holds only after a right f(StoC) for the challenge of the AARE in force; an ACTION reaches the
  object model (`act`), and a SET its `put`, only on an association that holds, and only from a request ciphered
  under the keys (what `put` does with it is the `dlms_set` target's);
- an accepted AARE says "authentication required" (14) and leaves the association pending.
"""

import fuzzcore
from fuzzcore import check

from app import cosem, dlms_hls
from gcm import GCM


class NoError(Exception):
    """Never raised: Association.apdu documents no exception for any request."""


ERRORS = (NoError,)
MODULES = ("app/cosem.py", "app/dlms_hls.py")
MEM_BASE = 256 * 1024  # (GHASH's big ints: tens of KB of short-lived garbage per ciphered APDU)
MEM_PER_BYTE = 2048
EK = bytes(range(0x20, 0x30))
AK = bytes(range(0x30, 0x40))
TITLE = b"FUZZCL01"  # the client's system title
CTOS = b"fuzz-ctos-16byte"
METER = "m-1"
SERVER = dlms_hls.system_title(METER)
INITIATE = bytes.fromhex("01000000065f1f0400401e5dffff")
_VOLTAGE = cosem.obis("1.0.12.7.0.255")
_VALUE = cosem.number(cosem.LONG_UNSIGNED, 23012)
_LONG = cosem.obis("0.0.42.0.0.255")
_LONG_VALUE = cosem.octets(bytes(range(120)))
_GCM = GCM(EK)


def setup():
    import os

    fuzzcore.scratch("dlms_utility")  # the keys' file: read by the inputs, never written (the counters come from RAM)
    os.mkdir("meter")
    with open(dlms_hls.PATH, "wb") as f:
        f.write(EK + AK + bytes(4))


def _model(cls, obis, attr, access=None, client=cosem.PUBLIC_CLIENT):
    if attr == 1 and bytes(obis) in (_VOLTAGE, _LONG):  # (a SET asks first whether the object is there)
        return cosem.octets(bytes(obis))
    if access is None and attr == 2 and bytes(obis) == _VOLTAGE:
        return _VALUE
    if access is None and attr == 2 and bytes(obis) == _LONG:
        return _LONG_VALUE
    return cosem.OBJECT_UNDEFINED


def _len(n):
    return bytes((n,)) if n < 0x80 else bytes((0x81, n)) if n < 0x100 else bytes((0x82, n >> 8, n & 0xFF))


class _Client:
    def __init__(self):
        self.ic = 1

    def glo(self, tag, apdu, sc=0x30):
        head = bytes((sc,)) + self.ic.to_bytes(4, "big")
        self.ic += 1
        ct, t = _GCM.encrypt(TITLE + head[1:], apdu, bytes((sc,)) + AK, 12)
        body = head + ct + t
        return bytes((tag,)) + _len(len(body)) + body

    def f(self, challenge):
        head = b"\x10" + self.ic.to_bytes(4, "big")
        self.ic += 1
        return head + _GCM.tag(TITLE + head[1:], b"\x10" + AK + challenge, 12)


def _aarq(cl, initiate):
    glo = cl.glo(0x21, initiate)
    body = (b"\xa1\x09\x06\x07\x60\x85\x74\x05\x08\x01\x03\xa6\x0a\x04\x08" + TITLE + b"\x8a\x02\x07\x80\x8b\x07\x60"
            b"\x85\x74\x05\x08\x02\x05\xac\x12\x80\x10" + CTOS + b"\xbe" + _len(len(glo) + 2) + b"\x04"
            + _len(len(glo)) + glo)
    return b"\x60" + _len(len(body)) + body


def _opened(r, seen):
    """The plain APDU of the meter's glo-ciphered `r` (tag and length first), its counter checked unused."""
    i = 2 if r[1] < 0x80 else 2 + (r[1] & 0x7F)
    body = r[i:]
    check(len(body) >= 17 and body[0] == 0x30, "a ciphered answer of another form")
    ic = int.from_bytes(body[1:5], "big")
    plain = _GCM.decrypt(SERVER + body[1:5], body[5:-12], b"\x30" + AK, body[-12:])
    check(plain is not None, "a ciphered answer that does not authenticate under the keys")
    check(ic not in seen, "the meter's invocation counter %d used twice" % ic)
    seen.add(ic)
    return bytes(plain)


def _fields(aare):
    out = {}
    i = 2 if aare[1] < 0x80 else 2 + (aare[1] & 0x7F)
    while i + 2 <= len(aare):
        tag, n = aare[i], aare[i + 1]
        j = i + 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(aare[j:j + k], "big")
            j += k
        out[tag] = aare[j:j + n]
        i = j + n
    return out


def run(data):
    acts = []
    puts = []
    held = bytearray(EK + bytes(4) + (0xFFFFFF00).to_bytes(4, "big"))  # counters from RAM: no flash write per input

    def act(*args):
        acts.append(args)
        return 0

    def put(*args):
        puts.append(args)
        return 0

    a = cosem.Association(_model, hls=lambda title, ctos: dlms_hls.session(METER, title, ctos, None, held), act=act,
                          put=put)
    cl = _Client()
    seen = set()
    stoc = None  # the challenge of the AARE in force
    proven = False  # a right f(StoC) for it was answered with the association holding
    answers = []
    for rec in fuzzcore.records(data):
        mode = rec[0] if rec else 0
        rest = rec[1:]
        right = False
        if mode == 1 and rest:
            req = cl.glo((rest[0] + 8) & 0xFF, rest)
        elif mode == 2:
            req = _aarq(cl, rest or INITIATE)
        elif mode == 3 and stoc is not None:
            right = not rest
            f = cl.f(stoc) if right else rest
            req = cl.glo(0xCB, b"\xc3\x01\xc1\x00\x0f\x00\x00\x28\x00\x00\xff\x01\x01\x09" + _len(len(f)) + f)
        else:
            req = rest
        n_acts = len(acts)
        n_puts = len(puts)
        r = a.apdu(req, cosem.UTILITY_CLIENT)
        check(type(r) is bytes and len(r) >= 3, "answer %r" % (r,))
        tag = r[0]
        check(tag in (0x61, 0x63, 0xCC, 0xCD, 0xCF, 0xD8), "answer tag 0x%02x on the utility association" % tag)
        if tag in (0x61, 0x63):  # a new AARQ or a release: no challenge in force until an AARE gives one
            stoc = None
            proven = False
        if tag == 0x61:
            f = _fields(r)
            accepted = f.get(0xA2) == b"\x02\x01\x00"
            check(accepted == a.pending and not a.associated, "AARE result and association disagree")
            if accepted:
                check(f.get(0xA3) == b"\xa1\x03\x02\x01\x0e", "an accepted AARE that does not ask for HLS")
                stoc = f[0xAA][2:]
                initiate = _opened(f[0xBE][2:], seen)
                check(initiate[:1] == b"\x08", "an AARE whose user-information is no InitiateResponse")
        elif tag in (0xCC, 0xCD, 0xCF):
            plain = _opened(r, seen)
            check(plain[0] == tag - 8, "a ciphered answer of another service")
            if right and plain[:7] == b"\xc7\x01\xc1\x00\x01\x00\x09":
                proof = plain[8:]
                check(len(proof) == 17 and _GCM.verify(SERVER + proof[1:5], b"\x10" + AK + CTOS, proof[5:]),
                      "a pass-4 answer without the meter's f(CtoS)")
                pic = int.from_bytes(proof[1:5], "big")
                check(pic not in seen, "the meter's invocation counter %d used twice (f(CtoS))" % pic)
                seen.add(pic)
                proven = True
        check(not a.associated or proven, "an association that holds without the client's f(StoC)")
        if len(acts) > n_acts:
            check(a.associated and proven and mode in (1, 3), "an ACTION on an association without the proof")
        if len(puts) > n_puts:
            check(a.associated and proven and mode == 1, "a SET on an association without the proof")
        if not (a.associated or a.pending):
            stoc = None
            proven = False
        answers.append(tag)
    return answers
