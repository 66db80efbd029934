"""Provisioning a board freshly flashed with MicroPython: through its REPL (mpremote's raw-REPL transport) write the
tree meterkit.layout.stage_meter builds — loader and libraries as the board's bytecode, board file, trust store,
meter id, mode and a first app in slot a — then reset it and check that the loader runs the app. The emulator's
first power-up installs the very same staged tree. A library: progress goes to a callback, errors are OtaError.

Order matters for power cuts: everything else is written first and boot.py/main.py last, so a board cut off half-way
still boots plain MicroPython with its REPL open and can simply be provisioned again."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meterkit import layout, mpy
from meterkit import trust as trust_store

from .errors import BuildFailed, ImageRejected, NotAuthorised, OtaError

# what a MicroPython port reports as sys.platform, per board family (the emulator reports its board's, as a board
# does: emulator/device/_emu_sys.py)
PLATFORMS = {"esp32": "esp32", "rp2040": "rp2"}
OURS = ("boot.py", "main.py", "loader", "lib", "loaders", "meter", "slots")


class ProvisionError(OtaError):
    pass


class MeterLocked(NotAuthorised):
    pass


@dataclass
class Provisioned:
    meter_id: str
    board: str
    mode: str
    files: int
    bytes: int
    seconds: float
    app: str | None = None


def check_lockable(store: bytes) -> None:
    """A locked meter trusts no development key: its store must hold a non-development image and command key."""
    try:
        body = trust_store.read(store)
    except Exception as e:  # cbor2 raises several types for garbage
        raise ProvisionError(f"the trust store does not parse: {e}") from e
    roles = {r for k in body.get("keys", []) if not k.get("dev") for r in k.get("roles", [])}
    missing = [r for r in ("image", "command") if r not in roles]
    if missing:
        raise ProvisionError("a locked meter refuses development keys, and this trust store has no other "
                             f"{' or '.join(missing)} key (make one with `ota trust create`)")


class Repl:
    """The board's raw REPL over pyserial, via mpremote's transport."""

    def __init__(self, port: str, baud: int):
        from mpremote.transport_serial import SerialTransport

        try:
            # a read timeout: on a pty mpremote reads byte by byte, and a silent (locked) meter would block it
            self.t = SerialTransport(port, baudrate=baud, timeout=1)
        except Exception as e:  # mpremote raises TransportError for a missing or busy port
            from .errors import NoDevice

            raise NoDevice(f"cannot open {port}: {e}") from e
        import contextlib
        import io

        try:
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it read when it fails
                self.t.enter_raw_repl(soft_reset=False)
        except Exception as e:
            self.t.close()
            raise MeterLocked(f"no REPL on {port} ({e}): a locked meter keeps its REPL closed, so it cannot be "
                              "provisioned again; a board fresh from MicroPython or a development meter can") from e

    def eval(self, expr: str) -> object:
        return self.t.eval(expr)

    def exec(self, code: str) -> bytes:
        return self.t.exec(code)

    def close(self) -> None:
        try:
            self.t.exit_raw_repl()
        finally:
            self.t.close()


def _remove_tree(repl: Repl, name: str) -> None:
    repl.exec(
        "import os\n"
        "def _rm(p):\n"
        " try:\n"
        "  m=os.stat(p)[0]\n"
        " except OSError:\n"
        "  return\n"
        " if m&0x4000:\n"
        "  for e in os.ilistdir(p):\n"
        "   _rm(p+'/'+e[0])\n"
        "  os.rmdir(p)\n"
        " else:\n"
        "  os.remove(p)\n"
        f"_rm({name!r})\n")


def provision(port: str, board: dict, *, baud: int = 115200, lock: bool = False, store: bytes | None = None,
              meter_id: str | None = None, firmware_dir: Path = layout.FIRMWARE_DIR,
              progress: Callable[[int, int], None] | None = None) -> Provisioned:
    if lock:
        if store is None:
            raise ProvisionError("--lock needs --trust STORE: a locked meter refuses the development keys")
        check_lockable(store)
    t0 = time.monotonic()
    repl = Repl(port, baud)
    try:
        platform = repl.eval("__import__('sys').platform")
        want = PLATFORMS.get(board["mcu"]["family"])
        if want and platform != want:
            try:  # the port's own name for the module and MCU, e.g. "Raspberry Pi Pico with RP2040"
                machine = repl.eval("__import__('os').uname().machine")
            except Exception:  # a port without os.uname()
                machine = None
            what = f"{platform} ({machine})" if machine else str(platform)
            raise ImageRejected(f"wrong-board: the board on {port} runs MicroPython for another MCU: {what}, not "
                                f"{board['id']}'s {want} (check --board)", "wrong-board")
        if meter_id is None:
            meter_id = str(repl.eval("''.join('%02x'%b for b in __import__('machine').unique_id())"))
        mode = layout.MODE_LOCKED if lock else layout.MODE_DEVELOPMENT
        with tempfile.TemporaryDirectory(prefix="meterkit-provision-") as tmp:
            stage = Path(tmp)
            try:
                layout.stage_meter(stage, board, firmware_dir, meter_id=meter_id, mode=mode, trust_store=store)
            except (mpy.CompileError, layout.AppModulesInvalid) as e:
                raise BuildFailed(str(e)) from e
            files = sorted((p for p in stage.rglob("*") if p.is_file()),
                           key=lambda p: (p.parent == stage and p.name in layout.LOADER_FILES, p.as_posix()))
            dirs = sorted({p.parent.relative_to(stage).as_posix() for p in files} - {"."}, key=len)
            total = sum(p.stat().st_size for p in files)
            for name in OURS:  # boot.py first: from here until the end the board boots plain MicroPython
                _remove_tree(repl, name)
            for d in dirs:
                parts = d.split("/")
                for i in range(1, len(parts) + 1):
                    repl.exec(f"import os\ntry:\n os.mkdir({'/'.join(parts[:i])!r})\nexcept OSError:\n pass\n")
            done = 0
            for p in files:
                data = p.read_bytes()
                base = done
                repl.t.fs_writefile(p.relative_to(stage).as_posix(), data, chunk_size=512,
                                    progress_callback=(lambda n, _t, base=base: progress(base + n, total))
                                    if progress else None)
                done += len(data)
            repl.exec("import os\nos.sync() if hasattr(os,'sync') else None\n")
        repl.t.exec_raw_no_follow("import machine\nmachine.reset()")
    finally:
        try:
            repl.t.close()
        except Exception:  # the board is resetting: the port may already be gone
            pass
    return Provisioned(meter_id=meter_id, board=board["id"], mode=mode, files=len(files), bytes=total,
                       seconds=time.monotonic() - t0)
