# Stage 0: the first file a board runs, never updated remotely. It picks the loader folder (loaders/a or loaders/b,
# named by meter/loaders.json), checks every file against that folder's manifest.json (size and SHA-256), and runs
# that loader. A loader under test gets one boot, guarded by an 8 s watchdog: if it does not confirm itself (it does
# when the app passes its self-test), the next boot goes back to the previous loader. The state file is replaced by
# rename, so a power cut leaves the old choice or the new one.
#
# The console is closed first. MicroPython enables Ctrl-C for each file it runs, so the first statement turns it off
# (loader/early.py turns it back on for a development meter), and everything runs under one handler: an interrupt
# that was already pending, or any other failure, resets a meter unless its mode file says development. Only a
# development meter can reach the REPL (docs/SECURITY.md, "The console").
try:
    import micropython

    micropython.kbd_intr(-1)
    _idle = False  # set when there is no loader to run
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
            if st.get("tries", 0) != 0:  # any other value than a first try: it did not confirm itself
                _save({"active": act, "reverted": t})  # back to the previous loader
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
        _idle = True
        raise OSError(2)  # the handler below: a locked meter idles, a development one opens the REPL
    _root = os.getcwd().rstrip("/") + "/loaders/" + _d  # "/" on a board
    sys.path[:0] = [_root, _root + "/lib"]
    import loader.early

    loader.early.run()
except BaseException as _e:
    import micropython

    micropython.kbd_intr(-1)
    # The console opens only for a meter whose mode file says development; a missing file is a board fresh from
    # provisioning's first step (development), anything unreadable or malformed is locked (as loader/mode.py).
    try:
        with open("meter/mode.json") as _f:
            import json

            _m = json.loads(_f.read())
        _open = isinstance(_m, dict) and _m.get("mode") == "development"
    except OSError as _o:
        _open = _o.args[0] == 2  # ENOENT
    except BaseException:
        _open = False
    if not _open:
        try:
            import sys

            sys.print_exception(_e)
        except BaseException:
            pass
        _stay = globals().get("_idle") is True
        while True:  # nothing here may fail into the REPL (a MemoryError, say)
            try:
                if _stay:  # no loader to run: resetting would only repeat this; idle, never fall back to the REPL
                    import time

                    time.sleep(60)
                else:
                    import machine

                    machine.reset()
            except Exception:  # (Ctrl-C is off here; a reset never returns)
                pass
    raise
