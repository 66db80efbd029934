# Authorising state-changing SMP requests on a locked meter: the request carries a signed command envelope
# (loader/envelope.py) whose command and arguments must be exactly the request's, by type and value
# (loader/strict.py). Used envelope ids are kept in meter/command-ids.json until their expiry; when the list is full the earliest-expiring id is dropped and its expiry
# becomes a floor below which every envelope is refused, so a dropped id can never be replayed. Every refusal is
# recorded as an event. The file is replaced atomically; should it still be unreadable (flash fault, tampering), the
# floor restarts at the current time.
from loader import journal, store, strict, wallclock

IDS = "meter/command-ids.json"
IDS_KEPT = 32
E_MISMATCH = "request-differs"
E_MISSING = "no-envelope"
E_DEV_KEY = "development-key-refused"


def _load():
    """(record, used ids as bytes); a record of any other shape than {"floor": int, "ids": [[32 hex digits, int]]}
    counts as lost."""
    try:
        rec = store.read_json(IDS, {"floor": 0, "ids": []})
        if not strict.is_int(rec["floor"], 0):
            raise ValueError
        used = []
        for i, x in rec["ids"]:
            if len(i) != 32 or not strict.is_int(x):
                raise ValueError
            used.append(bytes.fromhex(i))
        return rec, used
    except (ValueError, TypeError, KeyError, AttributeError):
        # writes are atomic, so only a flash fault or tampering gets here: everything that expires before now is
        # refused from here on (at worst an unexpired envelope replays once), and the loss is recorded
        journal.event("command-ids-lost", "")
        return {"floor": wallclock.rtc_now() or 0, "ids": []}, []


class Refused(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def _open(ctx, raw, is_used):
    """The verified body of envelope `raw`; a locked meter obeys no development key (they are public in the
    repository), a development meter does. Raises Refused."""
    # Deferred for RAM: the envelope's verifier (ed25519, sha512) loads with the first signed command, not at boot.
    from loader import envelope, mode, trust

    if not isinstance(raw, bytes):
        raise Refused(E_MISSING)
    # what needs no signature check is refused first: a malformed envelope, or one from a key the store does not
    # name (the store's root signature, checked by trust.load, costs an Ed25519 verification per request)
    try:
        signer = envelope.parse(raw)[2]
    except envelope.EnvelopeError as e:
        raise Refused(e.reason) from None
    if not trust.lists(signer):
        raise Refused(envelope.E_UNKNOWN_KEY)
    keys = trust.load()
    try:
        return envelope.open_envelope(raw, keys if ctx.mode == mode.DEVELOPMENT else [k for k in keys if not k.get("dev")],
                                      ctx.meter_id, wallclock.rtc_now(), is_used)
    except envelope.EnvelopeError as e:
        if e.reason == envelope.E_UNKNOWN_KEY and ctx.mode != mode.DEVELOPMENT:
            try:
                envelope.open_envelope(raw, keys, ctx.meter_id, None, lambda i: False)
            except envelope.EnvelopeError as e2:
                if e2.reason in (envelope.E_UNKNOWN_KEY, envelope.E_ROLE, envelope.E_SIGNATURE):
                    raise Refused(e.reason) from None
            raise Refused(E_DEV_KEY) from None
        raise Refused(e.reason) from None


def open_token(ctx, raw, cmd):
    """The body of a signed envelope for `cmd` whose replay protection is the caller's own (top-up tokens: the
    token window kept in one record with the balance, so a power cut cannot spend a token without crediting it).
    Raises Refused."""
    body = _open(ctx, raw, lambda i: False)
    if body["cmd"] != cmd:
        raise Refused(E_MISMATCH)
    return body


def authorise(ctx, req, cmd, args, logged=True):
    """Check req["envelope"] for command `cmd` with exactly `args` (a dict) and record its id. Raises Refused;
    `logged`: a refusal goes into the update events (a caller with its own event log says False)."""
    from loader import envelope  # deferred for RAM, as in _open

    try:
        rec, used = _load()
        body = _open(ctx, req.get("envelope"), lambda i: i in used)
        if body["exp"] <= rec.get("floor", 0):
            raise Refused(envelope.E_REPLAY)
        if body["cmd"] != cmd or not strict.same(body.get("args", {}), args):  # 5, 5.0 and True differ
            raise Refused(E_MISMATCH)
    except Refused as e:
        if logged:
            if getattr(ctx, "refusals", None) is None:
                ctx.refusals = [None, 0, ""]  # this boot's burst of refused commands (journal.event)
            journal.event("command-refused", "%s: %s" % (cmd, e.reason), ctx.refusals)
        raise
    ids = rec["ids"]
    ids.append([body["id"].hex(), body["exp"]])
    if len(ids) > IDS_KEPT:
        ids.sort(key=lambda e: e[1])
        rec["floor"] = max(rec.get("floor", 0), ids.pop(0)[1])
    store.write_json(IDS, rec)
    journal.event("command", cmd)
    return body
