"""The loader's update logic on CPython over a real littlefs (PyPI littlefs-python), with power cuts at any flash
operation: thousands of cut points per minute where the emulator restarts a VM for each. The firmware modules run
unchanged; only their `os` and `open` names are pointed at the littlefs volume (MicroPython's VfsLfs2 geometry),
whose block device follows NOR rules (erase to 0xFF, programming only clears bits) and can be cut before any program
or erase, optionally letting a prefix of that operation land (a torn write). After a cut the volume is mounted
again, exactly as a board would at power-up.

The update flow it drives is the one `ota push --test` makes: upload in chunks (resuming), verification after the
last chunk, a state write, reset, the loader's install and test boot, the app's confirm, reset."""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

from littlefs import LittleFS, LittleFSError, UserContext, lfs

from host_tests.flash_files import lfs_config

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "meterkit" / "mpy_compat", ROOT / "firmware" / "lib", ROOT / "firmware"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

if True:  # firmware modules, importable once the paths are set (and CPython given MicroPython's ticks)
    import mpy_port

    mpy_port.install()
    import loader.commands
    import loader.image
    import loader.mode
    from loader import early, image_group, install, journal, loaders, slots, staging, startup, store, update

FS_MODULES = (store, slots, update, install, staging, image_group, loader.image, loader.commands, loader.mode, early,
              startup, loaders)
LFS_DIR = 2  # littlefs-python's LFSStat.type for a directory


def unbind() -> None:
    """Give the firmware modules back the host's `os` and `open` (other tests in the process use them)."""
    import os as host_os

    for m in FS_MODULES:
        m.os = host_os
        m.__dict__.pop("open", None)


class PowerCut(BaseException):
    """The board lost power: nothing after this point ran (BaseException: firmware `except Exception` can't eat it)."""


class CutFlash(UserContext):
    """A NOR flash that counts program and erase operations and dies right before operation `cut_at`."""

    def __init__(self, size: int):
        super().__init__(buffsize=size)
        self.ops = 0
        self.cut_at: int | None = None
        self.torn = 0
        self.dead = False

    def _operation(self, start: int, data: bytes) -> bool:
        if self.dead:
            return False
        self.ops += 1
        if self.cut_at is not None and self.ops >= self.cut_at:
            if self.torn:
                n = min(self.torn, len(data))
                self._land(start, data[:n])
            self.dead = True
            return False
        self._land(start, data)
        return True

    def _land(self, start: int, data: bytes) -> None:
        old = self.buffer[start:start + len(data)]
        self.buffer[start:start + len(data)] = bytes(a & b for a, b in zip(old, data, strict=True))

    def prog(self, cfg, block: int, off: int, data: bytes) -> int:
        return 0 if self._operation(block * cfg.block_size + off, bytes(data)) else -5  # LFS_ERR_IO

    def erase(self, cfg, block: int) -> int:
        start = block * cfg.block_size
        if self.dead:
            return -5
        self.ops += 1
        if self.cut_at is not None and self.ops >= self.cut_at:
            if self.torn:  # an interrupted erase leaves part of the block erased
                n = min(self.torn, cfg.block_size)
                self.buffer[start:start + n] = b"\xff" * n
            self.dead = True
            return -5
        self.buffer[start:start + cfg.block_size] = b"\xff" * cfg.block_size
        return 0


class LfsFile:
    """A littlefs file through littlefs-python's low-level calls (its io wrappers close files when collected, which
    littlefs refuses after a cut), with the methods firmware uses; every call checks whether the power just went."""

    FLAGS = {"r": "rdonly", "w": "wronly|creat|trunc", "a": "wronly|creat|append", "+": "rdwr"}

    def __init__(self, vol: Volume, path: str, mode: str):
        flags = 0
        kind = "+" if "+" in mode else mode.replace("b", "")[:1]
        for name in self.FLAGS[kind].split("|"):
            flags |= lfs.LFSFileFlag[name]
        if kind == "+" and "w" in mode:
            flags |= lfs.LFSFileFlag.creat | lfs.LFSFileFlag.trunc
        self._vol = vol
        self._fs = vol.fs.fs
        self._fh = vol.call(lfs.file_open, self._fs, path, lfs.LFSFileFlag(flags))
        self._open = True
        self.text = "b" not in mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def read(self, n=-1):
        if n is None or n < 0:
            n = self._vol.call(lfs.file_size, self._fs, self._fh) - self._vol.call(lfs.file_tell, self._fs, self._fh)
        data = self._vol.call(lfs.file_read, self._fs, self._fh, max(n, 0))
        return data.decode() if self.text else data

    def readinto(self, buf):
        data = self._vol.call(lfs.file_read, self._fs, self._fh, len(buf))
        buf[:len(data)] = data
        return len(data)

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        return self._vol.call(lfs.file_write, self._fs, self._fh, bytes(data))

    def seek(self, off, whence=0):
        return self._vol.call(lfs.file_seek, self._fs, self._fh, off, whence)

    def tell(self):
        return self._vol.call(lfs.file_tell, self._fs, self._fh)

    def close(self):
        if self._open and not self._vol.flash.dead:
            self._open = False
            self._vol.call(lfs.file_close, self._fs, self._fh)


class Volume:
    """The mounted littlefs, as `os` and `open` for the firmware modules."""

    def __init__(self, flash: CutFlash, block_size: int, block_count: int, fresh: bool = False):
        self.flash = flash
        self.fs = LittleFS(context=flash, mount=False, **lfs_config(block_size, block_count))
        if fresh:
            self.fs.format()
        self.fs.mount()

    def call(self, fn, *args):
        try:
            return fn(*args)
        except LittleFSError as e:
            if self.flash.dead:
                raise PowerCut() from None
            raise OSError(-e.code if hasattr(e, "code") else 5, str(e)) from None
        except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError):
            if self.flash.dead:
                raise PowerCut() from None
            raise
        finally:
            if self.flash.dead:
                raise PowerCut()

    # -- the `os` functions firmware uses
    def stat(self, path):
        st = self.call(self.fs.stat, path)
        mode = 0x4000 if st.type == LFS_DIR else 0x8000
        return (mode, 0, 0, 0, 0, 0, st.size, 0, 0, 0)

    def remove(self, path):
        self.call(self.fs.remove, path)

    def rename(self, a, b):
        self.call(self.fs.rename, a, b)

    def mkdir(self, path):
        self.call(self.fs.mkdir, path)

    def rmdir(self, path):
        self.call(self.fs.rmdir, path)

    def ilistdir(self, path="."):
        for st in self.call(lambda: list(self.fs.scandir(path))):
            yield (st.name, 0x4000 if st.type == LFS_DIR else 0x8000, 0)

    def listdir(self, path="."):
        return [name for name, *_ in self.ilistdir(path)]

    def open(self, path, mode="r"):
        return LfsFile(self, path, mode)


class Ctx:
    """What the loader hands the app, reduced to what the image group and installer read."""

    def __init__(self, board: dict):
        self.board = board
        self.mode = loader.mode.DEVELOPMENT
        self.meter_id = "sweep"
        self.slot = None
        self.test_boot = False
        self.facts = None
        self.app_version = None
        self.refused = ""

        class _Server:
            after_reply = None

        self.server = _Server()


class Meter:
    """A provisioned meter's flash in littlefs, booted by the loader's own code."""

    def __init__(self, board: dict, firmware_dir: Path = ROOT / "firmware"):
        from meterkit import layout

        self.board = board
        geo = board["flash"]
        self.bs, self.bc = geo["block_size"], geo["block_count"]
        self.flash = CutFlash(self.bs * self.bc)
        self.vol = Volume(self.flash, self.bs, self.bc, fresh=True)
        self._bind()
        with tempfile.TemporaryDirectory() as tmp:
            layout.stage_meter(Path(tmp), board, firmware_dir, meter_id="sweep")
            self._copy_in(Path(tmp))
        self.formatted = 0
        self.boot()

    def _bind(self) -> None:
        for m in FS_MODULES:
            m.os = self.vol
            m.open = self.vol.open

    def _copy_in(self, src: Path) -> None:
        for p in sorted(src.rglob("*")):
            rel = p.relative_to(src).as_posix()
            if p.is_dir():
                self.vol.fs.mkdir(rel)
            else:
                with self.vol.open(rel, "wb") as f:
                    f.write(p.read_bytes())

    def snapshot(self) -> bytearray:
        return bytearray(self.flash.buffer)

    # -- power and boot
    def arm(self, cut_at: int | None, torn: int = 0) -> None:
        self.flash.cut_at = None if cut_at is None else self.flash.ops + cut_at
        self.flash.torn = torn

    def power_up(self) -> None:
        """Power returns: mount (a board formats a volume that does not mount) and run the loader's boot."""
        self.flash.dead = False
        self.flash.cut_at = None
        try:
            self.vol = Volume(self.flash, self.bs, self.bc)
        except LittleFSError:
            self.formatted += 1
            self.vol = Volume(self.flash, self.bs, self.bc, fresh=True)
        self._bind()
        self.boot()

    def boot(self) -> None:
        """What a board does at reset: stage 0 (boot.py's own code) picks and checks a loader folder, then the
        loader's early work and startup (install a pending update — a new loader restarts the board at once —, pick
        the slot, arm the test boot)."""
        import contextlib
        import io

        # a reset clears RAM: the loader's module state starts empty (no app's event sink attached by whatever ran
        # before in this process, such as the fuzz probes: its writes made the flash operations of a push vary)
        journal._sink[:] = []
        journal._pending[:] = []
        for _ in range(3):
            with contextlib.redirect_stdout(io.StringIO()):
                self.loader = self._stage0()
                if self.loader is None:
                    raise AssertionError("stage 0 found no valid loader folder")
                early.run()
                if update.pending() and (done := install.install(self.board)) is not None and done.loader:
                    continue  # startup.run resets here: stage 0 starts the new loader on its test boot
                name, manifest, test = startup.choose(self.board)
            break
        self.ctx = Ctx(self.board)
        self.ctx.slot = name
        self.ctx.facts = update.slots_facts(name, manifest) if name else None  # as startup
        self.ctx.loader_test = loaders.under_test()
        self.ctx.test_boot = test or self.ctx.loader_test
        self.ctx.app_version = manifest.get("version") if manifest else None
        with contextlib.redirect_stdout(io.StringIO()):
            self.group = image_group.ImageGroup(self.ctx)

    def _stage0(self) -> str | None:
        """Run boot.py's loader choice (its source, not a copy) against this volume."""
        import types

        src = (ROOT / "firmware" / "boot.py").read_text()
        ns: dict = {"__name__": "stage0"}
        # its definitions, up to where it runs the choice, inside its guarded block (closed here to compile)
        head = src[:src.index("\n    _d = _pick()")] + "\nexcept ImportError:\n    raise\n"
        exec(compile(head, "boot.py", "exec"), ns)
        ns["os"] = self.vol
        ns["open"] = self.vol.open
        saved = sys.modules.get("machine")
        sys.modules["machine"] = types.SimpleNamespace(WDT=lambda timeout: None)  # type: ignore[assignment]
        try:
            return ns["_pick"]()
        finally:
            if saved is None:
                del sys.modules["machine"]
            else:
                sys.modules["machine"] = saved

    def loader_version(self) -> str | None:
        """Independent of stage 0: the version of the folder it picked, after checking every file of it."""
        import json

        root = loaders.path(self.loader)
        m = json.loads(self._read(root + "/" + loaders.MANIFEST))
        for f in m["files"]:
            data = self._read(root + "/" + f["path"])
            if len(data) != f["size"] or hashlib.sha256(data).hexdigest() != f["sha256"]:
                raise AssertionError(f"loader folder {self.loader}: {f['path']} differs from its manifest")
        return m["version"]

    def reset(self) -> None:
        """A planned reset (no power loss): the loader boots again."""
        self.boot()

    # -- what ota push and the app do
    def upload(self, data: bytes, chunk: int = 1024) -> dict:
        import contextlib
        import io

        sha = hashlib.sha256(data).digest()
        g = self.group
        with contextlib.redirect_stdout(io.StringIO()):
            rsp = g.upload({"off": 0, "len": len(data), "sha": sha, "data": data[:chunk]})
            off = rsp["off"]
            while off < len(data):
                rsp = g.upload({"off": off, "data": data[off:off + chunk]})
                off = rsp["off"]
            if self.ctx.server.after_reply:
                fn, self.ctx.server.after_reply = self.ctx.server.after_reply, None
                fn()
        return g.update_status({})

    def push(self, data: bytes, permanent: bool = False) -> None:
        """`ota push --test` (or --confirm): upload, mark, reset; on a test boot the app confirms itself."""
        st = self.upload(data)
        if st["state"] != image_group.ST_ACCEPTED:
            raise AssertionError(f"upload not accepted: {st}")
        self.group.state_write({"hash": st["hash"], "confirm": permanent})
        self.reset()
        if self.ctx.test_boot:
            self.confirm()

    def confirm(self) -> None:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            update.confirm(self.ctx.slot)
        self.ctx.test_boot = False

    # -- what is on the flash
    def running(self) -> tuple[str | None, bool]:
        """(version the loader boots, whether it is confirmed)."""
        st = slots.read_state()
        return self.ctx.app_version, (self.ctx.slot == st.get("confirmed") and not self.ctx.test_boot)

    def counter(self) -> int:
        return staging.stored_counter()

    def check_slot(self) -> None:
        """An oracle independent of the loader: the booted slot's manifest parses (cbor2) and every file in the
        slot has exactly the size and SHA-256 the manifest lists, with nothing unlisted besides it."""
        import cbor2

        root = slots.path(self.ctx.slot)
        m = cbor2.loads(self._read(root + "/" + slots.MANIFEST))
        listed = {f["path"]: f for f in m["files"]}
        present = set()
        stack = [root]
        while stack:
            d = stack.pop()
            for st in self.vol.fs.scandir(d):
                p = d + "/" + st.name
                if st.type == LFS_DIR:
                    stack.append(p)
                else:
                    present.add(p[len(root) + 1:])
        extra = present - set(listed) - {slots.MANIFEST, slots.IMAGE_INFO}
        if extra or set(listed) - present:
            raise AssertionError(f"slot {self.ctx.slot}: unlisted {sorted(extra)}, missing "
                                 f"{sorted(set(listed) - present)}")
        for path, f in listed.items():
            data = self._read(root + "/" + path)
            if len(data) != f["size"] or hashlib.sha256(data).digest() != f["sha256"]:
                raise AssertionError(f"slot {self.ctx.slot}: {path} differs from its manifest (a mix)")

    def _read(self, path: str) -> bytes:
        with self.vol.open(path, "rb") as f:
            return f.read()


def build_image(board_id: str, version: str, counter: int, out_dir: Path, firmware_dir: Path = ROOT / "firmware",
                edit=None, kind: str = "app") -> bytes:
    """A signed image of the firmware's app (or its loader), development image key, as `ota build --key` makes
    it."""
    import subprocess

    fw = firmware_dir
    if edit is not None:
        fw = out_dir / f"fw-{version}"
        shutil.copytree(firmware_dir, fw)
        edit(fw / "app")
    out = out_dir / f"{kind}-{board_id}-{version}.img"
    key = ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem"
    p = subprocess.run([str(Path(sys.executable).parent / "ota"), "build", str(fw), "--board", board_id, "--version",
                        version, "--security-counter", str(counter), "--key", str(key), "-o", str(out),
                        "--kind", kind],
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return out.read_bytes()


def _fresh(board: dict, base: bytes) -> Meter:
    m = Meter.__new__(Meter)
    m.board = board
    m.bs, m.bc = board["flash"]["block_size"], board["flash"]["block_count"]
    m.flash = CutFlash(len(base))
    m.flash.buffer[:] = base
    m.formatted = 0
    m.vol = Volume(m.flash, m.bs, m.bc)
    m._bind()
    m.boot()
    return m


def _running(m: Meter, kind: str) -> tuple[str | None, bool]:
    """(version, confirmed) of what the push updates: the app in its slot, or the loader stage 0 picked."""
    if kind == "loader":
        return m.loader_version(), not loaders.under_test()
    m.check_slot()
    return m.running()


def sweep_point(board: dict, base: bytes, image: bytes, old: str, new: str, cut_at: int, torn: int,
                permanent: bool = False, kind: str = "app") -> dict:
    """From the provisioned flash `base`: push `image` (an app, or a loader with kind "loader"), cutting power right
    before flash operation `cut_at` of the push (counted from its start, boots included). Checks what a meter must
    guarantee after power returns — the volume mounts, a valid signed app (and loader) runs, old or new, never a
    mix — then reruns the push and checks it completes and survives one more reset. Returns what happened; raises
    AssertionError on a broken guarantee."""
    m = _fresh(board, base)
    m.arm(cut_at, torn)
    try:
        m.push(image, permanent)
        cut = False
    except PowerCut:
        cut = True
    m.power_up()
    after_cut, confirmed = _running(m, kind)
    problems = []
    if m.formatted:
        problems.append("the volume did not mount: formatted")
    if after_cut not in (old, new):
        problems.append(f"boots {after_cut!r}, neither {old} nor {new}")
    if after_cut == old and not confirmed:
        problems.append(f"the old {kind} {old} runs unconfirmed")
    m.check_slot()  # whatever was updated, the app that runs is whole
    m.push(image, permanent)  # the field engineer runs `ota push` again
    final, confirmed = _running(m, kind)
    if final != new or not confirmed:
        problems.append(f"rerun ends with {final!r} confirmed={confirmed}")
    m.reset()  # and it stays: a confirmed update is never reverted by a later reset
    if _running(m, kind) != (new, True):
        problems.append(f"after one more reset it runs {_running(m, kind)}")
    if m.counter() < 1:
        problems.append("security counter not raised")
    if problems:
        raise AssertionError(f"cut at op {cut_at} (torn {torn}): " + "; ".join(problems))
    return {"cut_at": cut_at, "torn": torn, "cut": cut, "after_cut": after_cut}


def total_ops(board: dict, base: bytes, image: bytes, permanent: bool = False) -> int:
    """Flash operations of one whole push (upload, verify, mark, reset, install, test boot, confirm)."""
    m = _fresh(board, base)
    start = m.flash.ops
    m.push(image, permanent)
    return m.flash.ops - start
