# Signed command envelopes: every state-changing command (relay, top-up, tariff, calibration, clock, confirm/erase,
# unlock) arrives as a CBOR map {body, signer, sig}, sig = Ed25519 over body, body = CBOR {format, role, meter, cmd,
# args, id, exp}. The signer must be a command-role key of the trust store; the envelope must name this meter, be
# unexpired by the RTC and carry an id not used before (the caller keeps the used ids: top-up tokens keep a window).
import cbor
import ed25519
from loader import strict
from loader.image import ROLE_COMMAND, keyhash

E_MALFORMED = "malformed"
E_UNKNOWN_KEY = "unknown-key"
E_ROLE = "wrong-role"
E_SIGNATURE = "bad-signature"
E_METER = "wrong-meter"
E_EXPIRED = "expired"
E_TIME_UNKNOWN = "time-unknown"
E_REPLAY = "replayed"
ID_SIZE = 16
# a clock-setting command must work while the meter does not know the time
TIMELESS_COMMANDS = ("clock.set",)


class EnvelopeError(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def parse(raw):
    """(body dict, body bytes, signer, sig) of a well-formed envelope, nothing verified: what can be refused
    before any signature is checked. Raises EnvelopeError(E_MALFORMED)."""
    try:
        outer = cbor.loads(raw)
        body_bytes = outer["body"]
        signer = outer["signer"]
        sig = outer["sig"]
        body = cbor.loads(body_bytes)
    except (ValueError, KeyError, TypeError):
        raise EnvelopeError(E_MALFORMED) from None
    if not isinstance(body, dict) or not strict.is_int(body.get("format"), 1, 1) or \
            not isinstance(body.get("cmd"), str):
        raise EnvelopeError(E_MALFORMED)
    if not isinstance(body.get("id"), bytes) or len(body["id"]) != ID_SIZE or not strict.is_int(body.get("exp")):
        raise EnvelopeError(E_MALFORMED)
    if not isinstance(body.get("args", {}), dict):
        raise EnvelopeError(E_MALFORMED)
    return body, body_bytes, signer, sig


def open_envelope(raw, trust_keys, meter_id, now, is_used):
    """The verified body (dict) of a command envelope. `now`: RTC seconds since 1970, or None when the meter does
    not know the time. `is_used(id)` tells whether an id was seen before. Raises EnvelopeError(reason)."""
    body, body_bytes, signer, sig = parse(raw)
    entry = None
    for k in trust_keys:
        if keyhash(k["key"]) == signer:
            entry = k
            break
    if entry is None:
        raise EnvelopeError(E_UNKNOWN_KEY)
    if ROLE_COMMAND not in entry["roles"] or body.get("role") != ROLE_COMMAND:
        raise EnvelopeError(E_ROLE)
    if not ed25519.verify(entry["key"], body_bytes, sig):
        raise EnvelopeError(E_SIGNATURE)
    if body.get("meter") != meter_id:
        raise EnvelopeError(E_METER)
    if now is None:
        if body["cmd"] not in TIMELESS_COMMANDS:
            raise EnvelopeError(E_TIME_UNKNOWN)
    elif body["exp"] < now:
        raise EnvelopeError(E_EXPIRED)
    if is_used(body["id"]):
        raise EnvelopeError(E_REPLAY)
    return body
