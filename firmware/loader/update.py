# The install request and the test-boot state machine (docs/update-state-machine.md); the install itself, at boot, is
# loader/install.py (imported only when a request is pending).
#   meter/update.json   {"hash": hex, "permanent": bool}: install the staged upload at the next boot
#   meter/slots.json    {"active": s, "confirmed": s, "test": s|None, "tries": n, "permanent": bool, "trial": t}
#   t, the latest test boot: {"hash": hex, "version": v, "outcome": testing|confirmed|rolled-back, "reason": why}
# Install happens in the loader at boot, as MCUboot does: the staged image is verified again, its files are written
# into the inactive slot with the manifest last (a slot is only valid once every file matches it), then the pointer
# file names the slot under test, then the request is removed. A power cut at any point leaves the request in place
# and the install is simply done again. A test boot that is not confirmed before the next reset reverts.
# The trial rides in the same write as each change of the slots it describes (install, confirm, rollback), so it can
# never disagree with them; a test boot that fails writes why into it before its reset (one more write of the same
# record: a cut there loses only the reason, and the rollback then gives a general one).
import hashlib
import os

from loader import journal, slots, staging, store, strict

UPDATE = "meter/update.json"
IMAGE_INFO = slots.IMAGE_INFO  # in a slot: {"hash", "version", "counter"} of the image it was installed from
TESTING = "testing"
CONFIRMED = "confirmed"
ROLLED_BACK = "rolled-back"
NOT_CONFIRMED = "not confirmed before reset"
REASON_MAX = 64
changes = 0  # counts this boot's install requests, confirmations and failed test boots (for readers' caches)


def _changed():
    global changes
    changes += 1


def request(hash_bytes, permanent):
    store.write_json(UPDATE, {"hash": hash_bytes.hex(), "permanent": bool(permanent)})
    _changed()


def pending():
    try:
        rec = store.read_json(UPDATE)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("hash"), str) else None


def drop_request():
    """Drop a refused install request: first the trial of the test boot before it (no test boot followed this
    request), then the request (a cut between the two: the request is refused again at the next boot)."""
    st = slots.read_state()
    if st.pop("trial", None) is not None:
        store.write_json(slots.STATE, st)
    try:
        os.remove(UPDATE)
    except OSError:
        pass


def boot_choice(why=None, wdt=False):
    """The slot to try first and whether this is a test boot; reverts a test boot that was not confirmed. Why it
    failed: `why` from the caller (the slot is not bootable), else what the test boot recorded (test_failed), else
    the watchdog (`wdt`: the reset cause), else NOT_CONFIRMED; it goes into the trial and the rollback event."""
    st = slots.read_state()
    test = st.get("test")
    if test:
        if st.get("tries", 0) != 0:  # any other value than a first try (a damaged record too): revert
            back = st.get("confirmed") or st["active"]
            t = st.get("trial")
            r = t.get("reason") if isinstance(t, dict) else None
            why = why or (r if r and type(r) is str else ("watchdog" if wdt else NOT_CONFIRMED))
            journal.event("rollback", "slot %s %s" % (test, why if why[:4] == "not " else "not confirmed: " + why))
            st = {"active": back, "confirmed": back, "test": None, "tries": 0}
            if isinstance(t, dict):
                t["outcome"] = ROLLED_BACK
                t["reason"] = why[:REASON_MAX]
                st["trial"] = t
            store.write_json(slots.STATE, st)
            return back, False
        if st.get("permanent"):
            # installed for good (`ota push --confirm`, smpmgr --confirm): confirmed now, no test boot to revert
            confirm(test)
            return test, False
        st["tries"] = 1
        store.write_json(slots.STATE, st)
        return test, True
    return st["active"], False


def confirm(slot):
    """Make `slot` (the one under test, now running) the confirmed one; raise the security counter to its image's.
    A loader on its test boot is confirmed too (the app's self-test is its proof as well)."""
    # Deferred for RAM: only a loader's test boot needs it, and start-up takes it off the heap otherwise
    # (loader.forget in loader/startup.py), which a top-level import here would undo.
    from loader import loaders

    if loaders.under_test():
        running = loaders.running()
        _raise_counter(store.read_json(loaders.path(running) + "/" + loaders.MANIFEST, {}) or {})
        loaders.confirm()
        journal.event("confirmed", "loader %s" % running)
    st = slots.read_state()
    if st.get("test") != slot:
        return False
    try:
        info = store.read_json(slots.path(slot) + "/" + IMAGE_INFO, {}) or {}
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}  # damaged: confirmed all the same (the slot's manifest was checked at boot), counter untouched
    # the counter first: a cut between the two writes leaves the counter raised and the old app running (safe),
    # never the new app confirmed with the old counter (which would let the older images back in)
    _raise_counter(info)
    new = {"active": slot, "confirmed": slot, "test": None, "tries": 0}
    t = st.get("trial")
    if isinstance(t, dict):
        t["outcome"] = CONFIRMED
        t["reason"] = ""
        new["trial"] = t
    store.write_json(slots.STATE, new)
    staging.discard()
    journal.event("confirmed", "slot %s %s" % (slot, info.get("version", "")))
    _changed()
    return True


def test_failed(why):
    """Record why the running test boot failed (a text, or the exception the app raised: "ValueError: ..."), before
    the reset that reverts it; the rollback at the next boot reports it."""
    if isinstance(why, BaseException):
        m = str(why)
        why = type(why).__name__ + (": " + m if m else "")
    st = slots.read_state()
    t = st.get("trial")
    if st["test"] and st.get("tries") == 1 and isinstance(t, dict):
        t["reason"] = why[:REASON_MAX]
        store.write_json(slots.STATE, st)
        _changed()


def trial(st):
    """The latest test boot from slots.json's dict `st` ({hash: bytes, version, outcome, reason}), or None when there
    is none or it has another shape."""
    t = st.get("trial")
    try:
        if (type(t["version"]) is type(t["reason"]) is str and t["outcome"] in (TESTING, CONFIRMED, ROLLED_BACK)
                and len(t["hash"]) == 64):
            return {"hash": bytes.fromhex(t["hash"]), "version": t["version"], "outcome": t["outcome"],
                    "reason": t["reason"]}
    except (TypeError, KeyError, ValueError):
        pass
    return None


def _raise_counter(info):
    if isinstance(info, dict) and strict.is_int(info.get("counter"), 0) and info["counter"] > staging.stored_counter():
        store.write_json(staging.COUNTER, {"counter": info["counter"]})


def slot_hash(name):
    """The image hash a slot was installed from (the provisioned slot: SHA-256 of its manifest)."""
    try:
        info = store.read_json(slots.path(name) + "/" + IMAGE_INFO, {})
    except ValueError:
        info = {}
    if isinstance(info, dict) and type(info.get("hash")) is str and len(info["hash"]) == 64:
        try:
            return bytes.fromhex(info["hash"])
        except ValueError:
            pass  # damaged: the manifest's hash below
    p = slots.path(name) + "/" + slots.MANIFEST
    return slots.file_sha256(p) if store.exists(p) else hashlib.sha256(b"").digest()  # in pieces: see slots_facts


def slots_facts(active, manifest):
    """{slot: (version, hash, bootable)} for the slot booted (`manifest`: its manifest, read already, or None) and for
    the other slot when it holds a manifest: what an image state read reports. The loader works them out before the
    app's imports, while the heap holds little else; an app that read a manifest whole (3 KB) at its start failed
    there with a MemoryError after recovery mode, on an ESP32 heap whose largest free block was 3.6 KB of 100 KB."""
    facts = {}
    for name in (active, slots.other(active)):
        m = manifest if name == active else None
        if m is None:
            if name != active and not store.exists(slots.path(name) + "/" + slots.MANIFEST):
                break
            try:
                m = slots.read_manifest(name)
            except (ValueError, MemoryError, RuntimeError):  # whatever a stored file holds, the boot goes on:
                m = None  # the slot is reported unbootable
        v = (m or {}).get("version")
        facts[name] = (v if type(v) is str else None, slot_hash(name), m is not None)
        m = None
    return facts


