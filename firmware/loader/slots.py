# Application slots: two directories (slots/a, slots/b), each holding an app package and its manifest, plus the
# pointer file meter/slots.json naming the active one (replaced by rename, so switching is atomic). A slot is valid
# when its manifest parses, names this board and a loader API this loader serves, and every file matches its size
# and SHA-256 with no unlisted file beside them.
import hashlib
import os

import cbor
from loader import LOADER_API, store, strict

NAMES = ("a", "b")
ROOT = "slots"
STATE = "meter/slots.json"
MANIFEST = "manifest.cbor"
IMAGE_INFO = "image.json"  # written by the installer beside the manifest (loader/update.py)
_CHUNK = 1024


def path(name):
    return ROOT + "/" + name


def other(name):
    return NAMES[1] if name == NAMES[0] else NAMES[0]


_TRIAL_KEYS = ("hash", "version", "outcome", "reason")


def read_state():
    """The pointer file's fields (update.py names them), each of its own shape: what a damaged file held anywhere
    else is not kept, since each change writes this dict back (a value nested past MicroPython's recursion limit
    made json.dump raise out of the start-up). A `tries` that is not an int counts as a try made (1)."""
    raw = store.read_pointer(STATE, NAMES)
    st = {"active": raw["active"]}
    st["confirmed"] = raw["confirmed"] if raw.get("confirmed") in NAMES else raw["active"]
    st["test"] = raw["test"] if raw.get("test") in NAMES else None
    if "tries" in raw:
        st["tries"] = raw["tries"] if strict.is_int(raw["tries"]) else 1
    if raw.get("permanent"):
        st["permanent"] = True
    t = raw.get("trial")
    if type(t) is dict:
        st["trial"] = {k: t[k] for k in _TRIAL_KEYS if type(t.get(k)) in (str, int)}
    return st


def file_sha256(p):
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    mv = memoryview(buf)
    with open(p, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    return h.digest()


def _listed(top, prefix, out):
    for ent in os.ilistdir(top):
        rel = prefix + ent[0]
        if ent[1] == 0x4000:
            _listed(top + "/" + ent[0], rel + "/", out)
        else:
            out.append(rel)
    return out


def read_manifest(name):
    raw = store.read_bytes(path(name) + "/" + MANIFEST)
    if raw is None:
        return None
    m = cbor.loads(raw)
    if not isinstance(m, dict) or not strict.is_int(m.get("format"), 1, 1) or not isinstance(m.get("files"), list):
        raise ValueError("manifest format")
    return m


def check(name, board_id):
    """(manifest, None) when slot `name` holds a valid app, else (None, reason)."""
    if not store.is_dir(path(name)):
        return None, "empty"
    try:
        m = read_manifest(name)
    except ValueError:
        return None, "manifest corrupt"
    if m is None:
        return None, "no manifest"
    if m.get("board") != board_id:
        return None, "wrong board"
    if not strict.is_int(m.get("loader_api"), LOADER_API, LOADER_API):  # 2, never 2.0 or True
        return None, "loader api"
    want = {}
    for f in m["files"]:
        p = f.get("path") if isinstance(f, dict) else None
        if not isinstance(p, str) or p.startswith("/") or ".." in p.split("/") or p in (MANIFEST, IMAGE_INFO):
            return None, "manifest path"
        want[p] = f
    have = _listed(path(name), "", [])
    for rel in have:
        if rel != MANIFEST and rel != IMAGE_INFO and rel not in want:
            return None, "unlisted file " + rel
    for rel in want:
        full = path(name) + "/" + rel
        try:
            size = os.stat(full)[6]
        except OSError:
            return None, "missing " + rel
        f = want[rel]
        if not strict.is_int(f.get("size"), size, size) or file_sha256(full) != f.get("sha256"):
            return None, "hash mismatch " + rel
    return m, None


def select(board_id, first=None):
    """The slot to boot: `first` (default: the active one) when valid, else the other one. Returns (name, manifest,
    problems)."""
    problems = []  # type: list[tuple[str, str]]
    if first not in NAMES:
        first = read_state()["active"]
    for name in (first, other(first)):
        m, why = check(name, board_id)
        if m is not None:
            return name, m, problems
        problems.append((name, why))
    return None, None, problems
