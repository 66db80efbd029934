# The emulated board's start-up, in the role of a MicroPython port's own C start-up: connect the hardware bus, mount
# the littlefs filesystem at '/', then run boot.py and main.py from it exactly as a board does. With `-i` the VM
# then enters the REPL, as a board does when main.py ends or is interrupted.
import micropython

micropython.kbd_intr(-1)  # the port's C start-up is not interruptible: Ctrl-C is a plain byte until a file runs
import os  # noqa: E402
import sys  # noqa: E402

import _emu_bus as bus  # noqa: E402

cfg = bus.start(os.getenv("MEMU_BUS"))

import _emu_clock  # noqa: E402  (the shims need the bus first)
import _emu_rtc  # noqa: E402

_emu_clock.set_speed(cfg.get("speed", 1.0))
_emu_clock.set_hold(cfg.get("hold", False))
if cfg.get("free"):
    _emu_clock.set_free()
_emu_rtc.configure(cfg["rtc"])
if cfg.get("end_ns") is not None:  # `meter-emu run --for`: the run ends at this world time, across reboots
    _emu_clock.end_at((cfg["end_ns"] - cfg["rtc"]["world_ns"]) // 1000)
if cfg.get("run") and cfg["run"]["target_ns"] is not None:  # a `ctl run` still under way when the board rebooted
    _emu_rtc.run_to_world(cfg["run"]["target_ns"], cfg["run"]["speed"])

import select  # noqa: E402,F401
import time  # noqa: E402,F401  (our shims, loaded before the host paths disappear under the mount)

import _emu_asyncio  # noqa: E402
import _emu_flash  # noqa: E402
import _emu_gate  # noqa: E402
import _emu_grid  # noqa: E402  (the mains and the load: needs the RTC's world clock)
import machine  # noqa: E402,F401  (imports the ADC model on ADC boards)

if cfg["board"].get("frontend", {}).get("type") == "bl0942":
    import _emu_bl0942  # noqa: E402,F401  (before the ballast: its heap is the shims' share)
if cfg.get("modem_net") is not None and cfg["board"].get("uarts", {}).get("modem"):
    import _emu_modem  # noqa: E402  (the NB-IoT module on uarts.modem; before the ballast too)
else:
    _emu_modem = None

sys.modules["_asyncio"] = _emu_asyncio  # asyncio's scheduler must read the virtual clock (see _emu_asyncio)
# the port's own view of itself: sys.platform and os.uname() of the board's port, not the unix port's "linux"
import _emu_os  # noqa: E402
import _emu_sys  # noqa: E402

sys.modules["sys"] = _emu_sys
sys.modules["os"] = _emu_os


cfg_gated = _emu_gate.MODE is not None
SHIM_ROOM = 8192  # of the shims' spare share: kept for their own run-time work (_emu_bus.keep_spare)
MODEM_ROOM = 24576  # with the NB-IoT module's model: its lines and datagrams are run-time work too


_POOL_JUMP = 20000  # VM bytes: a qstr pool of 2,560 entries (11 B each) is 28 KB, the one before it 14 KB


def _qstr_pools():
    """MicroPython interns names in pools that double (20, 40, ... 1,280, 2,560 entries), each one piece of the heap,
    never freed. The shims' own names (about 900; on a board machine/time/select are C, their names in ROM) fill the
    firmware's first pools, so its names, about 2,000 even with every module loaded, went past the seventh pool's
    end (2,540 names): the emulator alone then needed an eighth pool, 28 KB in one piece, which a heap in pieces does
    not have (a DLMS read failed "allocating 2560 bytes"). Names are interned here until that pool exists, while
    the heap is whole. What it took is the firmware's: a board's firmware spends about the same (its pools up to the
    seventh: 2,540 entries of 6 B, twice that in VM bytes) on its own names; the filler names and the pools before
    it are the shims'. Returns the eighth pool's bytes. Should the shims' own names ever pass the seventh pool's end,
    the first jump would be the ninth pool (56 KB) charged to the firmware: the start fails then, naming it, as it
    does when no jump comes at all (a MicroPython whose pools grow otherwise), rather than run with a wrong share."""
    import gc

    gc.collect()
    for n in range(4000):
        before = gc.mem_alloc()
        hasattr(bus, "_q%d" % n)  # (interns the name)
        grew = gc.mem_alloc() - before
        if grew > 2 * _POOL_JUMP:
            raise RuntimeError("emulator: the shims' own names filled MicroPython's eighth qstr pool (the next took %d"
                               " B): the firmware's share of the heap would be wrong" % grew)
        if grew > _POOL_JUMP:
            return grew
    raise RuntimeError("emulator: no qstr pool of 2,560 names came in 4,000 names: the firmware's share of the heap"
                       " would be wrong")


_POOL = _qstr_pools()


def _ballast(extra):
    """The VM's heap is the board's plus `extra` for these shims (on a board, machine/time/select are C in flash).
    Whatever of `extra` the shims did not use is taken here, so the firmware sees the board's heap (less the qstr
    pool made for it above, as a board's firmware spends its heap on its own pools)."""
    import gc

    gc.collect()
    spare = extra - (gc.mem_alloc() - _POOL)
    bus.send({"t": "shim_heap", "used": gc.mem_alloc() - _POOL, "spare": spare, "qstr_pool": _POOL})
    room = min(max(spare, 0), SHIM_ROOM if _emu_modem is None else MODEM_ROOM)
    bus.keep_spare(room)  # the shims' run-time room (bus.py), out of their share
    spare -= room
    return bytearray(spare) if spare > 0 else None


_BALLAST = _ballast(cfg.get("heap_extra", 0))



def _on_query(msg):
    import gc

    # a collection only when the host asks for one (`ctl status`, the benches): the host's 1 s tick and a test's
    # polling come at host-timed moments, and a collection there changed where the firmware's objects landed (never
    # in a recorded or replayed run, whose GC must not move)
    if msg.get("collect") and not cfg_gated:
        gc.collect()
    t = time.gmtime(_emu_rtc.now_ns() // 1000000000)
    st = _emu_grid.status()
    if _emu_modem is not None:
        st["modem"] = _emu_modem.MODULE.status()
    if "_emu_optical" in sys.modules:
        st["optical"] = sys.modules["_emu_optical"].LINE.status()
    if msg.get("largest_free") and not cfg_gated:  # with the diagnosis: the app's modules on the heap now
        st["app_modules"] = [k for k in sys.modules if k.startswith("app.")]
    st.update({"t": "status", "id": msg["id"], "us": _emu_clock.now_us(), "skipped_us": _emu_clock.skipped_us(), "world_ns": _emu_rtc.world_ns(),
               "rtc": "%04d-%02d-%02dT%02d:%02d:%02dZ" % t[:6], "flash_ops": _emu_flash.ops(),
               "heap_free": gc.mem_free(), "heap_used": gc.mem_alloc(), "speed": _emu_clock.speed_name(),
               "shim_dropped": bus.dropped})
    if msg.get("largest_free") and not cfg_gated:  # (allocations: never in a recorded run, whose GC must not move)
        st["heap_largest_free"] = _largest_free()
    bus.send(st)


def _largest_free():
    """The largest bytearray the heap can give now, to 64 bytes: a bisection of allocations (each failure is a
    collection), freed at once."""
    lo, hi = 0, 1 << 22
    while hi - lo > 64:
        mid = (lo + hi) // 2
        try:
            b = bytearray(mid)
            b = None  # noqa: F841
            lo = mid
        except MemoryError:
            hi = mid
    return lo


bus.on("query", _on_query)
_geo = cfg["board"]["flash"]
_flash = _emu_flash.Flash(cfg["flash_path"], _geo["block_size"], _geo["block_count"])


def _install(src):
    """Format the flash and copy a host folder into it (first run of a fresh state dir)."""
    os.VfsLfs2.mkfs(_flash)
    os.mount(os.VfsLfs2(_flash, mtime=False), "/flash")
    os.mount(os.VfsPosix(src), "/src")
    n = _copy_tree("/src", "/flash")
    os.umount("/src")
    os.umount("/flash")
    bus.send({"t": "installed", "files": n})


def _copy_tree(src, dst):
    n = 0
    for ent in os.ilistdir(src):
        name, kind = ent[0], ent[1]
        s = src + "/" + name
        d = dst + "/" + name
        if kind == 0x4000:
            try:
                os.mkdir(d)
            except OSError:
                pass
            n += _copy_tree(s, d)
        else:
            with open(s, "rb") as fi, open(d, "wb") as fo:
                while True:
                    chunk = fi.read(4096)
                    if not chunk:
                        break
                    fo.write(chunk)
            n += 1
    return n


def _run(path):
    """What a port's pyexec does with boot.py and main.py: compile, turn Ctrl-C on, run, turn it off. An exception
    is printed and the next file runs; an interrupt still pending when the file ends is raised (and printed) when
    it ended normally, dropped when it ended with an exception (shared/runtime/pyexec.c)."""
    try:
        os.stat(path)
    except OSError:
        return
    g = {"__name__": "__main__", "__file__": path}
    try:
        with open(path) as f:
            code = compile(f.read(), path, "exec")
        micropython.kbd_intr(3)
        exec(code, g)
        micropython.kbd_intr(-1)
        _take_pending()
    except SystemExit:
        raise
    except BaseException as e:  # the board prints the traceback and carries on to the REPL
        micropython.kbd_intr(-1)
        try:
            _take_pending()
        except KeyboardInterrupt:
            pass
        sys.print_exception(e)


def _take_pending():
    for _ in (0, 1):  # a backward jump: the VM raises an interrupt that is still pending here
        pass


if cfg.get("cut_at"):
    _emu_flash.arm(cfg["cut_at"])

if cfg.get("install"):
    _install(cfg["install"])
    sys.exit(0)

# mtime=False: a board's port stamps files with its RTC, the unix port would stamp them with the host's clock (the
# same flash would then differ between two runs of one scenario); the firmware never reads modification times
try:
    os.mount(os.VfsLfs2(_flash, mtime=False), "/")
except OSError:
    # what the esp32 and rp2 ports do when the filesystem does not mount: format it
    print("emulator: filesystem corrupt, formatting")
    bus.send({"t": "formatted"})
    os.VfsLfs2.mkfs(_flash)
    os.mount(os.VfsLfs2(_flash, mtime=False), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]
bus.send({"t": "booting"})
sys, os = _emu_sys, _emu_os  # the REPL's namespace is this file's: there too they are the board's
_run("boot.py")
if not cfg.get("skip_main"):  # a soft reset from the raw REPL runs boot.py only
    _run("main.py")
del cfg
