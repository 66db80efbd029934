# The meter's trust store (meter/trust.cbor, outside the app slots): the public keys it trusts, by role. It is a
# CBOR map {body, signer, sig}: body is the canonical CBOR of {format, counter, keys: [{key, roles, dev, name}]},
# signed (Ed25519 over body) by a root-role key. An update must be signed by a root key of the *current* store that
# it keeps (every use checks a store against its own root keys) and carry a higher counter, so a leaked image or command key can be revoked and can never add keys. A missing or
# corrupt store trusts nothing (fail closed).
import cbor
import ed25519
from loader import store, strict
from loader.image import ROLE_ROOT, keyhash

PATH = "meter/trust.cbor"


class TrustError(Exception):
    pass


def parse(raw):
    """(body dict, signer keyhash, signature) from stored bytes; TrustError when malformed."""
    try:
        outer = cbor.loads(raw)
        body = cbor.loads(outer["body"])
        signer = outer["signer"]
        sig = outer["sig"]
    except (ValueError, KeyError, TypeError):
        raise TrustError("malformed") from None
    if not isinstance(body, dict) or not strict.is_int(body.get("format"), 1, 1) or \
            not isinstance(body.get("keys"), list):
        raise TrustError("format")
    if not strict.is_int(body.get("counter"), 0):  # never True: on CPython isinstance(True, int) holds, not on a board
        raise TrustError("counter")
    for k in body["keys"]:
        if (not isinstance(k, dict) or not isinstance(k.get("key"), bytes) or len(k["key"]) != 32
                or not isinstance(k.get("roles"), list)):
            raise TrustError("key entry")
    return body, outer["body"], signer, sig


def _root_key(keys, signer):
    for k in keys:
        if ROLE_ROOT in k["roles"] and keyhash(k["key"]) == signer:
            return k
    return None


def _root_signed(signed_by_keys, body_bytes, signer, sig):
    k = _root_key(signed_by_keys, signer)
    return k is not None and ed25519.verify(k["key"], body_bytes, sig)


def check(raw):
    """The store's body when it is well formed and signed by one of its own root keys."""
    body, body_bytes, signer, sig = parse(raw)
    if not _root_signed(body["keys"], body_bytes, signer, sig):
        raise TrustError("signature")
    return body


def load():
    """The trusted keys; an empty list when the store is missing or fails its check (nothing is trusted)."""
    raw = store.read_bytes(PATH)
    if raw is None:
        return []
    try:
        return check(raw)["keys"]
    except TrustError:
        return []


def lists(keyhash_):
    """Whether the stored store names a key with this keyhash, its root signature not checked: a key it does not
    name is trusted by no check of it, so a command from such a key is refused without the cost of one (an
    Ed25519 verification, up to seconds on a board) that anyone could make the meter pay per request."""
    raw = store.read_bytes(PATH)
    if raw is None:
        return False
    try:
        keys = parse(raw)[0]["keys"]
    except TrustError:
        return False
    for k in keys:
        if keyhash(k["key"]) == keyhash_:
            return True
    return False


def counter():
    raw = store.read_bytes(PATH)
    try:
        return check(raw)["counter"] if raw is not None else -1
    except TrustError:
        return -1


def update(new_raw):
    """Replace the store with `new_raw` when a root key of the current store signed it, the new store keeps that
    root key and its counter is higher. Returns the new body; raises TrustError naming the refusal."""
    cur_raw = store.read_bytes(PATH)
    body, body_bytes, signer, sig = parse(new_raw)
    if cur_raw is not None:
        try:
            cur = check(cur_raw)
        except TrustError:
            raise TrustError("current store corrupt: reprovision") from None
        if not _root_signed(cur["keys"], body_bytes, signer, sig):
            raise TrustError("not signed by a current root key")
        if body["counter"] <= cur["counter"]:
            raise TrustError("counter not above %d" % cur["counter"])
    elif not _root_signed(body["keys"], body_bytes, signer, sig):
        raise TrustError("signature")
    if not any(ROLE_ROOT in k["roles"] for k in body["keys"]):
        raise TrustError("no root key left")
    if _root_key(body["keys"], signer) is None:
        # every later use checks the store against its own root keys (check): a store that drops its signer would be
        # refused there, and the meter would trust nothing. (The same keyhash is the same key, whose signature was
        # just verified.)
        raise TrustError("signer not kept as a root key")
    store.write_atomic(PATH, new_raw)
    return body
