"""Signed command envelopes and their authorisation (loader/envelope.py open_envelope, loader/commands.py authorise,
loader/strict.py same): signature, signer role, meter id, expiry, replay, and the signed arguments compared with the
request's by type and value (5, 5.0 and True differ). Documented errors: EnvelopeError (open_envelope), Refused
(authorise), CBORError (the request's own arguments, when the probe cannot decode them).

Input: a switch byte s, a 2-byte big-endian length n, n bytes of envelope, then the request as CBOR: [cmd, args]
(any other item is the args of command "relay").
    s & 3     the RTC: 0 NOW, 1 unknown (None), 2 NOW + 10**9 (everything expired), 3 0
    s & 4     development meter (dev keys obeyed), else locked (dev keys filtered out)
    s & 72    both bits (8 and 64): the full path: commands.authorise on a meter whose trust store is trust_v2 (used ids in a file, the
              real RTC), else envelope.open_envelope on a fixed key list, then strict.same on the arguments
    s & 16    the id bytes(range(16)) counts as used (full path: meter/command-ids.json lists id 01..01)
    s & 128   (full path) meter/command-ids.json is damaged
    s & 32    no envelope at all: strict.same(envelope part, request part), both decoded as CBOR (fast: the
              host's differential compares the verdict with canonical CBOR encodings)
Invariant: an accepted envelope names, by keyhash, a key holding the command role in the trust list it was opened
with (on a locked meter: not a development key). The host checks its signature with cryptography and that every pair
the firmware calls the same encodes to the same canonical CBOR."""

from binascii import unhexlify

import fuzzcore

import cbor
from loader import commands, envelope, image, mode, strict

ERRORS = (envelope.EnvelopeError, commands.Refused, cbor.CBORError)
MODULES = ("loader/envelope.py", "loader/commands.py", "loader/strict.py")
MEM_BASE = 64 * 1024
MEM_PER_BYTE = 200

NOW = 1800000000
METER = "m-1"
USED = bytes(range(16))
# make_images.py's keys: the command key (trust.json, trust_v2), the development image key, the development command key
KEYS = (
    {"key": unhexlify("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"), "roles": ["command"],
     "dev": False},
    {"key": unhexlify("cb85ae1f4ef1b1bbf1308d9bc18224859752fe9034d253ac48fa4981f02506c5"), "roles": ["image"],
     "dev": True},
    {"key": unhexlify("a70db209d1b06d614c0610b7ef30e13f91a3d8686b9e87413f5e3e5ce8570db5"), "roles": ["command"],
     "dev": True},
)
TRUST_V2 = unhexlify("a3637369675840f1b8e36abc87aac0b205f7e2fbe082ada2135b01d045b1d4e5261b96e547470d3650e9929f4ffbbf5988181000541dcd99c524cfc7a6fee8da12560d0d6d7a0d64626f647958a3a3646b65797382a463646576f4636b65795820b533d8ad9fcfbdde0b481c1b334ddc3c53412fd614564e7e5afd020368d382c3646e616d6566726f6f742d6165726f6c65738164726f6f74a463646576f4636b6579582003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8646e616d656065726f6c65738265696d61676567636f6d6d616e6466666f726d61740167636f756e74657202667369676e6572582028274ecb54954b7a493b29b6918cd90dc372300d6007f3a14770f3dc092a670c")


class Ctx:
    meter_id = METER

    def __init__(self, m):
        self.mode = m


def split(data):
    """(switch, envelope bytes, request bytes)."""
    s = data[0] if data else 0
    n = (data[1] << 8 | data[2]) if len(data) >= 3 else 0
    return s, bytes(data[3:3 + n]), bytes(data[3 + n:])


def _request(raw):
    req = cbor.loads(raw) if raw else {}
    if type(req) is list and len(req) == 2:
        return req[0], req[1]
    return "relay", req


def _signer_entry(raw, keys):
    signer = cbor.loads(raw)["signer"]
    for k in keys:
        if image.keyhash(k["key"]) == signer:
            return k
    return None


def run(data):
    s, env, req = split(data)
    if s & 32:
        a = cbor.loads(env)
        b = cbor.loads(req)
        return {"same": strict.same(a, b), "a": a, "b": b}
    cmd, args = _request(req)
    dev = bool(s & 4)
    now = (NOW, None, NOW + 10**9, 0)[s & 3]
    if s & 72 == 72:
        fuzzcore.scratch("envelope")
        import os

        os.mkdir("meter")
        with open("meter/trust.cbor", "wb") as f:
            f.write(TRUST_V2)
        if s & 144:  # the used ids: damaged (bit 128), or holding env_confirm's id (bit 16)
            with open(commands.IDS, "w") as f:
                f.write("[1, 2]" if s & 128 else '{"floor": 0, "ids": [["%s", 2000003600]]}' % ("01" * 16))
        from loader import trust

        keys = trust.load()
        body = commands.authorise(Ctx(mode.DEVELOPMENT if dev else mode.LOCKED), {"envelope": env}, cmd, args)
        same = True  # authorise returned: it found the arguments the same
    else:
        keys = [k for k in KEYS if dev or not k["dev"]]
        body = envelope.open_envelope(env, keys, METER, now, lambda i: bool(s & 16) and i == USED)
        same = body["cmd"] == cmd and strict.same(body.get("args", {}), args)
    entry = _signer_entry(env, keys)
    fuzzcore.check(entry is not None and image.ROLE_COMMAND in entry["roles"],
                   "an envelope opened whose signer holds no command role in the trust list")
    fuzzcore.check(dev or not entry.get("dev"), "a locked meter obeyed a development key")
    return {"same": same, "a": body.get("args", {}), "b": args, "key": entry["key"], "env": env, "accepted": True}
