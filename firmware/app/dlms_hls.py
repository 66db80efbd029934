# IS 15959's utility-settings association (client SAP 48, app/cosem.py): high-level security with GMAC (mechanism 5)
# and every APDU authenticated and encrypted (DLMS security suite 0: AES-128-GCM, lib/gcm.py, 12-byte tags), the
# association that may operate the relay (class 70's remote_disconnect and remote_reconnect). On the heap only while
# such an association is being made or holds (the port forgets it with the session).
#
# Keys: meter/dlms-keys.bin holds the global unicast encryption key (EK) and the authentication key (AK), 16 bytes
# each, written whole (write-then-rename) by a signed "dlms.keys" command over the console only (SMP 66/11: a key
# sent in the clear over the modem would be the APN's to read), or cleared. No file: no utility association. A file of
# another size holds no keys: nothing authenticates against it, and nothing at start-up reads it.
#
# The meter's invocation counter (the GCM IV's last four bytes, under its system title): meter/dlms-ic holds the next
# counter no message has been promised (4 bytes, big-endian). A session takes a block of _IC_BLOCK counters by
# writing their end there first, then uses them from RAM: a power cut at any write leaves the old end (counters
# not used yet are skipped) or the new one; a counter is never used twice under a key, whatever the cuts. A new key
# does not reset it (the same key set again must not see its counters again). A damaged file, a refused write or
# the counters' end (2**32): no association (set new keys, then clear the file by hand: docs/dlms.md).
#
# The client's invocation counter must grow from message to message within an association (a replayed or reordered
# APDU is refused); across associations the server's fresh challenge (StoC) makes an old exchange useless.
import os

from micropython import const

from app import cosem
from loader import store

PATH = "meter/dlms-keys.bin"
IC_PATH = "meter/dlms-ic"
SIZE = const(32)  # EK then AK
_IC_BLOCK = const(64)
_IC_END = const(0xFFFFFFFF)
_SC_AUTH = const(0x10)  # security control byte: authenticated only (suite 0): HLS-GMAC's f(StoC), f(CtoS)
_SC_AUTH_ENC = const(0x30)  # authenticated and encrypted (suite 0): every APDU of the association
_TAG = const(12)  # bytes of a GCM tag in DLMS
_CHALLENGE = const(16)  # bytes of the meter's challenge, StoC
_GLO = const(8)  # a glo-ciphered APDU's tag: its plain one's + 8 (get-request 0xC0 -> 0xC8, action 0xC3 -> 0xCB)
_GLO_INITIATE_RESPONSE = const(0x28)
_ACTION_RESPONSE = const(0xC7)
_NORMAL = const(1)
_DECIPHER = const(5)  # ExceptionResponse service-error: deciphering error (or an invocation counter out of turn)
_REPLY_TO_HLS = (15, b"\x00\x00\x28\x00\x00\xff", 1)  # class, current association 0.0.40.0.0.255, method
MANUFACTURER = b"MKT"  # the system title's first three bytes (a FLAG-style manufacturer code)


def system_title(meter_id):
    """The meter's system title (8 bytes): its manufacturer code and five bytes of SHA-256 of its id."""
    import hashlib

    return MANUFACTURER + hashlib.sha256(meter_id.encode()).digest()[:5]


def keys():
    """(EK, AK), or None when none are set (or the file is not whole)."""
    raw = store.read_bytes(PATH)
    return None if raw is None or len(raw) != SIZE else (raw[:16], raw[16:])


class Refused(Exception):
    """No utility association now: no keys, the counter file damaged or full, the flash refusing it."""


class Session:
    """One utility association's security, made at its AARQ: the client's system title (8 bytes) and challenge
    CtoS. The meter's first block of invocation counters is taken here: an AARQ the flash cannot serve is refused
    (Refused), never half-answered."""

    def __init__(self, meter_id, client_title, ctos, ek, ak, log=None):
        from gcm import GCM

        self.log = log  # the app's event log (None: none kept)
        self.gcm = GCM(ek)
        self.ak = ak
        self.title = system_title(meter_id)
        self.client_title = bytes(client_title)
        self.ctos = bytes(ctos)
        self.stoc = os.urandom(_CHALLENGE)
        self.client_ic = -1  # the last invocation counter the client used in this association
        self._ic, self._end = reserve()  # the meter's next counter, and the end of those promised to it

    def unwrap(self, body):
        """The APDU in a glo-ciphered body (SC, IC, ciphertext, tag: after the tag and length), or None when it is not
        authenticated and encrypted under this association's keys, or its counter does not follow the last."""
        if len(body) < 5 + _TAG or body[0] != _SC_AUTH_ENC:
            return None
        ic = int.from_bytes(body[1:5], "big")
        if ic <= self.client_ic:
            return None
        mv = memoryview(body)
        apdu = self.gcm.decrypt(self.client_title + bytes(body[1:5]), mv[5:len(body) - _TAG], self._aad(_SC_AUTH_ENC),
                                mv[len(body) - _TAG:])
        if apdu is None:
            return None
        self.client_ic = ic
        return apdu

    def wrap(self, tag, apdu):
        """The glo-ciphered APDU (tag `tag`) carrying `apdu`, under the meter's next invocation counter."""
        from app import cosem

        head = bytes((_SC_AUTH_ENC,)) + self._next().to_bytes(4, "big")
        ct, t = self.gcm.encrypt(self.title + head[1:], apdu, self._aad(_SC_AUTH_ENC), _TAG)
        n = len(head) + len(ct) + _TAG
        return bytes((tag,)) + cosem.length(n) + head + ct + t

    def answers(self, f):
        """Whether `f` is the client's f(StoC): SC 0x10, its invocation counter, GMAC(SC | AK | StoC) (HLS pass 3)."""
        if len(f) != 5 + _TAG or f[0] != _SC_AUTH:
            return False
        return self.gcm.verify(self.client_title + bytes(f[1:5]), self._aad(_SC_AUTH) + self.stoc, memoryview(f)[5:])

    def proof(self):
        """The meter's f(CtoS) for HLS pass 4."""
        head = bytes((_SC_AUTH,)) + self._next().to_bytes(4, "big")
        return head + self.gcm.tag(self.title + head[1:], self._aad(_SC_AUTH) + self.ctos, _TAG)

    def accepted(self, info):
        """The AARE's fields after its result (accepted, authentication required): the meter's system title, its
        acse-requirements and mechanism, its challenge StoC and the InitiateResponse `info` glo-ciphered."""
        stoc = self.stoc
        glo = self.wrap(_GLO_INITIATE_RESPONSE, info)
        return (b"\xa4\x0a\x04\x08" + self.title + b"\x88\x02\x07\x80\x89\x07\x60\x85\x74\x05\x08\x02\x05\xaa"
                + bytes((len(stoc) + 2, 0x80, len(stoc))) + stoc + b"\xbe" + cosem.length(len(glo) + 2) + b"\x04"
                + cosem.length(len(glo)) + glo)

    def serve(self, assoc, req):
        """cosem.Association `assoc`'s request `req` within the utility association: glo-ciphered under its keys and
        in turn, deciphered and served, its answer ciphered (an ExceptionResponse goes in the clear); a request
        in the clear, under another key, replayed or out of turn: an ExceptionResponse (deciphering error)."""
        tag = req[0]
        if tag != cosem.GET_REQUEST + _GLO and tag != cosem.ACTION_REQUEST + _GLO:
            return assoc.refuse(1, 1)
        _, s, e = cosem.tlv(req, 0, len(req))
        if e != len(req):
            raise cosem.Malformed()
        inner = self.unwrap(memoryview(req)[s:e])
        if inner is None or not len(inner) or inner[0] != tag - _GLO:
            return assoc.refuse(1, _DECIPHER)
        r = assoc.request(inner)
        if r[0] != cosem.EXCEPTION:
            r = self.wrap(r[0] + _GLO, r)
        if not (assoc.associated or assoc.pending):  # a wrong f(StoC) ended it: answered, then forgotten
            assoc.end()
        return r

    def pass3(self, assoc, req):
        """HLS pass 3 and 4: the client's f(StoC) (reply_to_HLS_authentication, method 1 of the current association
        object) checked; right, the association holds and the answer carries the meter's f(CtoS); wrong, or any
        other ACTION in its place, it ends (other-reason) and is event 426."""
        invoke, class_id, name, method, data = _method(req)
        if (class_id, name, method) != _REPLY_TO_HLS or data is None or len(data) < 2 \
                or data[0] != cosem.OCTET_STRING or data[1] != len(data) - 2 or not self.answers(memoryview(data)[2:]):
            assoc.pending = False  # (the association ends once this answer is made: serve)
            self.failed("f(StoC) refused")
            assoc.refused += 1
            return bytes((_ACTION_RESPONSE, _NORMAL, invoke, cosem.OTHER_REASON, 0))
        assoc.pending = False
        assoc.associated = True
        return bytes((_ACTION_RESPONSE, _NORMAL, invoke, 0, 1, 0)) + cosem.octets(self.proof())

    def action(self, assoc, req):
        """ACTION.request normal within the association: the association's act(class, obis, method, data, client)
        answers with an action-result, or (0, the return data's A-XDR)."""
        invoke, class_id, name, method, data = _method(req)
        r = cosem.OBJECT_UNDEFINED
        if assoc.act is not None:
            try:
                r = assoc.act(class_id, name, method, data, assoc.client)
            except Exception:  # noqa: BLE001 - a fault in the object model is an answer, not the end of the server
                r = cosem.OTHER_REASON
        if isinstance(r, int):
            if r:
                assoc.refused += 1
            return bytes((_ACTION_RESPONSE, _NORMAL, invoke, r, 0))
        return bytes((_ACTION_RESPONSE, _NORMAL, invoke, r[0], 1, 0)) + r[1]

    def failed(self, why):
        """A client that did not prove it holds the keys (its AARQ not deciphered, or its f(StoC) wrong): event 426."""
        if self.log is not None:
            from binascii import hexlify

            from app import events

            try:
                self.log.add(events.UTILITY_REFUSED, "from %s: %s" % (hexlify(self.client_title).decode(), why))
            except MemoryError:  # noqa: B014 - no room for the event: the refusal stands
                pass

    def _aad(self, sc):
        return bytes((sc,)) + self.ak

    def _next(self):
        if self._ic >= self._end:
            self._ic, self._end = reserve()
        ic = self._ic
        self._ic += 1
        return ic


def _method(req):
    """An ACTION.request normal's (invoke, class, obis, method, its parameter's A-XDR bytes or None)."""
    if len(req) < 13 or req[1] != _NORMAL or req[12] > 1 or (req[12] and len(req) < 14):
        raise cosem.Malformed()
    return (req[2], (req[3] << 8) | req[4], bytes(req[5:11]), req[11], bytes(req[13:]) if req[12] else None)


def reserve():
    """(first, end) of a new block of the meter's invocation counters, its end on flash before any is used;
    Refused when the file is damaged, full or cannot be written."""
    raw = store.read_bytes(IC_PATH)
    if raw is None:
        first = 0
    elif len(raw) == 4:
        first = int.from_bytes(raw, "big")
    else:
        raise Refused("invocation counter damaged")
    end = first + _IC_BLOCK
    if end > _IC_END:
        raise Refused("invocation counters used up: new keys needed")
    try:
        store.write_atomic(IC_PATH, end.to_bytes(4, "big"))
    except OSError as e:
        raise Refused("invocation counter not saved: %s" % e) from None
    return first, end


def session(meter_id, client_title, ctos, log=None):
    """The Session for an AARQ from `client_title` with challenge `ctos`, or None when no keys are set. Refused
    when the meter's counters cannot go on (above)."""
    k = keys()
    return None if k is None else Session(meter_id, client_title, ctos, k[0], k[1], log)


def command(group, req, bad_request, not_allowed):
    """SMP group 66 command 11 for app/supply_group.py's SupplyGroup `group`: a read gives whether keys are set; a
    write with `ek` and `ak` (16 bytes each, or both empty to clear) over the console (refused over the modem: the
    keys would cross the APN in the clear), checked, then authorised (signed dlms.keys), stored whole, and a DLMS
    session in progress ended (event 410)."""
    from app import events
    from loader import smp

    srv = group.ctx.server
    if ("ek" in req or "ak" in req) and srv.op == smp.OP_WRITE:  # a read changes nothing
        ek = req.get("ek")
        ak = req.get("ak")
        if type(ek) is not bytes or type(ak) is not bytes or len(ek) != len(ak) or len(ek) not in (0, 16):
            raise group._error(events.COMMAND_REFUSED, "dlms.keys: bad keys", bad_request)
        if srv.bufs is not None:  # a transport of its own: the modem's
            raise group._error(events.COMMAND_REFUSED, "dlms.keys: over the console only", not_allowed)
        group._authorise(req, "dlms.keys", {"ek": ek, "ak": ak})
        if ek:
            store.write_atomic(PATH, ek + ak)
        else:
            try:
                os.remove(PATH)
            except OSError:  # none stored
                pass
        room = getattr(srv, "make_room", None)  # (the releasers: a DLMS session in progress ends)
        if room is not None:
            room()
        group.s.log.add(events.SETTINGS_CHANGED, "dlms keys " + ("set" if ek else "cleared"))
    return {"set": keys() is not None}
