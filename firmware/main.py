# Runs the active application slot, or recovery mode when there is no valid app (or the button is held at boot).
#
# MicroPython enables Ctrl-C again for each file it runs, so this one turns it off first as boot.py does (the loader
# turns it back on for a development meter), and whatever ends this file early (an interrupt already pending, a
# loader that did not start) resets a meter unless its mode file says development: nothing but a development meter
# reaches the REPL. Same rule as boot.py's handler (stage 0 is self-contained: no loader module may be importable).
try:
    import micropython

    micropython.kbd_intr(-1)
    import loader.startup

    loader.startup.run()
    raise RuntimeError("the app ended")  # it never returns on a meter: treated as any other failure
except BaseException as _e:
    import micropython

    micropython.kbd_intr(-1)
    try:
        with open("meter/mode.json") as _f:
            import json

            _m = json.loads(_f.read())
        _open = isinstance(_m, dict) and _m.get("mode") == "development"
    except OSError as _o:
        _open = _o.args[0] == 2  # ENOENT: a board fresh from provisioning's first step
    except BaseException:
        _open = False
    if not _open:
        try:
            import sys

            sys.print_exception(_e)
        except BaseException:
            pass
        while True:  # nothing here may fail into the REPL (a MemoryError, say): try the reset until it happens
            try:
                import machine

                machine.reset()
            except Exception:  # (Ctrl-C is off here; a reset never returns)
                pass
    raise
