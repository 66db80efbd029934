# The application bundle inside a signed image (docs/image-format.md): raw deflate (4 KB window) of
# b"MKB1" | u32 manifest length | CBOR manifest | file bytes in manifest order. Read as a stream from the image
# file, never whole in RAM. `check` applies the bundle half of the acceptance policy: the manifest agrees with the
# protected TLVs (board, loader API, version), every path is safe, no .py would shadow a .mpy, sizes fit the slot,
# and every file matches its SHA-256.
import hashlib
import struct

import deflate
from micropython import const

import cbor

MAGIC = b"MKB1"
WBITS = const(12)
_MANIFEST_MAX = const(8192)
_CHUNK = const(1024)

B_FORMAT = "bundle-format"
B_PATH = "manifest-path"
B_SHADOW = "shadowed-py"
B_AGREE = "manifest-mismatch"
B_OVERSIZE = "oversize"
B_HASH = "file-hash"


# what reading a broken deflate stream raises: OSError or ValueError, and on MicroPython EOFError for a stream that
# ends inside a block (each is the refusal B_FORMAT, never an exception out of the install at boot)
STREAM_ERRORS = (OSError, ValueError, EOFError)


class BundleError(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason


# The bundle is unpacked and checked only by the loader's install, at boot, on a heap still in one piece: the inflate
# window (2**WBITS bytes in one piece) and the manifest, read whole, found no hole on the ESP32 after hours of
# metering, and a block held from boot for them cost the app 9.7 KB for the whole of its run (issue 17).
def open_stream(f, info):
    # The decompressor reads the image file directly: it pulls its input one byte at a time, which costs a Python
    # call per byte through any wrapper (x250 slower). The payload is signed and `accept` has checked it before
    # this runs, so the stream it reads is the one the signer produced; reading past it would only reach the TLVs.
    f.seek(info["payload_offset"])
    return deflate.DeflateIO(f, deflate.RAW, WBITS)


def _exact(stream, n):
    out = b""
    while len(out) < n:  # (one read, one allocation, in the common case: no concatenation of the first part)
        try:
            part = stream.read(n - len(out))
        except STREAM_ERRORS:
            raise BundleError(B_FORMAT, "corrupt deflate stream") from None
        if not part:
            raise BundleError(B_FORMAT, "bundle ends early")
        out = out + part if out else part
    return out


KIND_APP = "app"
KIND_LOADER = "loader"
# where each kind of bundle may put files (an app never writes the loader, a loader never an app)
_ROOTS = {KIND_APP: ("app/",), KIND_LOADER: ("loader/", "lib/")}


def kind(m):
    return m.get("kind", KIND_APP)


def safe_path(p, k=KIND_APP):
    if not isinstance(p, str) or not p or p.startswith("/") or "\\" in p or "\x00" in p:
        return False
    for part in p.split("/"):
        if part in ("", ".", ".."):
            return False
    for root in _ROOTS.get(k, ()):
        if p.startswith(root):
            return True
    return False


def read_manifest(stream):
    head = _exact(stream, 8)
    if head[:4] != MAGIC:
        raise BundleError(B_FORMAT, "magic")
    n = struct.unpack("<I", head[4:])[0]
    if n > _MANIFEST_MAX:
        raise BundleError(B_OVERSIZE, "manifest of %d bytes" % n)
    try:
        m = cbor.loads(_exact(stream, n))
    except ValueError:
        raise BundleError(B_FORMAT, "manifest CBOR") from None
    if not isinstance(m, dict) or not _is(m.get("format"), 1) or not isinstance(m.get("files"), list):
        raise BundleError(B_FORMAT, "manifest fields")
    for f in m["files"]:
        if not isinstance(f, dict) or type(f.get("size")) is not int or f["size"] < 0 \
                or not isinstance(f.get("sha256"), bytes) or len(f["sha256"]) != 32:
            raise BundleError(B_FORMAT, "file entry")
    return m


def _is(v, want):
    """v is the int `want` (never True or 1.0). The module stands alone: `ota verify` runs it on the host as well."""
    return type(v) is int and v == want


def _version(v):
    return v if "+" in v else v + "+0"


def check_manifest(m, info, budget):
    if m.get("board") != info["board"].decode():
        raise BundleError(B_AGREE, "board")
    if not _is(m.get("loader_api"), info["loader_api"]):
        raise BundleError(B_AGREE, "loader api")
    if not isinstance(m.get("version"), str) or _version(m["version"]) != info["version"]:
        raise BundleError(B_AGREE, "version")
    if not _is(m.get("security_counter"), info["counter"]):
        raise BundleError(B_AGREE, "security counter")
    if type(kind(m)) is not str or kind(m) not in _ROOTS:  # (a list or a map is no dict key: a TypeError)
        raise BundleError(B_FORMAT, "kind")
    paths = set()
    total = 0
    for f in m["files"]:
        p = f.get("path")
        if not safe_path(p, kind(m)) or p in paths:
            raise BundleError(B_PATH, repr(p))
        paths.add(p)
        total += f["size"]
    for p in paths:
        if p.endswith(".py") and p[:-3] + ".mpy" in paths:
            raise BundleError(B_SHADOW, p)
    if total > budget:
        raise BundleError(B_OVERSIZE, "%d bytes unpacked, slot budget %d" % (total, budget))


def check_files(stream, m):
    buf = bytearray(_CHUNK)
    mv = memoryview(buf)
    for f in m["files"]:
        h = hashlib.sha256()
        left = f["size"]
        while left:
            try:
                n = stream.readinto(mv[:min(_CHUNK, left)])
            except STREAM_ERRORS:
                raise BundleError(B_FORMAT, "corrupt deflate stream") from None
            if not n:
                raise BundleError(B_FORMAT, "bundle ends early")
            h.update(mv[:n])
            left -= n
        if h.digest() != f["sha256"]:
            raise BundleError(B_HASH, f["path"])
    try:
        extra = stream.read(1)
    except STREAM_ERRORS:
        raise BundleError(B_FORMAT, "corrupt deflate stream") from None
    if extra:
        raise BundleError(B_FORMAT, "data after the last file")


def check(f, info, budget):
    """Stream the bundle of an accepted image and check it; returns the manifest."""
    s = open_stream(f, info)
    m = read_manifest(s)
    check_manifest(m, info, budget)
    check_files(s, m)
    return m
