"""CPython stand-in for MicroPython's `cryptolib`, on the `cryptography` package: only what firmware/lib/gcm.py uses,
`aes(key, 1)` (mode 1 = ECB) and its `encrypt(in_buf)` / `encrypt(in_buf, out_buf)`, with the VM's checks (a key of
16 or 32 bytes, input a whole number of 16-byte blocks, an output buffer at least as long; in place is allowed).
Other modes and decrypt are left out: firmware that needs them must add them here first."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MODE_ECB = 1


class aes:  # noqa: N801 - MicroPython's name
    def __init__(self, key: bytes | bytearray | memoryview, mode: int, IV: object = None) -> None:  # noqa: N803
        if mode != MODE_ECB:
            raise ValueError("mode")
        key = bytes(key)
        if len(key) not in (16, 32):
            raise ValueError("key")
        self._enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()

    def encrypt(self, in_buf: bytes | bytearray | memoryview,
                out_buf: bytearray | memoryview | None = None) -> bytes | bytearray | memoryview:
        data = bytes(in_buf)
        if len(data) % 16:
            raise ValueError("blksize % 16")
        out = self._enc.update(data)
        if out_buf is None:
            return out
        if len(out_buf) < len(out):
            raise ValueError("output too small")
        out_buf[:len(out)] = out
        return out_buf
