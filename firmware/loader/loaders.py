# The loader's own A/B update (stage 0 in boot.py picks the folder). Installing a signed image of kind "loader"
# unpacks it into the other folder (loaders/a or loaders/b), writes that folder's manifest.json last (stage 0 reads
# JSON: it has no CBOR), then names it the loader under test in meter/loaders.json. Stage 0 gives it one boot under
# a watchdog; it confirms itself when the app passes its self-test (update.confirm), otherwise stage 0 reverts it.
import json

from loader import store

STATE = "meter/loaders.json"
ROOT = "loaders"
NAMES = ("a", "b")
MANIFEST = "manifest.json"


def path(name):
    return ROOT + "/" + name


def read_state():
    st = store.read_pointer(STATE, NAMES)
    if st.get("test") not in NAMES or st.get("test") == st["active"]:
        st["test"] = None
    return st


def under_test():
    """True when this boot runs a loader on its one test boot (stage 0 counted the try)."""
    st = read_state()
    return st["test"] is not None and st.get("tries", 0) >= 1


def running():
    st = read_state()
    return st["test"] if under_test() else st["active"]


def take_revert_note():
    """The loader stage 0 reverted at this boot (or None); the note is cleared once read."""
    st = read_state()
    try:
        raw = store.read_json(STATE, {})
    except ValueError:
        return None
    t = raw.get("reverted") if isinstance(raw, dict) else None
    if t:
        store.write_json(STATE, {"active": st["active"]})
    return t


def install(s, m, info, unpack, rmtree):
    """Unpack the loader bundle stream `s` (manifest `m`) into the other folder and make it the one under test.
    Returns the folder name."""
    st = read_state()
    if st["test"] is not None:
        raise ValueError("a loader is already under test")
    target = NAMES[1] if st["active"] == NAMES[0] else NAMES[0]
    root = path(target)
    rmtree(root)
    store.makedirs(root)
    unpack(s, m, root)
    entries = [{"path": f["path"], "size": f["size"], "sha256": f["sha256"].hex()} for f in m["files"]]
    store.write_json(root + "/" + MANIFEST, {"version": info["version"], "counter": info["counter"],
                                             "files": entries})  # last: stage 0 accepts the folder from here on
    store.write_json(STATE, {"active": st["active"], "test": target, "tries": 0})
    return target


def confirm():
    """Make the loader under test the active one; False when none is under test."""
    if not under_test():
        return False
    st = read_state()
    store.write_json(STATE, {"active": st["test"]})
    return True


def version(name):
    try:
        m = json.loads(store.read_bytes(path(name) + "/" + MANIFEST) or b"null")
    except ValueError:
        return None
    return m.get("version") if isinstance(m, dict) else None

