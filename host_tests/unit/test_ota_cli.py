"""`ota keygen/getpub/build/sign/inspect` as a user runs them, checked against imgtool and the MicroPython VM."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meterkit import layout
from ota_tool import bundle, image

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ota(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ota"), *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=env)


def imgtool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "imgtool"), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_keygen_getpub_and_keyhash_match_imgtool(tmp_path):
    k = tmp_path / "image-key.pem"
    assert ota("keygen", "-o", k).returncode == 0
    again = ota("keygen", "-o", k)
    assert again.returncode == 6 and "refusing to overwrite" in again.stderr
    ours = ota("getpub", k, "--format", "keyhash").stdout.strip()
    theirs = imgtool("getpubhash", "-k", k).stdout
    assert bytes.fromhex(ours) == bytes(int(b, 16) for b in theirs.split("{")[1].split("}")[0].replace(",", " ").split())
    assert len(ota("getpub", k, "--format", "raw").stdout.strip()) == 64
    assert "BEGIN PUBLIC KEY" in ota("getpub", k).stdout


def test_encrypted_key_needs_its_passphrase(tmp_path):
    k = tmp_path / "k.pem"
    env = dict(os.environ, KEYPASS="correct horse")
    assert ota("keygen", "-o", k, "--passphrase-env", "KEYPASS", env=env).returncode == 0
    assert b"ENCRYPTED" in k.read_bytes()
    p = ota("getpub", k)
    assert p.returncode == 6 and "encrypted" in p.stderr
    assert ota("getpub", k, "--passphrase-env", "KEYPASS", env=env).returncode == 0
    bad = ota("getpub", k, "--passphrase-env", "KEYPASS", env=dict(os.environ, KEYPASS="wrong"))
    assert bad.returncode == 6 and "wrong passphrase" in bad.stderr


@pytest.mark.parametrize("board,arch", [("esp32_devkitc", "xtensawin"), ("rpi_pico", "armv6m")])
def test_build_is_deterministic_and_signs_to_an_image_imgtool_accepts(tmp_path, board, arch):
    k = tmp_path / "k.pem"
    ota("keygen", "-o", k)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    for out in (a, b):
        p = ota("build", ROOT / "firmware", "--board", board, "--version", "1.4.0+7", "--security-counter", 5, "-o", out)
        assert p.returncode == 0, p.stderr
    assert a.read_bytes() == b.read_bytes()
    bnd = bundle.unpack(a.read_bytes())
    assert bnd.manifest["board"] == board and bnd.manifest["security_counter"] == 5
    assert all(p.endswith(".mpy") for p, _ in bnd.files)
    assert all(data[0] == ord("M") for _, data in bnd.files)  # mpy header
    img = tmp_path / "app.img"
    assert ota("sign", a, "--key", k, "-o", img).returncode == 0
    v = imgtool("verify", "-k", k, img)
    assert v.returncode == 0 and "1.4.0+7" in v.stdout, v.stdout + v.stderr
    one = tmp_path / "one.img"
    assert ota("build", ROOT / "firmware", "--board", board, "--version", "1.4.0+7", "--security-counter", 5,
               "--key", k, "-o", one).returncode == 0
    assert one.read_bytes() == img.read_bytes()
    info = json.loads(ota("inspect", img, "--json").stdout)
    assert info["board"] == board and info["security_counter"] == 5 and info["version"] == "1.4.0+7"
    assert {f["path"] for f in info["files"]} >= {"app/main.mpy", "app/__init__.mpy"}


def test_external_signing_flow(tmp_path):
    k = tmp_path / "hsm.pem"
    ota("keygen", "-o", k)
    pub = tmp_path / "hsm.pub"
    pub.write_text(ota("getpub", k).stdout)
    app = tmp_path / "app.bin"
    ota("build", ROOT / "firmware", "--board", "rpi_pico", "--version", "2.0.0", "-o", app)
    dig = tmp_path / "digest.bin"
    assert ota("sign", app, "--export-digest", dig).returncode == 0 and len(dig.read_bytes()) == 32
    from cryptography.hazmat.primitives import serialization

    hsm = serialization.load_pem_private_key(k.read_bytes(), None)
    sig = tmp_path / "sig.bin"
    sig.write_bytes(hsm.sign(dig.read_bytes()))
    img = tmp_path / "ext.img"
    assert ota("sign", app, "--signature", sig, "--pubkey", pub, "-o", img).returncode == 0
    direct = tmp_path / "direct.img"
    ota("sign", app, "--key", k, "-o", direct)
    assert img.read_bytes() == direct.read_bytes()
    sig.write_bytes(bytes(64))
    p = ota("sign", app, "--signature", sig, "--pubkey", pub, "-o", tmp_path / "x.img")
    assert p.returncode == 10 and "bad-signature" in p.stderr


def test_inspect_names_what_is_wrong(tmp_path):
    f = tmp_path / "junk.img"
    f.write_bytes(b"\x00" * 100)
    p = ota("inspect", f)
    assert p.returncode == 8 and "bad-magic" in p.stderr


def test_built_mpy_files_import_in_the_vm(tmp_path):
    """The bytecode mpy-cross made for the boards loads on the VM: the app package imports from a bundle."""
    app = tmp_path / "app.bin"
    ota("build", ROOT / "firmware", "--board", "esp32_devkitc", "--version", "1.0.0", "-o", app)
    for path, data in bundle.unpack(app.read_bytes()).files:
        (tmp_path / "slot" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "slot" / path).write_bytes(data)
    p = subprocess.run([str(BIN / "micropython"), "-c", "import app; print(app.VERSION, app.LOADER_API)"],
                       capture_output=True, text=True, env=dict(os.environ, MICROPYPATH=str(tmp_path / "slot")),
                       timeout=30)
    assert p.returncode == 0 and p.stdout.split() == ["0.1.0", str(layout.loader_api())], p.stdout + p.stderr
    assert image.Version.parse("1.0.0").build == 0


DEV_IMAGE_KEY = ROOT / "keys" / "dev" / "image-DEVELOPMENT-ONLY-ed25519.pem"


def test_verify_applies_the_device_policy_with_reasons(tmp_path):
    img = tmp_path / "app.img"
    assert ota("build", ROOT / "firmware", "--board", "rpi_pico", "--version", "1.0.0", "--security-counter", 3,
               "--key", DEV_IMAGE_KEY, "-o", img).returncode == 0
    ok = ota("verify", img, "--key", DEV_IMAGE_KEY, "--counter", 3, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["accepted"] is True
    cases = [  # each reason with its documented exit code
        (["--counter", 4], "counter-too-low", 12),
        (["--counter", 0, "--max-step", 2], "counter-step", 12),
        (["--board", "esp32_devkitc"], "wrong-board", 11),
        (["--loader-api", layout.loader_api() + 1], "loader-api", 11),
        (["--locked"], "development-key-refused", 10),
    ]
    for extra, reason, code in cases:
        p = ota("verify", img, "--key", DEV_IMAGE_KEY, "--counter", 3, *extra, "--json")
        assert p.returncode == code and json.loads(p.stdout)["reason"] == reason, (extra, p.stdout, p.stderr)
    other = tmp_path / "other.pem"
    ota("keygen", "-o", other)
    p = ota("verify", img, "--key", other, "--counter", 3)
    assert p.returncode == 10 and "unknown-key" in p.stderr
    bad = bytearray(img.read_bytes())
    bad[100] ^= 1
    img.write_bytes(bytes(bad))
    p = ota("verify", img, "--key", DEV_IMAGE_KEY, "--counter", 3)
    assert p.returncode == 8 and "hash-mismatch" in p.stderr


def test_imgtool_signed_bundle_passes_ota_verify(tmp_path):
    """The other direction of interop: an image imgtool signed (documented command in docs/image-format.md)."""
    app = tmp_path / "app.bin"
    ota("build", ROOT / "firmware", "--board", "esp32_devkitc", "--version", "2.1.0", "--security-counter", 9, "-o", app)
    img = tmp_path / "imgtool.img"
    p = imgtool("sign", "-k", DEV_IMAGE_KEY, "--header-size", 32, "--pad-header", "--align", 4, "--version", "2.1.0",
                "--slot-size", 0x100000, "--security-counter", 9, "--custom-tlv", "0xa0", "esp32_devkitc",
                "--custom-tlv", "0xa1", "0x0200", app, img)
    assert p.returncode == 0, p.stderr
    v = ota("verify", img, "--key", DEV_IMAGE_KEY, "--counter", 9)
    assert v.returncode == 0, v.stderr


def test_trust_create_show_and_envelope(tmp_path):
    dev = ROOT / "keys" / "dev"
    img_key = tmp_path / "img.pem"
    ota("keygen", "-o", img_key)
    store = tmp_path / "trust.cbor"
    p = ota("trust", "create", "--root", dev / "root-DEVELOPMENT-ONLY-ed25519.pem",
            "--add", f"{dev / 'root-DEVELOPMENT-ONLY-ed25519.pub.pem'}:root", "--add", f"{img_key}:image",
            "--counter", 4, "-o", store)
    assert p.returncode == 0, p.stderr
    body = json.loads(ota("trust", "show", store).stdout)
    assert body["counter"] == 4 and [k["roles"] for k in body["keys"]] == [["root"], ["image"]]
    assert body["keys"][0]["dev"] is True and body["keys"][1]["dev"] is False
    p = ota("trust", "create", "--root", dev / "root-DEVELOPMENT-ONLY-ed25519.pem", "--add", f"{img_key}:image",
            "--counter", 5, "-o", tmp_path / "x.cbor")
    assert p.returncode == 2 and "root key must be in the store" in p.stderr
    p = ota("trust", "create", "--root", dev / "root-DEVELOPMENT-ONLY-ed25519.pem", "--add", f"{img_key}:admin",
            "--counter", 5, "-o", tmp_path / "x.cbor")
    assert p.returncode == 2 and "unknown role" in p.stderr
    env = tmp_path / "env.cbor"
    p = ota("envelope", "--key", dev / "command-DEVELOPMENT-ONLY-ed25519.pem", "--meter", "m-9", "--cmd",
            "supply.relay", "--args", '{"action": "disconnect"}', "-o", env)
    assert p.returncode == 0 and json.loads(p.stdout)["meter"] == "m-9"
    assert ota("envelope", "--key", img_key, "--meter", "m", "--cmd", "x.y", "--args", "[1]", "-o", env).returncode == 2
    p = ota("envelope", "--key", img_key, "--meter", "m", "--cmd", "relay", "-o", env)
    assert p.returncode == 2 and "not a command name" in p.stderr


def test_envelope_for_an_image_names_its_hash(tmp_path):
    import cbor2

    img = tmp_path / "app.img"
    assert ota("build", ROOT / "firmware", "--board", "rpi_pico", "--version", "1.0.0", "--key", DEV_IMAGE_KEY,
               "-o", img).returncode == 0
    out = tmp_path / "env.cbor"
    key = ROOT / "keys" / "dev" / "command-DEVELOPMENT-ONLY-ed25519.pem"
    p = ota("envelope", "--key", key, "--meter", "m-1", "--cmd", "image.state", "--args", '{"confirm": false}',
            "--image", img, "-o", out)
    assert p.returncode == 0, p.stderr
    body = cbor2.loads(cbor2.loads(out.read_bytes())["body"])
    raw = img.read_bytes()
    assert body["args"] == {"confirm": False, "hash": hashlib.sha256(raw[: -(4 + 36 * 2 + 68)]).digest()}
