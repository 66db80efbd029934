# main.py's work: pick the slot to boot, check it against its manifest, and run the app from it; fall back to the
# other slot, then to recovery mode. In development mode an app failure drops to the REPL (as on any MicroPython
# board); in locked mode the meter resets instead, because the REPL must stay closed.
import os
import sys

from micropython import const

import loader
from loader import journal, mode, slots, update

TEST_WDT_MS = 8000  # a test boot that hangs this long is reset, and the reset reverts it
# A collection each time 1/_COLLECT_SHARE of the heap has been allocated (gc.threshold), not only when an allocation
# finds no room. MicroPython's heap never moves an object and allocates first-fit from the bottom: left to fill, it
# spreads garbage over all the free heap between collections, and whatever outlives a collection (a reading's values,
# a task, an event) stays where it fell, every few hundred bytes across the top. The emulated ESP32 then had 45 KB
# free after some SMP work in pieces of at most 2 KB (board bytes), and a DLMS read failed to load 752 bytes of code
# (other-reason 250) in about 1 run of 6. With this the survivors land in the holes low down and the top stays whole:
# 28 KB its largest block after the same work. The price is CPU for the collections (docs/BENCHMARKS.md, "Heap in
# pieces").
_COLLECT_SHARE = const(16)


def _install(board):
    """The pending install (loader/install.py), then its modules off the heap again: the app never needs the
    installer nor the bundle reader, and most boots import neither."""
    from loader import install

    try:
        return install.install(board)
    finally:
        loader.forget("loader.install")
        loader.forget("loader.bundle")


def choose(board, wdt=False):
    """Install a pending update, then pick the slot to boot: (name, manifest, test boot?), name None when neither
    slot holds a valid app; `wdt`: the watchdog reset the board (a test boot that hung). Pure filesystem work (the
    power-cut sweeps run it on CPython over littlefs)."""
    if update.pending():
        _install(board)
    first, test = update.boot_choice(None, wdt)
    name, manifest, problems = slots.select(board["id"], first)
    for slot, why in problems:
        print("loader: slot %s not bootable: %s" % (slot, why))
    if test and name != first:
        update.boot_choice("not bootable: " + problems[0][1])  # tries is 1 now: this reverts the pointer file
        test = False
    return name, manifest, test


def _prepare():
    """Everything before the app: install, choose the slot, the context. Returns None when recovery mode ran. Its own
    function so its locals (the manifest, start-up-only modules) are gone while the app runs: run() never returns."""
    loader.forget("loader.early")  # boot.py's work is done
    from loader.context import Context

    ctx = Context()
    if ctx.hal.button_pressed():
        from loader import recovery

        recovery.run(ctx, "button held at boot")
        return None
    if update.pending():
        done = _install(ctx.board)
        if done is not None and done.loader:
            ctx.reset_now()  # stage 0 starts the new loader on its test boot
    import machine

    hung = machine.reset_cause() == machine.WDT_RESET
    name, manifest, test = choose(ctx.board, hung)
    if name is None:
        from loader import recovery

        recovery.run(ctx, "no valid app")
        return None
    from loader import recovery

    recovery.restore_relay(ctx)
    loader.forget("loader.recovery")  # start-up only (as early and starts): the app's heap is the board's tightest
    from loader import loaders

    ctx.loader_test = loaders.under_test()  # a new loader proves itself through the app's self-test
    if not ctx.loader_test:
        loader.forget("loader.loaders")  # only a loader's test boot needs it again (its confirm)
    test = test or ctx.loader_test
    ctx.test_boot = test
    if test:
        ctx.wdt = machine.WDT(timeout=TEST_WDT_MS)
    ctx.slot = name
    ctx.slot_path = slots.path(name)
    ctx.facts = update.slots_facts(name, manifest)  # here, before the app's imports: see slots_facts
    v = manifest.get("version")
    ctx.app_version = v if type(v) is str else None
    manifest = None
    root = os.getcwd().rstrip("/") + "/" + slots.path(name)
    sys.path.insert(0, root)
    print("loader: app %s from slot %s, %s mode%s" % (ctx.app_version, name, ctx.mode,
                                                     ", test boot" if test else ""))
    from loader import starts

    aside = starts.begin(hung)
    if aside:
        journal.event("settings-set-aside", "%d failed starts: %s" % (starts.STRIKES_MAX, ", ".join(aside)))
    starts.forget()
    return ctx


def run():
    import gc

    gc.threshold((gc.mem_free() + gc.mem_alloc()) // _COLLECT_SHARE)
    ctx = _prepare()
    if ctx is None:
        return  # recovery mode ran
    # A collection before the app's first module loads: the loader's start-up garbage (file reads, parsed JSON, the
    # manifest's checks) still lies among the holes, and the app's module code, placed around it, left the emulated
    # ESP32's heap in pieces once it went (largest free block 4 KB of 121 KB VM free where metering makes its sample
    # buffers, and a start that failed there for 1,776 bytes). With the garbage gone first the code packs into the
    # holes low down and the top of the heap stays whole: 78 KB there (docs/BENCHMARKS.md, "Boot heap").
    gc.collect()
    try:
        import app.main

        app.main.run(ctx)
    except KeyboardInterrupt:
        if ctx.mode != mode.DEVELOPMENT:
            ctx.reset_now()
        raise
    except Exception as e:
        sys.print_exception(e)
        try:
            from loader import starts

            starts.crashed()  # a failed start, if it came before the app proved healthy (loader/starts.py)
        except Exception:  # noqa: BLE001 - a full heap or flash must not keep the meter from its reset
            pass
        if ctx.mode != mode.DEVELOPMENT or ctx.test_boot:
            ctx.reset_now(e)  # a failing test boot resets at once: the reset reverts it, the rollback names e
        raise
