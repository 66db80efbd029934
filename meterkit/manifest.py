"""The application manifest kept in each slot (format in docs/device-layout.md): CBOR map naming the board, the app
version, the loader API it needs, and every file with its size and SHA-256. The loader checks each file against it
before importing anything from the slot."""

from __future__ import annotations

import hashlib

import cbor2

FILENAME = "manifest.cbor"
FORMAT = 1


def build(files: list[tuple[str, bytes]], *, board: str, version: str, loader_api: int) -> bytes:
    entries = [{"path": path, "size": len(data), "sha256": hashlib.sha256(data).digest()}
               for path, data in sorted(files)]
    return cbor2.dumps({"format": FORMAT, "board": board, "version": version, "loader_api": loader_api,
                        "files": entries})


def parse(data: bytes) -> dict:
    m = cbor2.loads(data)
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError("not a version-1 manifest")
    return m
