# Stage 0: the first file a board runs, never updated remotely. It picks the loader folder (loaders/a or loaders/b,
# named by meter/loaders.json), checks every file against that folder's manifest.json (size and SHA-256), and runs
# that loader. A loader under test gets one boot, guarded by an 8 s watchdog: if it does not confirm itself (it does
# when the app passes its self-test), the next boot goes back to the previous loader. The state file is replaced by
# rename, so a power cut leaves the old choice or the new one.
import hashlib
import json
import os
import sys

_STATE = "meter/loaders.json"


def _save(st):
    with open(_STATE + ".new", "w") as f:
        f.write(json.dumps(st))
    os.rename(_STATE + ".new", _STATE)


def _valid(d):
    try:
        with open(d + "/manifest.json") as f:
            files = json.loads(f.read())["files"]
        for e in files:
            h = hashlib.sha256()
            n = 0
            with open(d + "/" + e["path"], "rb") as f:
                while True:
                    b = f.read(1024)
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
            if n != e["size"] or h.digest() != bytes.fromhex(e["sha256"]):
                return False
        return len(files) > 0
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _pick():
    try:
        with open(_STATE) as f:
            st = json.loads(f.read())
    except (OSError, ValueError):
        st = {}
    if not isinstance(st, dict):
        st = {}
    act = "b" if st.get("active") == "b" else "a"
    t = st.get("test")
    if t in ("a", "b") and t != act:
        if st.get("tries", 0) >= 1:
            _save({"active": act, "reverted": t})  # it did not confirm itself: back to the previous loader
        else:
            st["tries"] = 1
            _save(st)
            if _valid("loaders/" + t):
                import machine

                machine.WDT(timeout=8000)  # a loader that hangs or drops to the REPL is reset, and so reverted
                return t
    for d in (act, "b" if act == "a" else "a"):
        if _valid("loaders/" + d):
            return d
    return None


_d = _pick()
if _d is None:
    print("stage0: no valid loader folder; provision the board again")
    try:
        with open("meter/mode.json") as _f:
            _locked = json.loads(_f.read()).get("mode") != "development"
    except (OSError, ValueError, AttributeError):
        _locked = False
    while _locked:  # a locked meter never falls back to an open REPL
        import time

        time.sleep(60)
else:
    _root = os.getcwd().rstrip("/") + "/loaders/" + _d  # "/" on a board
    sys.path[:0] = [_root, _root + "/lib"]
    import loader.early

    loader.early.run()
