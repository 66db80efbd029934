"""`ota trust create|show`: meter trust stores (docs/trust-and-keys.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import keys
from ..errors import BadInput
from .options import emit, json_option, read_input, write_output

IN_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)
ROLES = ("root", "image", "command")


@click.group()
def trust() -> None:
    """Meter trust stores: public keys by role, signed by a root key (docs/trust-and-keys.md)."""


@trust.command("create")
@click.option("--root", "root_key", required=True, type=IN_FILE,
              help="Root private key that signs the store (it must be listed with --add ...:root).")
@click.option("--add", "adds", multiple=True, required=True, metavar="KEY.pem:ROLE[,ROLE]",
              help="A public (or private) key and its roles: root, image, command. Repeat.")
@click.option("--counter", type=click.IntRange(0, 2**32 - 1), required=True,
              help="Must exceed the meter's current store counter.")
@click.option("--passphrase-env", metavar="VAR")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@json_option
def trust_create(root_key: Path, adds: tuple[str, ...], counter: int, passphrase_env: str | None,
                 output: Path, as_json: bool) -> None:
    """Write a signed trust store (to provision, rotate or revoke keys)."""
    from meterkit import trust as trust_store

    dev_raw = {keys.raw(keys.load_public(p)) for p in sorted(keys.DEV_KEYS_DIR.glob("*.pub.pem"))}
    entries = []
    for spec in adds:
        path, _, roles = spec.rpartition(":")
        if not path or not roles:
            raise click.BadParameter(f"{spec!r} is not KEY.pem:ROLE[,ROLE]", param_hint="--add")
        bad = [r for r in roles.split(",") if r not in ROLES]
        if bad:
            raise click.BadParameter(f"{spec!r}: unknown role {bad[0]!r} (roles: {', '.join(ROLES)})",
                                     param_hint="--add")
        raw = keys.raw(keys.load_public(Path(path)))
        entries.append({"key": raw, "roles": roles.split(","), "dev": raw in dev_raw, "name": Path(path).name})
    root = keys.load_private(root_key, keys.passphrase_from_env(passphrase_env))
    try:
        data = trust_store.build(entries, counter, root)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    write_output(output, data)
    emit({"output": str(output), "keys": len(entries), "counter": counter},
         f"wrote {output}: {len(entries)} keys, counter {counter}")


@trust.command("show")
@click.argument("store_file", type=IN_FILE)
@json_option
def trust_show(store_file: Path, as_json: bool) -> None:
    """Print a trust store as JSON (its signature is checked against its own root key)."""
    from meterkit import trust as trust_store

    data = read_input(store_file, "trust store")
    try:
        body = trust_store.read(data)
        for k in body["keys"]:
            k["keyhash"] = trust_store.keyhash(k["key"]).hex()
            k["key"] = k["key"].hex()
    except Exception as e:  # cbor2 and the store's own checks raise several types for a file that is not a store
        raise BadInput(f"{store_file}: not a trust store from `ota trust create` ({type(e).__name__}: {e})") from e
    emit(body, lambda: json.dumps(body, indent=1))


COMMANDS = [trust]
