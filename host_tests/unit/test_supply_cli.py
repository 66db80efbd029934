"""`ota token` (offline top-up tokens) and the refusals of the `ota meter` supply verbs that need no meter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cbor2

from meterkit import trust as trust_store
from ota_tool import keys

ROOT = Path(__file__).resolve().parents[2]
KEY = ROOT / "keys" / "dev" / "command-DEVELOPMENT-ONLY-ed25519.pem"
OTA = [sys.executable, "-m", "ota_tool.cli"]


def test_token_is_a_signed_topup_envelope_for_one_meter(tmp_path):
    out = tmp_path / "t.cbor"
    p = subprocess.run([*OTA, "token", "--key", KEY, "--meter", "abc123", "--tid", "7", "--amount", "50000",
                        "-o", out], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    shown = json.loads(p.stdout)
    assert shown["cmd"] == "credit.topup" and shown["args"] == {"tid": 7, "amount": 50000} and shown["meter"] == "abc123"
    outer = cbor2.loads(out.read_bytes())
    pub = keys.load_private(KEY).public_key()
    assert outer["signer"] == trust_store.keyhash(trust_store.raw_key(pub))
    pub.verify(outer["sig"], outer["body"])  # raises when the body was not what the key signed


def test_token_refuses_a_bad_amount_and_topup_needs_a_token_or_a_key():
    p = subprocess.run([*OTA, "token", "--key", KEY, "--meter", "m", "--tid", "1", "--amount", "0", "-o", "/dev/null"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and "amount" in p.stderr
    p = subprocess.run([*OTA, "meter", "topup", "--port", "/dev/null", "--amount", "100"], capture_output=True,
                       text=True, cwd=ROOT)
    assert p.returncode == 2 and "--token FILE, or --key KEY with --amount" in p.stderr
