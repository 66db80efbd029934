"""The app bundle inside a signed image (loader/bundle.py) and its unpacking into the inactive slot
(loader/install.py): the deflate stream, the manifest (magic, size, CBOR, entries), its agreement with the signed
TLVs, safe paths, shadowed .py files, the slot budget, file hashes, data after the last file. Documented error:
BundleError (with a stable reason code, docs/image-format.md).

The probe runs install's own sequence on an in-memory payload (the image's signature is the image_header target's
concern: here the payload is taken as accepted): open_stream, read_manifest, check_manifest, then for an app bundle
install.rmtree + store.makedirs + install._unpack into slots/b (and install.rmtree of it on a BundleError, as install
does), for a loader bundle check_files; and bundle.check on the same payload.

Input: a switch byte s, then the payload.
    s & 1   the payload is the bundle's plain bytes, put into stored (uncompressed) deflate blocks here, so that
            byte mutations reach the bundle format directly; else it is the raw deflate stream itself
    s & 2   (with s & 1) each file entry's sha256 is set to the hash of its bytes and the manifest re-encoded, its
            length field set to match
    s & 4   a slot budget of 2,000 bytes, else 64 KB
    s & 8   the signed TLVs the manifest must agree with are taken from the manifest, else the fixtures' (board
            esp32_devkitc, version 1.2.3+4, this loader's API, counter 5)
Invariants: nothing is ever written outside slots/b; after a refusal slots/b is gone (nothing half-written); after an
acceptance slots/b holds exactly the manifest's files with their hashes; install and bundle.check (what the host runs
before a push) agree, but for one documented difference: install does not read past the last file, so data after it
is refused by bundle.check only (the payload is signed: only a trusted signer can put it there)."""

import hashlib
import io
import os
import struct

import fuzzcore

import cbor
from loader import LOADER_API, bundle, install, store

ERRORS = (bundle.BundleError,)
MODULES = ("loader/bundle.py", "loader/install.py")
MEM_BASE = 96 * 1024  # the inflate window (4 KB) and CPython's zlib state
MEM_PER_BYTE = 200
ROOT = "slots/b"


def stored_blocks(body):
    """`body` as raw deflate in stored blocks (RFC 1951 3.2.4): no compression library needed, on either runtime."""
    out = bytearray()
    n = len(body)
    p = 0
    while True:
        k = min(65535, n - p)
        last = p + k >= n
        out.extend(bytes([1 if last else 0]) + struct.pack("<HH", k, k ^ 0xFFFF))
        out.extend(body[p:p + k])
        p += k
        if last:
            return bytes(out)


def fix_hashes(body):
    if len(body) < 8 or body[:4] != bundle.MAGIC:
        return body
    n = struct.unpack("<I", body[4:8])[0]
    try:
        m = cbor.loads(body[8:8 + n])
    except ValueError:
        return body
    if type(m) is not dict or type(m.get("files")) is not list:
        return body
    p = 8 + n
    for f in m["files"]:
        if type(f) is not dict or type(f.get("size")) is not int or f["size"] < 0:
            return body
        f["sha256"] = hashlib.sha256(body[p:p + f["size"]]).digest()
        p += f["size"]
    mb = cbor.dumps(m)
    return bundle.MAGIC + struct.pack("<I", len(mb)) + mb + body[8 + n:]


def info_for(s, payload):
    info = {"board": b"esp32_devkitc", "version": "1.2.3+4", "loader_api": LOADER_API, "counter": 5,
            "payload_offset": 0}
    if s & 9 == 9 and len(payload) >= 8 and payload[:4] == bundle.MAGIC:
        try:
            m = cbor.loads(payload[8:8 + struct.unpack("<I", payload[4:8])[0]])
        except ValueError:
            return info
        if type(m) is dict:
            if type(m.get("board")) is str:
                info["board"] = m["board"].encode()
            if type(m.get("version")) is str:
                info["version"] = m["version"] if "+" in m["version"] else m["version"] + "+0"
            if type(m.get("loader_api")) is int:
                info["loader_api"] = m["loader_api"]
            if type(m.get("security_counter")) is int:
                info["counter"] = m["security_counter"]
    return info


def prepare(data):
    """(stream bytes, info, budget) that input `data` stands for."""
    s = data[0] if data else 0
    payload = bytes(data[1:])
    if s & 1:
        if s & 2:
            payload = fix_hashes(payload)
        info = info_for(s, payload)
        payload = stored_blocks(payload)
    else:
        info = info_for(s, b"")
    return payload, info, (2000 if s & 4 else 64 * 1024)


def _files(top):
    out = []
    for ent in os.listdir(top) if hasattr(os, "listdir") else [e[0] for e in os.ilistdir(top)]:
        p = top + "/" + ent
        if store.is_dir(p):
            out.extend(_files(p))
        else:
            out.append(p)
    return out


def run(data):
    payload, info, budget = prepare(data)
    checked = None
    try:  # what `ota verify` and `ota push` run on the host first
        bundle.check(io.BytesIO(payload), info, budget)
    except bundle.BundleError as e:
        checked = e
    m = None
    refused = None
    base = None  # a scratch folder only once files are to be written (its removal is most of the probe's cost)
    try:
        s = bundle.open_stream(io.BytesIO(payload), info)
        m = bundle.read_manifest(s)
        bundle.check_manifest(m, info, budget)
        if bundle.kind(m) == bundle.KIND_LOADER:
            bundle.check_files(s, m)
        else:
            base = fuzzcore.scratch("bundle")
            os.mkdir("slots")
            install.rmtree(ROOT)
            store.makedirs(ROOT)
            install._unpack(s, m, ROOT)
    except bundle.BundleError as e:
        if base is not None:
            install.rmtree(ROOT)
        refused = e
    written = []
    if base is not None:
        os.chdir(base)
        written = _files(".")
    if refused is not None:
        fuzzcore.check(not written, "files left behind after a refused bundle: %r" % (written[:4],))
        fuzzcore.check(checked is not None, "install refuses (%s) a bundle bundle.check accepts" % refused)
        raise refused
    # install stops after the last file, so what bundle.check finds past it (extra bytes, or a deflate stream that
    # breaks after the last file's data, as a 60 s campaign found) only check refuses; both read every file whole
    fuzzcore.check(checked is None or checked.reason == bundle.B_FORMAT and (
        "after the last file" in str(checked) or "corrupt deflate stream" in str(checked)),
        "install accepts a bundle bundle.check refuses (%s)" % checked)
    if bundle.kind(m) == bundle.KIND_LOADER:
        return {"manifest": m}
    want = sorted("./" + ROOT + "/" + f["path"] for f in m["files"])
    fuzzcore.check(sorted(written) == want, "the slot holds %r, the manifest names %r" % (written[:4], want[:4]))
    for f in m["files"]:
        with open(ROOT + "/" + f["path"], "rb") as fh:
            fuzzcore.check(hashlib.sha256(fh.read()).digest() == f["sha256"], "an unpacked file differs from its hash")
    return {"manifest": m, "trailing": checked is not None}
