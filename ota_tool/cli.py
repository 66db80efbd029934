"""ota: talk to meters over a serial port (issue-by-issue this grows keys, build, sign, verify, push)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from . import bundle, image, keys, meter_info
from .errors import DeviceTimeout, OtaError, rejection_exit
from .link import MeterLink, run

PORT_HELP = "Serial port of the meter: /dev/ttyUSB0, /dev/ttyACM0, or an emulator's STATE/console."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Field and firmware tool for meterkit meters.

    \b
    Exit codes: 0 ok, 1 other error, 2 usage, 3 no device (port missing or busy), 4 the meter did not answer
    in time, 5 the meter refused the request (its SMP error code is shown), 6 key problem, 7 build problem,
    8 image rejected (the reason is named), 9 not authorised (a locked meter needs a signed command: --key or
    --envelope), 10 image signature or signing key refused, 11 image for another board or loader, 12 downgrade
    (security counter too low or too far ahead), 13 no space (image larger than the slot), 14 the meter refused a
    supply command or top-up token (the reason is named).
    """
    # smpclient logs every retried timeout with the whole request; ota reports lost frames itself
    logging.getLogger("smpclient").setLevel(logging.CRITICAL)


def _port_options(f):
    f = click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for each answer.")(f)
    f = click.option("--baud", default=115200, show_default=True, help="Line rate.")(f)
    return click.option("--port", required=True, help=PORT_HELP)(f)


def _auth_options(f=None, *, key_help: str = "Command-role private key: signs what a locked meter asks to be signed.",
                  expires: bool = False):
    """--key/--passphrase-env/--envelope (and --expires-in for what --key signs); `@_auth_options` or with arguments."""

    def deco(f):
        if expires:
            f = click.option("--expires-in", default=3600, show_default=True,
                             help="Seconds (meter clock) until what --key signs expires.")(f)
        f = click.option("--envelope", "envelopes", multiple=True,
                         type=click.Path(dir_okay=False, exists=True, path_type=Path),
                         help="Pre-signed command envelope from the head-end (`ota envelope`); repeatable.")(f)
        f = click.option("--passphrase-env", metavar="VAR", help="Passphrase variable for --key.")(f)
        return click.option("--key", "command_key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                            help=key_help)(f)

    return deco(f) if f is not None else deco


def _authority(command_key: Path | None, passphrase_env: str | None, envelopes: tuple[Path, ...]):
    from .authority import Authority

    key = None
    if command_key is not None:
        key = _guard(lambda: keys.load_private(command_key, keys.passphrase_from_env(passphrase_env)))
    return Authority(key, envelopes)


def _guard(fn):
    try:
        return fn()
    except OtaError as e:
        click.echo(f"ota: {e}", err=True)
        sys.exit(e.exit_code)


@main.command()
@_port_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def info(port: str, baud: int, timeout: float, as_json: bool) -> None:
    """Show what the meter is: board, meter id, app version, MicroPython version, SMP buffer size."""

    async def go() -> dict:
        async with MeterLink(port, baud, timeout) as link:
            return await meter_info.read_info(link)

    data = _guard(lambda: run(go()))
    if as_json:
        click.echo(json.dumps(data))
    else:
        width = max(len(k) for k in data)
        for k, v in data.items():
            click.echo(f"{k:<{width}}  {v}")


@main.command()
@_port_options
@click.argument("text", default="hello")
def echo(port: str, baud: int, timeout: float, text: str) -> None:
    """Send TEXT to the meter's SMP echo and print what comes back (a link check)."""

    async def go() -> str:
        async with MeterLink(port, baud, timeout) as link:
            return await meter_info.echo(link, text)

    click.echo(_guard(lambda: run(go())))


class ImageRejected(OtaError):
    exit_code = 8

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.exit_code = rejection_exit(reason)


def _image_guard(fn):
    def call():
        try:
            return fn()
        except image.ImageError as e:
            raise ImageRejected(str(e), e.reason) from e

    return _guard(call)


@main.command()
@click.option("--type", "key_type", type=click.Choice(["ed25519"]), default="ed25519", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--passphrase-env", metavar="VAR", help="Encrypt the key with the passphrase in this variable.")
def keygen(key_type: str, output: Path, passphrase_env: str | None) -> None:
    """Generate a private key (PKCS#8 PEM; refuses to overwrite)."""
    _guard(lambda: keys.generate(output, keys.passphrase_from_env(passphrase_env)))
    click.echo(f"wrote {output}")


@main.command()
@click.argument("key", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["pem", "raw", "keyhash"]), default="pem", show_default=True,
              help="pem: SubjectPublicKeyInfo PEM; raw: 32 bytes as hex; keyhash: MCUboot KEYHASH as hex.")
@click.option("--passphrase-env", metavar="VAR")
def getpub(key: Path, fmt: str, passphrase_env: str | None) -> None:
    """Print the public half of KEY."""
    pub = _guard(lambda: keys.load_public(key, keys.passphrase_from_env(passphrase_env)))
    if fmt == "pem":
        click.echo(keys.pem(pub).decode().rstrip())
    elif fmt == "raw":
        click.echo(keys.raw(pub).hex())
    else:
        click.echo(keys.keyhash(pub).hex())


@main.command()
@click.argument("firmware_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--board", required=True, help="Board id (decides the mpy-cross architecture).")
@click.option("--version", "version", required=True, help="MAJOR.MINOR.REVISION[+BUILD]")
@click.option("--security-counter", type=click.IntRange(0, 0xFFFFFFFF), default=0, show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="Sign too: OUTPUT is then an image.")
@click.option("--passphrase-env", metavar="VAR")
@click.option("--kind", type=click.Choice(["app", "loader"]), default="app", show_default=True,
              help="app: FIRMWARE_DIR/app into an app slot; loader: FIRMWARE_DIR/loader and lib into a loader folder.")
def build(firmware_dir: Path, board: str, version: str, security_counter: int, output: Path, key: Path | None,
          passphrase_env: str | None, kind: str) -> None:
    """Compile FIRMWARE_DIR/app (or the loader, with --kind loader) with mpy-cross for the board and bundle it
    (deterministic)."""
    from meterkit.boards import BoardError

    def go() -> bytes:
        image.Version.parse(version)
        try:
            return bundle.build(firmware_dir, board, version, security_counter, kind)
        except BoardError as e:
            raise bundle.BuildError(str(e)) from e

    data = _image_guard(go)
    if key is not None:
        data = _image_guard(lambda: _sign_bundle(data, key, passphrase_env))
    output.write_bytes(data)
    click.echo(f"wrote {output} ({len(data)} bytes)")


def _sign_bundle(data: bytes, key: Path, passphrase_env: str | None) -> bytes:
    return image.sign(_prefix_of_bundle(data), keys.load_private(key, keys.passphrase_from_env(passphrase_env)))


def _prefix_of_bundle(data: bytes) -> bytes:
    m = bundle.unpack(data).manifest
    return image.unsigned_prefix(data, image.Version.parse(m["version"]), m["security_counter"], m["board"],
                                 m["loader_api"])


@main.command()
@click.argument("bundle_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), help="Image-role private key.")
@click.option("--passphrase-env", metavar="VAR")
@click.option("--export-digest", type=click.Path(dir_okay=False, path_type=Path),
              help="External signing, step 1: write the 32-byte SHA-256 an HSM must sign (Ed25519).")
@click.option("--signature", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="External signing, step 2: the 64-byte signature; needs --pubkey.")
@click.option("--pubkey", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def sign(bundle_file: Path, key: Path | None, passphrase_env: str | None, export_digest: Path | None,
         signature: Path | None, pubkey: Path | None, output: Path | None) -> None:
    """Turn a bundle into a signed MCUboot image (in process, or with an external signer)."""
    data = bundle_file.read_bytes()
    prefix = _image_guard(lambda: _prefix_of_bundle(data))
    if export_digest is not None:
        export_digest.write_bytes(image.digest(prefix))
        click.echo(f"wrote the digest to sign to {export_digest}")
        return
    if output is None:
        raise click.UsageError("-o/--output is required")
    if signature is not None:
        if pubkey is None:
            raise click.UsageError("--signature needs --pubkey")
        pub = _guard(lambda: keys.load_public(pubkey))
        img = _image_guard(lambda: image.attach_signature(prefix, pub, signature.read_bytes()))
    elif key is not None:
        img = _image_guard(lambda: image.sign(prefix, keys.load_private(key, keys.passphrase_from_env(passphrase_env))))
    else:
        raise click.UsageError("give --key, or --export-digest / --signature for an external signer")
    output.write_bytes(img)
    click.echo(f"wrote {output} ({len(img)} bytes)")


DEFAULT_MAX_STEP = 16  # how far above the meter's counter an image's counter may be (one bad image cannot lock out)


def slot_budget(board: dict) -> int:
    """Bytes an image may occupy: a quarter of the board's filesystem (two slots, staging, and the rest)."""
    return board["flash"]["block_size"] * board["flash"]["block_count"] // 4


@main.command()
@click.argument("image_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--key", "key_files", multiple=True, required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Trusted image-role public (or private) key; repeat for several.")
@click.option("--board", help="The meter's board id (default: the image's own).")
@click.option("--counter", default=0, show_default=True, help="The meter's stored security counter.")
@click.option("--max-step", default=DEFAULT_MAX_STEP, show_default=True)
@click.option("--loader-api", default=1, show_default=True, help="The meter loader's API version.")
@click.option("--locked", is_flag=True, help="Judge as a locked meter (development keys refused).")
@click.option("--json", "as_json", is_flag=True)
def verify(image_file: Path, key_files: tuple[Path, ...], board: str | None, counter: int, max_step: int,
           loader_api: int, locked: bool, as_json: bool) -> None:
    """Apply the meter's own acceptance policy (the firmware's code) to IMAGE_FILE; exit 8 naming the reason."""
    from meterkit.boards import load_board

    from . import device_policy

    dev = device_policy.modules()
    policy = dev.image
    dev_raw = {keys.raw(keys.load_public(p)) for p in sorted((keys.DEV_KEYS_DIR).glob("*.pub.pem"))}
    trust = []
    for kf in key_files:
        raw = keys.raw(_guard(lambda kf=kf: keys.load_public(kf)))
        trust.append({"key": raw, "roles": ["image"], "dev": raw in dev_raw})
    data = image_file.read_bytes()
    pre = _image_guard(lambda: image.parse(data))
    board_id = board or (pre.first(image.Tlv.BOARD, "protected") or b"").decode("ascii", "replace")
    budget = slot_budget(_guard(lambda: _board_or_fail(load_board, board_id)))
    try:
        with image_file.open("rb") as f:
            info = policy.read(f, len(data), budget)
            policy.accept(info, trust, board_id, loader_api, counter, max_step, not locked)
            dev.bundle.check(f, info, budget)
    except (policy.Rejected, dev.bundle.BundleError) as e:
        if as_json:
            click.echo(json.dumps({"accepted": False, "reason": e.reason, "detail": str(e)}))
        click.echo(f"ota: rejected: {e}", err=True)
        sys.exit(rejection_exit(e.reason))
    result = {"accepted": True, "version": info["version"], "board": board_id, "counter": info["counter"],
              "loader_api": info["loader_api"], "sha256": info["digest"].hex()}
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"accepted: {image_file} version {info['version']} for {board_id}, counter {info['counter']}")


def _board_or_fail(load_board, board_id: str) -> dict:
    from meterkit.boards import BoardError

    try:
        return load_board(board_id)
    except BoardError as e:
        raise ImageRejected(f"wrong-board: {e}", "wrong-board") from e


@main.command()
@click.argument("image_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def inspect(image_file: Path, as_json: bool) -> None:
    """Show an image's header, version, counter, board, TLVs, files and sizes (structure only; see verify)."""
    data = image_file.read_bytes()
    img = _image_guard(lambda: image.parse(data))
    names = {t.value: t.name for t in image.Tlv}

    def tlvs(lst):
        return [{"type": names.get(k, hex(k)), "len": len(v), "value": v.hex()} for k, v in lst]

    header = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in img.header.items()}
    out = {"size": len(data), "version": str(img.version), "header": header,
           "protected": tlvs(img.protected), "unprotected": tlvs(img.unprotected)}
    sc = img.first(image.Tlv.SEC_CNT, "protected")
    out["security_counter"] = int.from_bytes(sc, "little") if sc and len(sc) == 4 else None
    bd = img.first(image.Tlv.BOARD, "protected")
    out["board"] = bd.decode("ascii", "replace") if bd else None
    try:
        b = bundle.unpack(img.payload)
        out["files"] = [{"path": f["path"], "size": f["size"], "sha256": f["sha256"].hex()} for f in b.manifest["files"]]
        out["bundle"] = {"compressed": len(img.payload), "uncompressed": b.raw_size,
                         "ratio": round(b.raw_size / max(1, len(img.payload)), 2)}
    except OtaError as e:
        out["files"] = None
        out["bundle_error"] = str(e)
    if as_json:
        click.echo(json.dumps(out, indent=1))
        return
    click.echo(f"image {image_file}: {out['size']} bytes, version {out['version']}, board {out['board']}, "
               f"security counter {out['security_counter']}")
    for area in ("protected", "unprotected"):
        for t in out[area]:
            click.echo(f"  {area:11} {t['type']:10} {t['len']:4} B  {t['value'][:64]}")
    if out["files"] is not None:
        bd_ = out["bundle"]
        click.echo(f"  bundle: {bd_['compressed']} B deflated from {bd_['uncompressed']} B (x{bd_['ratio']})")
        for f in out["files"]:
            click.echo(f"    {f['size']:7}  {f['path']}")


@main.command()
@click.argument("image_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_port_options
@click.option("--no-local-check", is_flag=True, help="Send even an image the local structure check refuses.")
@click.option("--test", "mode_", flag_value="test", help="Then install it as a test boot (the app confirms itself "
              "after its self-test; a test boot that fails or is not confirmed reverts).")
@click.option("--confirm", "mode_", flag_value="confirm", help="Then install it for good (no test boot).")
@click.option("--reset-wait", default=60.0, show_default=True, metavar="SECONDS",
              help="How long the meter may take to come back from its reset (the loader installs first); raise it "
                   "on a slow or noisy link.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout, no progress bar.")
@_auth_options
def push(image_file: Path, port: str, baud: int, timeout: float, no_local_check: bool, mode_: str | None,
         reset_wait: float, as_json: bool, command_key: Path | None, passphrase_env: str | None,
         envelopes: tuple[Path, ...]) -> None:
    """Upload a signed image to the meter and report its verdict; with --test or --confirm, install it and report
    what the meter runs afterwards.

    \b
    Exit codes as for every command; 8-13 when the meter (or the local check) rejects the image, naming the
    reason. A locked meter installs only with a signed command: give --key (command role) or --envelope files for
    image.state and os.reset. Rerunning after an interruption resumes the upload where it stopped.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    from . import push as pushing

    data = image_file.read_bytes()
    if not no_local_check:
        try:
            parsed = image.parse(data)
            image.check_hash(data, parsed)
            bundle.unpack(parsed.payload)
        except (image.ImageError, OtaError) as e:
            click.echo(f"ota: rejected by the local check (send anyway with --no-local-check): {e}", err=True)
            sys.exit(rejection_exit(getattr(e, "reason", "")))
    authority = _authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            before = await meter_info.app_version(link)
            if as_json:
                r = await pushing.push(link, data)
            else:
                with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), TimeRemainingColumn(), transient=False) as bar:
                    task = bar.add_task(image_file.name, total=len(data))
                    r = await pushing.push(link, data, lambda off, total: bar.update(task, completed=off))
            r.before = before
            booted = None
            if mode_ and r.image_hash:
                booted = await pushing.boot_number(link)
                await pushing.activate(link, r.image_hash, permanent=(mode_ == "confirm"), authority=authority)
        if mode_:
            r.after, r.slots = await _after_reset(port, baud, timeout, booted, wait=reset_wait)
        return r

    try:
        r = run(go())
    except pushing.UpdateRejected as e:
        if as_json:
            click.echo(json.dumps({"state": "rejected", "reason": e.reason, "exit": e.exit_code}))
        click.echo(f"ota: {e}", err=True)
        sys.exit(e.exit_code)
    except OtaError as e:
        if as_json:
            click.echo(json.dumps({"state": "error", "error": str(e), "exit": e.exit_code}))
        click.echo(f"ota: {e}", err=True)
        sys.exit(e.exit_code)
    report = {"uploaded": r.uploaded, "seconds": round(r.seconds, 3), "rate": round(r.rate), "state": r.state,
              "version": r.version, "before": r.before, "retries": r.retries}
    if mode_:
        report.update({"after": r.after, "slots": r.slots})
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"accepted by the meter: version {r.version}, {r.uploaded} bytes in {r.seconds:.1f} s "
                   f"({r.rate / 1000:.1f} kB/s" + (f", {r.retries} lost frames sent again)" if r.retries else ")"))
        if mode_:
            running = next((s_ for s_ in r.slots if s_["active"]), {})
            kind = "confirmed" if running.get("confirmed") else "test boot, not yet confirmed"
            click.echo(f"meter now runs {r.after} ({kind}); it ran {r.before} before")


async def _after_reset(port: str, baud: int, timeout: float, booted: int | None = None,
                       wait: float = 60.0) -> tuple[str, list[dict]]:
    """Reconnect after the meter's reset (the loader installs the update first) and read what it runs. `booted`:
    the boot number before the reset; until the meter reports a higher one it has not rebooted yet."""
    import asyncio
    import time as _time

    from . import push as pushing

    end = _time.monotonic() + wait
    await asyncio.sleep(0.2)
    while True:
        try:
            # short probes while the meter reboots (the loader installs first), then the normal timeout
            async with MeterLink(port, baud, min(timeout, 1.0)) as link:
                rebooted = booted is None or ((await pushing.boot_number(link)) or 0) > booted
                version = await meter_info.app_version(link) if rebooted else None
            if version is not None:
                async with MeterLink(port, baud, timeout) as link:
                    return version, await pushing.slots(link)
        except OtaError:
            pass
        if _time.monotonic() > end:
            raise DeviceTimeout(f"{port}: the meter did not come back from its reset within {wait:g} s")
        await asyncio.sleep(0.2)


@main.command()
@_port_options
@_auth_options
def confirm(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
            envelopes: tuple[Path, ...]) -> None:
    """Confirm the image the meter is test-booting (the app normally confirms itself after its self-test)."""
    from . import push as pushing

    authority = _authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            await pushing.confirm(link, authority)
            return await pushing.slots(link)

    rows = _guard(lambda: run(go()))
    running = next((r for r in rows if r["active"]), {})
    click.echo(f"running {running.get('version')}: " + ("confirmed" if running.get("confirmed") else "NOT confirmed"))


@main.command()
@_port_options
@_auth_options
def reset(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
          envelopes: tuple[Path, ...]) -> None:
    """Reset the meter (it saves its state first; a pending update is installed by the loader). A locked meter
    refuses unsigned resets in its first 30 s after boot (exit 5, busy)."""
    from . import push as pushing

    authority = _authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            await pushing.reset(link, authority)

    _guard(lambda: run(go()))
    click.echo("reset requested")


@main.command()
@_port_options
@_auth_options
def erase(port: str, baud: int, timeout: float, command_key: Path | None, passphrase_env: str | None,
          envelopes: tuple[Path, ...]) -> None:
    """Erase the meter's staged upload (slot 1); the running app is never erased."""
    from . import push as pushing

    authority = _authority(command_key, passphrase_env, envelopes)

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            await pushing.erase(link, authority)

    _guard(lambda: run(go()))
    click.echo("staged upload erased")


@main.command()
@_port_options
@click.option("--json", "as_json", is_flag=True)
def status(port: str, baud: int, timeout: float, as_json: bool) -> None:
    """Show the meter's image slots (SMP image state)."""
    from . import push as pushing

    async def go():
        async with MeterLink(port, baud, timeout) as link:
            return await pushing.slots(link)

    rows = _guard(lambda: run(go()))
    if as_json:
        click.echo(json.dumps(rows))
    else:
        for r in rows:
            flags = ",".join(k for k in ("active", "confirmed", "pending", "bootable") if r[k])
            click.echo(f"slot {r['slot']}: {r['version']:12} {flags:30} {r['hash']}")


@main.command()
@click.option("--port", required=True, help=PORT_HELP)
@click.option("--baud", default=115200, show_default=True, help="Line rate.")
@click.option("--board", "board_id", required=True, help="Board id from boards/ (what the meter is built on).")
@click.option("--lock", is_flag=True, help="Leave the meter locked: REPL and Ctrl-C off, signed commands only, "
              "development keys refused. Needs --trust.")
@click.option("--trust", "trust_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Trust store from `ota trust create` (default: the repository's development keys).")
@click.option("--meter-id", help="The meter's id (default: the MCU's unique id in hex).")
@click.option("--firmware", "firmware_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Firmware source folder (default: this kit's firmware/).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout, no progress bar.")
def provision(port: str, baud: int, board_id: str, lock: bool, trust_file: Path | None, meter_id: str | None,
              firmware_dir: Path | None, as_json: bool) -> None:
    """Put the loader, board file, trust store, meter id and a first app onto a board freshly flashed with
    MicroPython, through its REPL; then reset it and check the app runs. Rerun it if it was interrupted.

    \b
    Exit codes as for every command; 9 when the board's REPL is closed (a locked meter is never provisioned again),
    11 when the board runs MicroPython for another MCU.
    """
    from meterkit import layout
    from meterkit.boards import BoardError, load_board

    from . import provision as prov

    try:
        board = load_board(board_id)
    except BoardError as e:
        raise click.BadParameter(str(e), param_hint="--board") from e
    store = trust_file.read_bytes() if trust_file else None

    def go():
        if as_json:
            return prov.provision(port, board, baud=baud, lock=lock, store=store, meter_id=meter_id,
                                  firmware_dir=firmware_dir or layout.FIRMWARE_DIR)
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task("provision", total=None)
            return prov.provision(port, board, baud=baud, lock=lock, store=store, meter_id=meter_id,
                                  firmware_dir=firmware_dir or layout.FIRMWARE_DIR,
                                  progress=lambda n, total: bar.update(task, completed=n, total=total))

    r = _guard(go)
    r.app, _slots = _guard(lambda: run(_after_reset(port, baud, 5.0)))
    report = {"meter_id": r.meter_id, "board": r.board, "mode": r.mode, "files": r.files, "bytes": r.bytes,
              "seconds": round(r.seconds, 1), "app": r.app}
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"provisioned meter {r.meter_id} ({r.board}, {r.mode}): {r.files} files, {r.bytes} bytes in "
                   f"{r.seconds:.1f} s; it runs {r.app}")


@main.group()
def trust() -> None:
    """Meter trust stores: public keys by role, signed by a root key (docs/trust-and-keys.md)."""


@trust.command("create")
@click.option("--root", "root_key", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Root private key that signs the store (it must be listed with --add ...:root).")
@click.option("--add", "adds", multiple=True, required=True, metavar="KEY.pem:ROLE[,ROLE]",
              help="A public (or private) key and its roles: root, image, command. Repeat.")
@click.option("--counter", type=click.IntRange(0, 2**32 - 1), required=True,
              help="Must exceed the meter's current store counter.")
@click.option("--passphrase-env", metavar="VAR")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def trust_create(root_key: Path, adds: tuple[str, ...], counter: int, passphrase_env: str | None,
                 output: Path) -> None:
    """Write a signed trust store (to provision, rotate or revoke keys)."""
    from meterkit import trust as trust_store

    dev_raw = {keys.raw(keys.load_public(p)) for p in sorted(keys.DEV_KEYS_DIR.glob("*.pub.pem"))}
    entries = []
    for spec in adds:
        path, _, roles = spec.rpartition(":")
        if not path or not roles:
            raise click.BadParameter(f"{spec!r} is not KEY.pem:ROLE[,ROLE]", param_hint="--add")
        raw = keys.raw(_guard(lambda p=path: keys.load_public(Path(p))))
        entries.append({"key": raw, "roles": roles.split(","), "dev": raw in dev_raw, "name": Path(path).name})
    root = _guard(lambda: keys.load_private(root_key, keys.passphrase_from_env(passphrase_env)))
    try:
        data = trust_store.build(entries, counter, root)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    output.write_bytes(data)
    click.echo(f"wrote {output}: {len(entries)} keys, counter {counter}")


@trust.command("show")
@click.argument("store_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def trust_show(store_file: Path) -> None:
    """Print a trust store as JSON."""
    from meterkit import trust as trust_store

    body = trust_store.read(store_file.read_bytes())
    for k in body["keys"]:
        k["keyhash"] = trust_store.keyhash(k["key"]).hex()
        k["key"] = k["key"].hex()
    click.echo(json.dumps(body, indent=1))


@main.command()
@click.option("--key", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Command-role private key.")
@click.option("--meter", required=True, help="The meter id the command is for.")
@click.option("--cmd", required=True, help="Command name, e.g. relay, topup, clock.set.")
@click.option("--args", "args_json", default="{}", help="Arguments as a JSON object.")
@click.option("--expires-in", default=3600, show_default=True, help="Seconds until the envelope expires.")
@click.option("--image", "image_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Add the image's hash to the arguments (for image.state: which upload to install).")
@click.option("--passphrase-env", metavar="VAR")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def envelope(key: Path, meter: str, cmd: str, args_json: str, expires_in: int, image_file: Path | None,
             passphrase_env: str | None, output: Path) -> None:
    """Create a signed command envelope offline (for a head-end or a field laptop). For a locked meter's update:
    `--cmd image.state --args '{"confirm": false}' --image app.img` and `--cmd os.reset`."""
    from meterkit import envelope as env

    try:
        args = json.loads(args_json)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--args") from e
    if not isinstance(args, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--args")
    if image_file is not None:
        parsed = _image_guard(lambda: image.parse(image_file.read_bytes()))
        args["hash"] = parsed.first(image.Tlv.SHA256, "unprotected")
    k = _guard(lambda: keys.load_private(key, keys.passphrase_from_env(passphrase_env)))
    data = env.make(k, meter, cmd, args, expires_in=expires_in)
    output.write_bytes(data)
    click.echo(json.dumps(env.read(data), default=lambda v: v.hex() if isinstance(v, bytes) else str(v)))


@main.command()
@click.option("--key", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Command-role private key.")
@click.option("--meter", required=True, help="The meter id the token is for (`ota info`).")
@click.option("--tid", required=True, type=click.IntRange(1), help="Token id: the head-end numbers each meter's tokens.")
@click.option("--amount", required=True, type=click.IntRange(1, 100_000_000), help="Minor currency units (paise).")
@click.option("--expires-in", default=30 * 86400, show_default=True, help="Seconds until the token expires.")
@click.option("--passphrase-env", metavar="VAR")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def token(key: Path, meter: str, tid: int, amount: int, expires_in: int, passphrase_env: str | None,
          output: Path) -> None:
    """Create a signed top-up token offline (a vending point or the head-end); enter it with
    `ota meter topup --token FILE`. The meter accepts each id once, in any order within its last 64 ids."""
    from meterkit import envelope as env

    from .supply import make_token

    k = _guard(lambda: keys.load_private(key, keys.passphrase_from_env(passphrase_env)))
    data = make_token(k, meter, tid, amount, expires_in=expires_in)
    output.write_bytes(data)
    click.echo(json.dumps(env.read(data), default=lambda v: v.hex() if isinstance(v, bytes) else str(v)))


def _add_groups() -> None:
    from .cli_meter import meter

    main.add_command(meter)


_add_groups()

if __name__ == "__main__":
    main()
