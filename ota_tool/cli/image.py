"""Offline work on keys, images, envelopes and tokens: keygen, getpub, build, sign, verify, inspect, envelope,
token. Nothing here talks to a meter."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import bundle, image, keys
from ..errors import BadInput, BuildFailed, ImageRejected
from .options import Text, emit, json_option, read_input, write_output

IN_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)
OUT_FILE = click.Path(dir_okay=False, path_type=Path)


def _rejected(e: image.ImageError) -> ImageRejected:
    return ImageRejected(str(e), e.reason)


@click.command()
@click.option("--type", "key_type", type=click.Choice(["ed25519"]), default="ed25519", show_default=True)
@click.option("-o", "--output", required=True, type=OUT_FILE)
@click.option("--passphrase-env", metavar="VAR", help="Encrypt the key with the passphrase in this variable.")
@json_option
def keygen(key_type: str, output: Path, passphrase_env: str | None, as_json: bool) -> None:
    """Generate a private key (PKCS#8 PEM; refuses to overwrite)."""
    keys.generate(output, keys.passphrase_from_env(passphrase_env))
    emit({"output": str(output)}, f"wrote {output}")


@click.command()
@click.argument("key", type=IN_FILE)
@click.option("--format", "fmt", type=click.Choice(["pem", "raw", "keyhash"]), default="pem", show_default=True,
              help="pem: SubjectPublicKeyInfo PEM; raw: 32 bytes as hex; keyhash: MCUboot KEYHASH as hex.")
@click.option("--passphrase-env", metavar="VAR")
@json_option
def getpub(key: Path, fmt: str, passphrase_env: str | None, as_json: bool) -> None:
    """Print the public half of KEY."""
    pub = keys.load_public(key, keys.passphrase_from_env(passphrase_env))
    shown = {"pem": lambda: keys.pem(pub).decode().rstrip(), "raw": lambda: keys.raw(pub).hex(),
             "keyhash": lambda: keys.keyhash(pub).hex()}[fmt]()
    emit({"format": fmt, "key": shown}, shown)


@click.command()
@click.argument("firmware_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--board", required=True, help="Board id (decides the mpy-cross architecture).")
@click.option("--version", "version", required=True, help="MAJOR.MINOR.REVISION[+BUILD]")
@click.option("--security-counter", type=click.IntRange(0, 0xFFFFFFFF), default=0, show_default=True)
@click.option("-o", "--output", required=True, type=OUT_FILE)
@click.option("--key", type=IN_FILE, help="Sign too: OUTPUT is then an image.")
@click.option("--passphrase-env", metavar="VAR")
@click.option("--kind", type=click.Choice(["app", "loader"]), default="app", show_default=True,
              help="app: FIRMWARE_DIR/app into an app slot; loader: FIRMWARE_DIR/loader and lib into a loader folder.")
@click.option("--line-numbers", is_flag=True,
              help="Keep source line numbers in the bytecode, for tracebacks while debugging (the default leaves "
                   "them out: about 2.5 KB more free heap on an ESP32 with its network up).")
@json_option
def build(firmware_dir: Path, board: str, version: str, security_counter: int, output: Path, key: Path | None,
          passphrase_env: str | None, kind: str, line_numbers: bool, as_json: bool) -> None:
    """Compile FIRMWARE_DIR/app (or the loader, with --kind loader) with mpy-cross for the board and bundle it
    (deterministic)."""
    from meterkit.boards import BoardError

    try:
        image.Version.parse(version)
    except image.ImageError as e:
        raise click.BadParameter(str(e), param_hint="--version") from e
    if not output.parent.is_dir():
        raise BadInput(f"{output}: its folder {output.parent} does not exist")
    try:
        data = bundle.build(firmware_dir, board, version, security_counter, kind, line_numbers)
    except BoardError as e:
        raise BuildFailed(str(e)) from e
    if key is not None:
        data = _sign_bundle(data, key, passphrase_env)
    write_output(output, data)
    emit({"output": str(output), "size": len(data), "signed": key is not None},
         f"wrote {output} ({len(data)} bytes)")


def _sign_bundle(data: bytes, key: Path, passphrase_env: str | None) -> bytes:
    private = keys.load_private(key, keys.passphrase_from_env(passphrase_env))
    try:
        return image.sign(_prefix_of_bundle(data), private)
    except image.ImageError as e:
        raise _rejected(e) from e


def _prefix_of_bundle(data: bytes) -> bytes:
    try:
        m = bundle.unpack(data).manifest
        return image.unsigned_prefix(data, image.Version.parse(m["version"]), m["security_counter"], m["board"],
                                     m["loader_api"])
    except image.ImageError as e:
        raise _rejected(e) from e
    except (KeyError, TypeError) as e:
        raise BadInput(f"not a bundle from `ota build` (its manifest lacks {e})") from e


@click.command()
@click.argument("bundle_file", type=IN_FILE)
@click.option("--key", type=IN_FILE, help="Image-role private key.")
@click.option("--passphrase-env", metavar="VAR")
@click.option("--export-digest", type=OUT_FILE,
              help="External signing, step 1: write the 32-byte SHA-256 an HSM must sign (Ed25519).")
@click.option("--signature", type=IN_FILE, help="External signing, step 2: the 64-byte signature; needs --pubkey.")
@click.option("--pubkey", type=IN_FILE)
@click.option("-o", "--output", type=OUT_FILE)
@json_option
def sign(bundle_file: Path, key: Path | None, passphrase_env: str | None, export_digest: Path | None,
         signature: Path | None, pubkey: Path | None, output: Path | None, as_json: bool) -> None:
    """Turn a bundle into a signed MCUboot image (in process, or with an external signer)."""
    pub = keys.load_public(pubkey) if pubkey is not None else None
    prefix = _prefix_of_bundle(read_input(bundle_file, "bundle"))
    if export_digest is not None:
        write_output(export_digest, image.digest(prefix))
        emit({"digest": str(export_digest)}, f"wrote the digest to sign to {export_digest}")
        return
    if output is None:
        raise click.UsageError("-o/--output is required")
    if signature is not None:
        if pub is None:
            raise click.UsageError("--signature needs --pubkey")
        try:
            img = image.attach_signature(prefix, pub, read_input(signature, "signature"))
        except image.ImageError as e:
            raise _rejected(e) from e
    elif key is not None:
        private = keys.load_private(key, keys.passphrase_from_env(passphrase_env))
        img = image.sign(prefix, private)
    else:
        raise click.UsageError("give --key, or --export-digest / --signature for an external signer")
    write_output(output, img)
    emit({"output": str(output), "size": len(img)}, f"wrote {output} ({len(img)} bytes)")


@click.command()
@click.argument("image_file", type=IN_FILE)
@click.option("--key", "key_files", multiple=True, required=True, type=IN_FILE,
              help="Trusted image-role public (or private) key; repeat for several.")
@click.option("--board", help="The meter's board id (default: the image's own).")
@click.option("--counter", type=click.IntRange(0, 0xFFFFFFFF), default=0, show_default=True,
              help="The meter's stored security counter.")
@click.option("--max-step", type=click.IntRange(0, 0xFFFFFFFF), default=None,
              help="How far above --counter an image's counter may be (default: the firmware's).")
@click.option("--loader-api", type=click.IntRange(0, 255), default=None,
              help="The meter loader's API version (default: the firmware's LOADER_API).")
@click.option("--locked", is_flag=True, help="Judge as a locked meter (development keys refused).")
@json_option
def verify(image_file: Path, key_files: tuple[Path, ...], board: str | None, counter: int, max_step: int | None,
           loader_api: int | None, locked: bool, as_json: bool) -> None:
    """Apply the meter's own acceptance policy (the firmware's code) to IMAGE_FILE; exit 8-13 naming the reason."""
    from meterkit.boards import BoardError, load_board

    from .. import device_policy

    dev = device_policy.modules()
    policy = dev.image
    step = dev.max_counter_step if max_step is None else max_step
    dev_raw = {keys.raw(keys.load_public(p)) for p in sorted((keys.DEV_KEYS_DIR).glob("*.pub.pem"))}
    trust = []
    for kf in key_files:
        raw = keys.raw(keys.load_public(kf))
        trust.append({"key": raw, "roles": ["image"], "dev": raw in dev_raw})
    data = read_input(image_file, "image")
    try:
        pre = image.parse(data)
    except image.ImageError as e:
        raise _rejected(e) from e
    board_id = board or (pre.first(image.Tlv.BOARD, "protected") or b"").decode("ascii", "replace")
    try:
        budget = dev.slot_budget(load_board(board_id))
    except BoardError as e:
        raise ImageRejected(f"wrong-board: {e}", "wrong-board") from e
    try:
        with image_file.open("rb") as f:
            info = policy.read(f, len(data), budget)
            if loader_api is None:
                from meterkit import layout

                loader_api = layout.loader_api()
            policy.accept(info, trust, board_id, loader_api, counter, step, not locked)
            dev.bundle.check(f, info, budget)
    except (policy.Rejected, dev.bundle.BundleError) as e:
        raise ImageRejected(f"rejected: {e}", e.reason) from e
    emit({"accepted": True, "version": info["version"], "board": board_id, "counter": info["counter"],
          "loader_api": info["loader_api"], "sha256": info["digest"].hex()},
         f"accepted: {image_file} version {info['version']} for {board_id}, counter {info['counter']}")


@click.command()
@click.argument("image_file", type=IN_FILE)
@json_option
def inspect(image_file: Path, as_json: bool) -> None:
    """Show an image's header, version, counter, board, signer, TLVs, files and sizes (structure only; see verify)."""
    data = read_input(image_file, "image")
    try:
        img = image.parse(data)
    except image.ImageError as e:
        raise _rejected(e) from e
    names = {t.value: t.name for t in image.Tlv}

    def tlvs(lst):
        return [{"type": names.get(k, hex(k)), "len": len(v), "value": v.hex()} for k, v in lst]

    header = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in img.header.items()}
    out: dict = {"size": len(data), "version": str(img.version), "header": header,
                 "protected": tlvs(img.protected), "unprotected": tlvs(img.unprotected)}
    sc = img.first(image.Tlv.SEC_CNT, "protected")
    out["security_counter"] = int.from_bytes(sc, "little") if sc and len(sc) == 4 else None
    bd = img.first(image.Tlv.BOARD, "protected")
    out["board"] = bd.decode("ascii", "replace") if bd else None
    out["signer"] = _signer(img.first(image.Tlv.KEYHASH, "unprotected"))
    try:
        b = bundle.unpack(img.payload)
        out["files"] = [{"path": f["path"], "size": f["size"], "sha256": f["sha256"].hex()} for f in b.manifest["files"]]
        out["bundle"] = {"compressed": len(img.payload), "uncompressed": b.raw_size,
                         "ratio": round(b.raw_size / max(1, len(img.payload)), 2)}
    except Exception as e:  # a damaged payload is shown, not fatal: inspect is for looking at bad images too
        out["files"] = None
        out["bundle_error"] = str(e)

    def text() -> str:
        signer = out["signer"]
        lines = [f"image {image_file}: {out['size']} bytes, version {out['version']}, board {out['board']}, "
                 f"security counter {out['security_counter']}",
                 f"  signed by {signer['keyhash'][:16]}…" + (f" — the {signer['name']} DEVELOPMENT key: development "
                                                             "meters only, a locked meter refuses it"
                                                             if signer["development"] else "")
                 if signer else "  not signed"]
        for area in ("protected", "unprotected"):
            for t in out[area]:
                lines.append(f"  {area:11} {t['type']:10} {t['len']:4} B  {t['value'][:64]}")
        if out["files"] is not None:
            bd_ = out["bundle"]
            lines.append(f"  bundle: {bd_['compressed']} B deflated from {bd_['uncompressed']} B (x{bd_['ratio']})")
            lines += [f"    {f['size']:7}  {f['path']}" for f in out["files"]]
        else:
            lines.append(f"  bundle: {out['bundle_error']}")
        return "\n".join(lines)

    emit(out, text)


def _signer(kh: bytes | None) -> dict | None:
    """Who signed: the KEYHASH, and whether it is one of the repository's development keys."""
    if not kh:
        return None
    for p in sorted(keys.DEV_KEYS_DIR.glob("*.pub.pem")):
        if keys.keyhash(keys.load_public(p)) == kh:
            return {"keyhash": kh.hex(), "development": True, "name": p.name.removesuffix(".pub.pem")}
    return {"keyhash": kh.hex(), "development": False, "name": None}


def _json_arg(text: str, hint: str) -> dict:
    try:
        args = json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint=hint) from e
    if not isinstance(args, dict):
        raise click.BadParameter("must be a JSON object", param_hint=hint)
    return args


@click.command()
@click.option("--key", required=True, type=IN_FILE, help="Command-role private key.")
@click.option("--meter", required=True, type=Text(r"[0-9A-Za-z._-]{1,32}", "meter id"),
              help="The meter id the command is for (`ota info`).")
@click.option("--cmd", required=True, type=Text(r"[a-z0-9_]+(\.[a-z0-9_]+)+", "command name (group.name)"), help="Command name: supply.relay, supply.config, clock.set, meter.calendar, "
              "meter.calibrate, meter.bill, credit.emergency, credit.reset, image.state, image.erase, os.reset.")
@click.option("--args", "args_json", default="{}", help="Arguments as a JSON object, exactly as the command sends "
              "them (docs/trust-and-keys.md).")
@click.option("--expires-in", type=click.IntRange(60, 366 * 86400), default=3600, show_default=True,
              help="Seconds until the envelope expires.")
@click.option("--image", "image_file", type=IN_FILE,
              help="Add the image's hash to the arguments (for image.state: which upload to install).")
@click.option("--passphrase-env", metavar="VAR")
@click.option("-o", "--output", required=True, type=OUT_FILE)
@json_option
def envelope(key: Path, meter: str, cmd: str, args_json: str, expires_in: int, image_file: Path | None,
             passphrase_env: str | None, output: Path, as_json: bool) -> None:
    """Create a signed command envelope offline (for a head-end or a field laptop).

    \b
    Examples:
      ota envelope --key cmd.pem --meter ID --cmd supply.relay --args '{"action": "disconnect"}' -o off.cbor
      ota envelope --key cmd.pem --meter ID --cmd image.state --args '{"confirm": false}' --image app.img -o st.cbor
      ota envelope --key cmd.pem --meter ID --cmd os.reset -o reset.cbor
    Top-up tokens are made with `ota token`."""
    from meterkit import envelope as env

    args = _json_arg(args_json, "--args")
    if image_file is not None:
        try:
            parsed = image.parse(read_input(image_file, "image"))
        except image.ImageError as e:
            raise _rejected(e) from e
        args["hash"] = parsed.first(image.Tlv.SHA256, "unprotected")
    k = keys.load_private(key, keys.passphrase_from_env(passphrase_env))
    data = env.make(k, meter, cmd, args, expires_in=expires_in)
    write_output(output, data)
    body = env.read(data)
    emit({"output": str(output), **body}, lambda: json.dumps(body, default=_hex))


@click.command()
@click.option("--key", required=True, type=IN_FILE, help="Command-role private key.")
@click.option("--meter", required=True, type=Text(r"[0-9A-Za-z._-]{1,32}", "meter id"),
              help="The meter id the token is for (`ota info`).")
@click.option("--tid", required=True, type=click.IntRange(1, 2**31 - 1),
              help="Token id: the head-end numbers each meter's tokens.")
@click.option("--amount", required=True, type=click.IntRange(1, 100_000_000), help="Minor currency units (paise).")
@click.option("--expires-in", type=click.IntRange(60, 366 * 86400), default=30 * 86400, show_default=True,
              help="Seconds until the token expires.")
@click.option("--passphrase-env", metavar="VAR")
@click.option("-o", "--output", required=True, type=OUT_FILE)
@json_option
def token(key: Path, meter: str, tid: int, amount: int, expires_in: int, passphrase_env: str | None,
          output: Path, as_json: bool) -> None:
    """Create a signed top-up token offline (a vending point or the head-end); enter it with
    `ota meter topup --token FILE`. The meter accepts each id once, in any order within its last 64 ids."""
    from meterkit import envelope as env

    from ..supply import make_token

    k = keys.load_private(key, keys.passphrase_from_env(passphrase_env))
    data = make_token(k, meter, tid, amount, expires_in=expires_in)
    write_output(output, data)
    body = env.read(data)
    emit({"output": str(output), **body}, lambda: json.dumps(body, default=_hex))


def _hex(v):
    return v.hex() if isinstance(v, bytes) else str(v)


COMMANDS = [keygen, getpub, build, sign, verify, inspect, envelope, token]
