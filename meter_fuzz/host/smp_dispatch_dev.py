"""Host extras of smp_dispatch_dev (and smp_dispatch_locked): seeds built with the host's own request classes
(smp's and smpclient's models, ota_tool's group requests) carrying the fixtures' real signed envelopes, tokens and a
signed image, and a structure-aware mutator that keeps each record's SMP header consistent with its body and the
body valid CBOR while it changes values, keys, types, upload offsets and lengths, and the order of requests.

Input format (the probe's docstring): records of [ctl][u16 BE n][n bytes: one SMP packet]; ctl bit 0 = over UDP."""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path

import cbor2
from smp import image_management as img
from smp import os_management as osm
from smpclient.requests.image_management import ImageErase, ImageStatesWrite

from ota_tool import meter_groups as mg
from ota_tool import network_groups as ng
from ota_tool import supply_groups as sg

FIXTURES = Path(__file__).resolve().parents[2] / "host_tests" / "firmware" / "fixtures"
HEADER = 8
MAX_RECORDS = 8
GROUPS = (0, 1, 63, 64, 65, 66, 67, 68, 0xFFFF)
KEYS = ("d", "format", "force", "envelope", "off", "data", "len", "sha", "image", "hash", "confirm", "slot",
        "action", "token", "settings", "time", "since", "limit", "balance", "top_tid", "calendar", "step", "v", "i",
        "pf", "n", "headend", "ip", "port", "uplink_s", "tariff", "flat", "tou", "tz_offset_min", "control_mode",
        "load_limit", "windows", "emergency", "upgrade", "rc", "err", "", "log", "sha256")  # new keys last: the corpus keeps its meaning
INTS = (0, 1, -1, 2, 3, 7, 23, 24, 255, 256, 1023, 1024, 2047, 2048, 4096, 65535, 65536, 2**31 - 1, 2**31, -2**31,
        2**32, 2**53, 2**63 - 1, 2**63, 2**64 - 1, -2**63, -2**64, 10**30, 1900000000, 2000003600)
FLOATS = (0.0, -0.0, 0.5, 1.0, 3.0, 1e300, -1e300, float("inf"), float("-inf"), float("nan"), 2.0**64)
STRINGS = ("", "a", "disconnect", "reconnect", "development", "locked", "00:00", "24:00", "127.0.0.1", "::1",
           "x" * 300, "\u00e9", "\x00", "snrvbmpio", "q", "a" * 2)


def record(pkt: bytes, udp: bool = False) -> bytes:
    return bytes([1 if udp else 0]) + struct.pack(">H", len(pkt)) + pkt


def records(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i + 3 <= len(data) and len(out) < MAX_RECORDS:
        n = struct.unpack(">H", data[i + 1:i + 3])[0]
        out.append((data[i], data[i + 3:i + 3 + n]))
        i += 3 + n
    return out


def join(recs: list[tuple[int, bytes]]) -> bytes:
    return b"".join(bytes([c]) + struct.pack(">H", len(p)) + p for c, p in recs)


def packet(version: int, op: int, group: int, seq: int, cmd: int, body: bytes) -> bytes:
    return bytes((((version & 3) << 3) | (op & 7), 0)) + struct.pack(">HHBB", len(body), group, seq, cmd) + body


def _envelopes() -> dict[str, bytes]:
    env = cbor2.loads((FIXTURES / "supply.cbor").read_bytes())
    for n in ("env_good", "env_confirm", "env_reset", "env_clock"):
        env[n] = (FIXTURES / f"{n}.cbor").read_bytes()
    return env


def _args(envelope: bytes) -> dict:
    return cbor2.loads(cbor2.loads(envelope)["body"])["args"]


def _requests() -> list[bytes]:
    """One packet per request the host's tools send, with the fixtures' envelopes."""
    env = _envelopes()
    image = (FIXTURES / "other_key.img").read_bytes()
    out = [osm.EchoWriteRequest(d="hello"), osm.MCUMgrParametersReadRequest(),
           osm.OSApplicationInfoReadRequest(format="a"), osm.ResetWriteRequest(force=0),
           mg.SignedReset(envelope=env["env_reset"]),
           img.ImageStatesReadRequest(), ImageStatesWrite(hash=bytes(32), confirm=True),
           mg.SignedStatesWrite(confirm=True, envelope=env["env_confirm"]), ImageErase(slot=1),
           mg.SignedErase(slot=1, envelope=env["env_good"]), mg.UpdateStatusReadRequest(),
           img.ImageUploadWriteRequest(off=0, data=image[:512], len=len(image), sha=hashlib.sha256(image).digest()),
           mg.MeterReadRequest(),
           sg.StatusReadRequest(), sg.RelayWriteRequest(action="disconnect", envelope=env["relay_off"]),
           sg.TopupWriteRequest(token=env["token1"]), sg.TopupWriteRequest(token=env["token_stranger"]),
           sg.SettingsReadRequest(),
           sg.SettingsWriteRequest(settings=_args(env["settings"])["settings"], envelope=env["settings"]),
           sg.ClockWriteRequest(time=1900000000, envelope=env["clock"]), sg.EventsReadRequest(since=0, limit=4),
           sg.EmergencyWriteRequest(envelope=env["emergency"]),
           sg.CreditResetWriteRequest(balance=5000, top_tid=1, envelope=env["credit_reset"]),
           sg.CalendarReadRequest(),
           sg.CalendarWriteRequest(calendar={"tou": [["00:00", 1], ["18:00", 2], ["22:00", 1]], "tz_offset_min": 0},
                                   envelope=env["calendar"]),
           sg.ReaderReadRequest(), sg.ReaderWriteRequest(sha256=_args(env["reader"])["sha256"], envelope=env["reader"])]
    for name in dir(ng):
        cls = getattr(ng, name)
        if name.endswith("ReadRequest") and isinstance(cls, type):
            out.append(cls())
    pkts = [bytes(r) for r in out]
    # requests no host class sends: calibration (group 65 cmds 1, 2), a head-end write, the upload's next chunks
    pkts.append(packet(1, 2, 65, 1, 1, cbor2.dumps({"step": "gain", "v": 230.0, "i": 5.0, "pf": 1.0, "n": 3})))
    pkts.append(packet(1, 0, 65, 2, 2, cbor2.dumps({})))
    pkts.append(packet(1, 2, 67, 3, 1, cbor2.dumps({"headend": {"ip": "10.0.0.1", "port": 1337, "uplink_s": 60},
                                                    "envelope": env["relay_on"]})))
    return pkts


COMMAND_KEY = bytes(range(32))  # the fixtures' command key (host_tests/firmware/fixtures/make_images.py other_key)


def _sign(cmd: str, args: dict, k: int) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meterkit import envelope

    key = Ed25519PrivateKey.from_private_bytes(COMMAND_KEY)
    return envelope.make(key, "m-1", cmd, args, now=1_900_000_000, expires_in=100 * 86400,
                         ident=bytes([0xF0 + k]) * 16)


def _image_hash(image: bytes) -> bytes:
    """The image's SHA-256 TLV: the hash the meter reports and a state write names."""
    from ota_tool import image as ota_image

    h = ota_image.parse(image).first(ota_image.Tlv.SHA256)
    assert h is not None
    return h


def _upload(image: bytes, chunk: int) -> list[bytes]:
    out = []
    off = 0
    seq = 0
    while off < len(image):
        req = {"off": off, "data": image[off:off + chunk]}
        if off == 0:
            req.update(len=len(image), sha=hashlib.sha256(image).digest(), image=0)
        out.append(packet(1, 2, 1, seq, 1, cbor2.dumps(req)))
        off += chunk
        seq += 1
    return out


def seeds():
    """The committed corpus: each host request alone (console and UDP, SMP v1 and v2 headers), and sequences a
    state change needs (an upload whole, then the status, the state write and an erase; top-ups and a relay
    command with their envelopes, then the status)."""
    pkts = _requests()
    for p in pkts:
        yield record(p)
    for p in pkts[::3]:
        yield record(p, udp=True)
        v1 = bytearray(p)
        v1[0] &= 7  # SMP version 1 (v0 header): errors as bare rc
        yield record(bytes(v1))
    image = (FIXTURES / "other_key.img").read_bytes()
    status = packet(1, 0, 64, 9, 0, cbor2.dumps({}))
    state = packet(1, 0, 1, 9, 0, cbor2.dumps({}))
    up = _upload(image, 1024)
    yield join([(0, p) for p in up] + [(0, status), (0, state)])
    yield join([(1, p) for p in _upload(image, 400)[:7]])
    write = packet(1, 2, 1, 10, 0, cbor2.dumps({"hash": hashlib.sha256(image).digest(), "confirm": False}))
    erase = packet(1, 2, 1, 11, 5, cbor2.dumps({"slot": 1}))
    yield join([(0, p) for p in up[:2]] + [(0, erase), (0, up[0]), (0, write)])
    env = _envelopes()
    topup = [packet(1, 2, 66, k, 2, cbor2.dumps({"token": env[t]})) for k, t in enumerate(("token1", "token2",
                                                                                             "token1"))]
    yield join([(0, p) for p in topup] + [(0, packet(1, 0, 66, 7, 0, cbor2.dumps({})))])
    relay = packet(1, 2, 66, 1, 1, cbor2.dumps({"action": "disconnect", "envelope": env["relay_off"]}))
    yield join([(0, relay), (0, relay), (1, packet(1, 0, 66, 2, 5, cbor2.dumps({"since": 0})))])
    # the upload's other ways: its first chunk again (resume, then after completion), an image the meter refuses
    # whole (a development key's), a first chunk whose header is refused, an oversize length
    yield join([(0, up[0]), (0, up[0]), (0, status)])
    again = packet(1, 2, 1, 30, 1, cbor2.dumps({"off": 0, "data": image[:64], "len": len(image),
                                                 "sha": hashlib.sha256(image).digest()}))
    yield join([(0, p) for p in up] + [(0, again), (0, status)])
    other = (FIXTURES / "good.img").read_bytes()
    yield join([(0, p) for p in _upload(other, 1024)] + [(0, status)])
    bad = {"off": 0, "data": b"\xff" * 64, "len": 5000, "sha": bytes(32)}
    yield join([(0, packet(1, 2, 1, 1, 1, cbor2.dumps(bad))),
                (0, packet(1, 2, 1, 2, 1, cbor2.dumps(dict(bad, len=10**9)))), (0, status)])
    # commands no fixture signs, signed here with the fixtures' command key (meterkit's envelope encoder)
    h = _image_hash(image)
    signed = [(65, 1, {"step": "gain", "v": 230.0, "i": 5.0, "pf": 1.0, "n": 3}, "meter.calibrate"),
              (67, 1, {"headend": {"ip": "10.0.0.1", "port": 1337, "uplink_s": 60}}, "meter.headend"),
              (1, 5, {"slot": 1}, "image.erase"),
              (1, 0, {"hash": h, "confirm": False}, "image.state")]
    # signed but malformed: what the handlers check after the signature (the fuzzer cannot sign its own)
    signed += [(66, 4, {"time": 2**70}, "clock.set"), (66, 4, {"time": "x"}, "clock.set"),
               (66, 3, {"settings": [1]}, "supply.config"),
               (66, 3, {"settings": {"tariff": {"flat": 1e300}, "control_mode": 2**64}}, "supply.config"),
               (66, 3, {"settings": {"windows": {"daily": [["25:00", "08:00"]]}, "thresholds": [1e300]}},
                "supply.config"),
               (66, 8, {"calendar": {"tou": [["00:00", 2**40]], "tz_offset_min": 1e300}}, "meter.calendar"),
               (66, 8, {"calendar": {"tou_weekend": [["00:00", 1]]}}, "meter.calendar"),
               (67, 1, {"headend": {"ip": "1", "port": 1, "uplink_s": 2**40}}, "meter.headend"),
               (66, 7, {"balance": 5, "top_tid": 2**40, "force": True}, "credit.reset"),
               (66, 1, {"action": "disconnect"}, "supply.relay"),
               (66, 9, {"sha256": b"\x00" * 31}, "dlms.reader"), (66, 9, {"sha256": None}, "dlms.reader")]
    for k, (group, cmd, args, name) in enumerate(signed):
        req = dict(args, envelope=_sign(name, args, k))
        yield record(packet(1, 2, group, k, cmd, cbor2.dumps(req)))
    # an upload, then its install requested: unsigned (development meter) and signed, then a confirm and a reset
    state = {"hash": h, "confirm": False}
    yield join([(0, p) for p in up] + [(0, packet(1, 2, 1, 20, 0, cbor2.dumps(state))),
                                       (0, packet(1, 2, 1, 21, 0, cbor2.dumps(dict(state, envelope=_sign(
                                           "image.state", state, 9))))),
                                       (0, packet(1, 0, 64, 22, 0, cbor2.dumps({})))])


# -- the structure-aware mutator ------------------------------------------------------------------------------------

_POOL: list[bytes] = []


def _pool() -> list[bytes]:
    if not _POOL:
        _POOL.extend(_requests())
        _POOL.extend(_envelopes().values())
    return _POOL


def _value(rng: random.Random, old):
    k = rng.randrange(12)
    if k == 0:
        return rng.choice(INTS)
    if k == 1:
        return rng.choice(FLOATS)
    if k == 2:
        return rng.choice((True, False, None))
    if k == 3:
        return rng.choice(STRINGS)
    if k == 4:
        return bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 16, 31, 32, 33, 64))))
    if k == 5:
        return [] if rng.randrange(2) else [old]
    if k == 6:
        return {} if rng.randrange(2) else {rng.choice(KEYS): old}
    if k == 7 and isinstance(old, int) and not isinstance(old, bool):
        return old + rng.choice((-1, 1, -2, 2, 512, -512, 1024))
    if k == 8 and isinstance(old, (bytes, str)) and old:
        i = rng.randrange(len(old))
        return old[:i] if rng.randrange(2) else old + old[i:]  # type: ignore[operator]  # both str or both bytes
    if k == 9:
        v = rng.choice(_envelopes_list())
        return v
    if k == 10 and isinstance(old, int) and not isinstance(old, bool):
        return float(old)
    if k == 11 and isinstance(old, bytes) and old:
        b = bytearray(old)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    return rng.choice(INTS)


_ENV: list[bytes] = []


def _envelopes_list() -> list[bytes]:
    if not _ENV:
        _ENV.extend(_envelopes().values())
    return _ENV


def _mutate_tree(rng: random.Random, obj, depth: int = 0):
    """A copy of a decoded CBOR value with one change somewhere in it."""
    if isinstance(obj, dict) and obj and depth < 4 and rng.randrange(4):
        key = rng.choice(list(obj))
        out = dict(obj)
        k = rng.randrange(6)
        if k == 0:
            del out[key]
        elif k == 1:
            out[rng.choice(KEYS)] = _value(rng, out[key])
        elif k == 2:
            new = _value(rng, key) if rng.randrange(4) == 0 else rng.choice(KEYS)  # an int key, a bytes key, ...
            out[new if isinstance(new, (int, float, str, bytes, bool, type(None))) else ""] = out.pop(key)
        else:
            out[key] = _mutate_tree(rng, out[key], depth + 1)
        return out
    if isinstance(obj, list) and obj and depth < 4 and rng.randrange(3):
        items = list(obj)
        i = rng.randrange(len(items))
        if rng.randrange(3) == 0:
            del items[i]
        else:
            items[i] = _mutate_tree(rng, items[i], depth + 1)
        return items
    if isinstance(obj, bytes) and len(obj) > 8 and rng.randrange(3) == 0:
        try:  # an envelope or token inside: mutate what it carries, the signature then no longer covers it
            inner = cbor2.loads(obj)
        except Exception:  # noqa: BLE001 - not CBOR
            inner = None
        if isinstance(inner, dict):
            return cbor2.dumps(_mutate_tree(rng, inner, depth + 1))
    if isinstance(obj, dict) and rng.randrange(2):
        out = dict(obj)
        out[rng.choice(KEYS)] = _value(rng, None)
        return out
    return _value(rng, obj)


def _mutate_packet(rng: random.Random, pkt: bytes) -> bytes:
    if len(pkt) < HEADER:
        return rng.choice(_pool())
    b0, _, _, group, seq, cmd = struct.unpack(">BBHHBB", pkt[:HEADER])
    body = pkt[HEADER:]
    k = rng.randrange(10)
    if k == 0:  # the header: op, version, group, command, sequence (length kept right)
        f = rng.randrange(4)
        if f == 0:
            b0 = (b0 & ~7 & 0xFF) | rng.randrange(8)
        elif f == 1:
            b0 = (b0 & 7) | (rng.randrange(4) << 3)
        elif f == 2:
            group = rng.choice(GROUPS)
        else:
            cmd = rng.randrange(12)
        return packet(b0 >> 3, b0 & 7, group, seq, cmd, body)
    if k == 1:  # the length field wrong, or the body cut
        if rng.randrange(2):
            return pkt[:2] + struct.pack(">H", (len(body) + rng.choice((-1, 1, 255))) & 0xFFFF) + pkt[4:]
        return pkt[:HEADER + rng.randrange(len(body) + 1)]
    try:
        obj = cbor2.loads(body) if body else {}
    except Exception:  # noqa: BLE001 - a body that is not CBOR: leave it to the raw mutations
        return rng.choice(_pool())
    for _ in range(1 + rng.randrange(3)):
        obj = _mutate_tree(rng, obj)
    try:
        new = cbor2.dumps(obj)
    except Exception:  # noqa: BLE001 - a value cbor2 cannot encode
        new = body
    return packet(b0 >> 3, b0 & 7, group, seq, cmd, new)


def mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    recs = records(data) or [(0, rng.choice(_pool()))]
    k = rng.randrange(10)
    if k == 0 and len(recs) < MAX_RECORDS:  # another request joins the sequence
        recs.insert(rng.randrange(len(recs) + 1), (rng.randrange(2), rng.choice(_pool())))
    elif k == 1 and len(recs) > 1:
        del recs[rng.randrange(len(recs))]
    elif k == 2 and len(recs) < MAX_RECORDS:  # the same request again (a duplicate datagram, a retry)
        i = rng.randrange(len(recs))
        recs.insert(i, recs[i])
    elif k == 3 and len(recs) > 1:
        i, j = rng.randrange(len(recs)), rng.randrange(len(recs))
        recs[i], recs[j] = recs[j], recs[i]
    elif k == 4:  # console <-> UDP
        i = rng.randrange(len(recs))
        recs[i] = (recs[i][0] ^ 1, recs[i][1])
    else:
        i = rng.randrange(len(recs))
        recs[i] = (recs[i][0], _mutate_packet(rng, recs[i][1]))
    out = join(recs)
    return out[:max_size]


# built at import, before the probe's setup(): what exists then is left out of CPython's full collections (the
# probe's gc.freeze), and pydantic's models are many objects
_pool()
_envelopes_list()
