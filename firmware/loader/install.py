# The install of a verified upload, at boot, as MCUboot does (docs/update-state-machine.md): the staged image is
# verified again, trusting nothing from before, and its bundle (loader/bundle.py: manifest, paths, file hashes) is
# checked while its files are written into the inactive slot, the manifest last (a slot is only valid once every file
# matches it); then the pointer file names the slot under test, then the request is removed. A power cut at any point
# leaves the request in place and the install is simply done again. Only a boot with a request pending imports this
# module (loader/startup.py), and takes it off the heap after: the app never holds it, nor the bundle reader.
import hashlib
import os

import cbor
from loader import bundle, image, journal, loaders, slots, staging, store, update


class Installed:
    """What install() put in place: `target` is the app slot now under test, or with `loader` true the loader
    folder (the caller resets at once: stage 0 starts the new loader on its test boot)."""

    def __init__(self, target, loader=False):
        self.target = target
        self.loader = loader


def rmtree(path):
    if not store.is_dir(path):
        return
    for ent in os.ilistdir(path):
        p = path + "/" + ent[0]
        if ent[1] == 0x4000:
            rmtree(p)
            os.rmdir(p)
        else:
            os.remove(p)


def install(board):
    """Install the staged upload into the inactive slot (or a loader into the other loader folder) and make it the
    one under test. Returns an Installed, or None (with an event) when there is nothing valid to install."""
    import gc

    gc.collect()
    req = update.pending()
    st = slots.read_state()
    budget = staging.slot_budget(board)
    try:
        info = staging.check_staged(board)
    except (OSError, image.Rejected) as e:
        journal.event("install-refused", getattr(e, "reason", "no staged image"))
        update.drop_request()
        return None
    if info["sha256"].hex() != req["hash"]:
        journal.event("install-refused", "hash differs from the request")
        update.drop_request()
        return None
    target = slots.other(st.get("confirmed") or st["active"])
    root = slots.path(target)
    try:
        with open(staging.STAGING, "rb") as f:
            s = bundle.open_stream(f, info)
            m = bundle.read_manifest(s)
            bundle.check_manifest(m, info, budget)
            if bundle.kind(m) == bundle.KIND_LOADER:
                return _install_loader(s, m, info)
            rmtree(root)
            store.makedirs(root)
            _unpack(s, m, root)
    except bundle.BundleError as e:
        journal.event("install-refused", e.reason)
        rmtree(root)
        update.drop_request()
        return None
    store.write_json(root + "/" + slots.IMAGE_INFO, {"hash": info["sha256"].hex(), "version": info["version"],
                                               "counter": info["counter"]})
    store.write_atomic(root + "/" + slots.MANIFEST, cbor.dumps(m))  # last: the slot is complete from here on
    st["test"] = target
    st["tries"] = 0
    st["permanent"] = req.get("permanent") is True  # only a true permanent skips the test boot
    st["trial"] = {"hash": info["sha256"].hex(), "version": info["version"], "outcome": update.TESTING, "reason": ""}
    st.setdefault("confirmed", st["active"])
    store.write_json(slots.STATE, st)
    os.remove(update.UPDATE)
    staging.discard()  # the slot holds the update now; a failed test boot reverts to the old slot
    journal.event("installed", "%s into slot %s" % (info["version"], target))
    return Installed(target)


def _install_loader(s, m, info):
    try:
        target = loaders.install(s, m, info, _unpack, rmtree)
    except ValueError as e:
        journal.event("install-refused", str(e))
        update.drop_request()
        return None
    except bundle.BundleError as e:
        journal.event("install-refused", e.reason)
        rmtree(loaders.path(loaders.NAMES[1] if loaders.read_state()["active"] == "a" else loaders.NAMES[0]))
        update.drop_request()
        return None
    os.remove(update.UPDATE)
    staging.discard()
    journal.event("installed", "loader %s into loaders/%s" % (info["version"], target))
    return Installed(target, loader=True)


def _unpack(s, m, root):
    buf = bytearray(1024)
    mv = memoryview(buf)
    for f in m["files"]:
        path = root + "/" + f["path"]
        store.makedirs(path.rsplit("/", 1)[0])
        h = hashlib.sha256()
        left = f["size"]
        with open(path + store.TMP_SUFFIX, "wb") as out:
            while left:
                try:
                    n = s.readinto(mv[:min(1024, left)])
                except bundle.STREAM_ERRORS:  # as bundle.check_files: a refusal, never an exception out of the boot
                    raise bundle.BundleError(bundle.B_FORMAT, "corrupt deflate stream") from None
                if not n:
                    raise bundle.BundleError(bundle.B_FORMAT, "bundle ends early")
                h.update(mv[:n])
                out.write(mv[:n])
                left -= n
        if h.digest() != f["sha256"]:
            os.remove(path + store.TMP_SUFFIX)
            raise bundle.BundleError(bundle.B_HASH, f["path"])
        os.rename(path + store.TMP_SUFFIX, path)


