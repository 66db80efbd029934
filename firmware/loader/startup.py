# main.py's work: pick the slot to boot, check it against its manifest, and run the app from it; fall back to the
# other slot, then to recovery mode. In development mode an app failure drops to the REPL (as on any MicroPython
# board); in locked mode the meter resets instead, because the REPL must stay closed.
import os
import sys

from loader import mode, recovery, slots
from loader.context import Context


def run():
    ctx = Context()
    if ctx.hal.button_pressed():
        recovery.run(ctx, "button held at boot")
        return
    name, manifest, problems = slots.select(ctx.board["id"])
    for slot, why in problems:
        print("loader: slot %s not bootable: %s" % (slot, why))
    if name is None:
        recovery.run(ctx, "no valid app")
        return
    ctx.slot = name
    ctx.slot_path = slots.path(name)
    ctx.manifest = manifest
    ctx.app_version = manifest.get("version")
    root = os.getcwd().rstrip("/") + "/" + slots.path(name)
    sys.path.insert(0, root)
    print("loader: app %s from slot %s, %s mode" % (ctx.app_version, name, ctx.mode))
    try:
        import app.main

        app.main.run(ctx)
    except KeyboardInterrupt:
        if ctx.mode != mode.DEVELOPMENT:
            ctx.reset_now()
        raise
    except Exception as e:
        sys.print_exception(e)
        if ctx.mode != mode.DEVELOPMENT:
            ctx.reset_now()
        raise
