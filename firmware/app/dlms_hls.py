# IS 15959's utility-settings association (client SAP 48, app/cosem.py): high-level security with GMAC (mechanism 5)
# and every APDU authenticated and encrypted (DLMS security suite 0: AES-128-GCM, lib/gcm.py, 12-byte tags), the
# association that may operate the relay (class 70's remote_disconnect and remote_reconnect) and set the clock and
# the load limit (SET normal of the clock's time and of the limiter's threshold and durations: app/dlms_supply.py
# put). On the heap only while
# such an association is being made or holds (the port forgets it with the session).
#
# Keys and the meter's invocation counter, in one file, meter/dlms-keys.bin: the global unicast encryption key (EK)
# and the authentication key (AK), 16 bytes each, then the end of the counters promised so far (4 bytes, big-endian),
# always written whole (write-then-rename). A signed "dlms.keys" command over the console only (SMP 66/11: a key
# sent in the clear over the modem would be the APN's to read) sets the keys (the same EK again keeps its counter;
# another starts at 0) or clears them. No file: no utility association; nor a file of another size: nothing
# authenticates against it, and nothing at start-up reads it. Keys and counter cannot part: a file lost loses both.
#
# The counter (the GCM IV's last four bytes, under the meter's system title) never repeats under a key: an association
# whose AARQ deciphered under the keys takes a block of _IC_BLOCK counters by writing their end first, then uses them
# from RAM (`held`, kept by the port across associations: a block serves many short ones, one flash write per 64
# messages); a power cut at any write leaves the old end (counters not used yet are skipped) or the new one. An AARQ
# that does not decipher costs no counter and no write. A refused write or the counters' end (2**32: set new keys)
# refuses the association; a message whose counter cannot be had gets no answer from this layer but an
# ExceptionResponse, and nothing is done for it. A key set again after another replaced it would start its counter
# at 0 again: never reuse a replaced key (docs/SECURITY.md).
#
# The client's invocation counter must grow from message to message within an association (a replayed or reordered
# APDU is refused); across associations the server's fresh challenge (StoC) makes an old exchange useless.
import os

from micropython import const

from app import cosem
from loader import store

PATH = "meter/dlms-keys.bin"
SIZE = const(36)  # EK, AK, the counters' end
_IC_BLOCK = const(64)
_IC_END = const(0xFFFFFFFF)
_SC_AUTH = const(0x10)  # security control byte: authenticated only (suite 0): HLS-GMAC's f(StoC), f(CtoS)
_SC_AUTH_ENC = const(0x30)  # authenticated and encrypted (suite 0): every APDU of the association
_TAG = const(12)  # bytes of a GCM tag in DLMS
_CHALLENGE = const(16)  # bytes of the meter's challenge, StoC
_GLO = const(8)  # a glo-ciphered APDU's tag: its plain one's + 8 (get-request 0xC0 -> 0xC8, action 0xC3 -> 0xCB)
_GLO_INITIATE_RESPONSE = const(0x28)
_ACTION_RESPONSE = const(0xC7)
_SET_RESPONSE = const(0xC5)
_NORMAL = const(1)
_DECIPHER = const(5)  # ExceptionResponse service-error: deciphering error (or an invocation counter out of turn)
_REPLY_TO_HLS = (15, b"\x00\x00\x28\x00\x00\xff", 1)  # class, current association 0.0.40.0.0.255, method
MANUFACTURER = b"MKT"  # the system title's first three bytes (a FLAG-style manufacturer code)


def system_title(meter_id):
    """The meter's system title (8 bytes): its manufacturer code and five bytes of SHA-256 of its id."""
    import hashlib

    return MANUFACTURER + hashlib.sha256(meter_id.encode()).digest()[:5]


def keys():
    """(EK, AK, the end of the counters promised), or None when none are set (or the file is not whole)."""
    raw = store.read_bytes(PATH)
    return None if raw is None or len(raw) != SIZE else (raw[:16], raw[16:32], int.from_bytes(raw[32:], "big"))


class Refused(Exception):
    """No counters now: no keys, the counters used up, the flash refusing their end."""


class Session:
    """One utility association's security, made at its AARQ: the client's system title (8 bytes) and challenge
    CtoS. Its counters come from next(), a block promised on flash only once the AARQ has deciphered."""

    def __init__(self, meter_id, client_title, ctos, ek, ak, log=None, held=None):
        from gcm import GCM

        self.log = log  # the app's event log (None: none kept)
        self.gcm = GCM(ek)
        self.ek = ek
        self.ak = ak
        self.title = system_title(meter_id)
        self.client_title = bytes(client_title)
        self.ctos = bytes(ctos)
        self.stoc = os.urandom(_CHALLENGE)
        self.client_ic = -1  # the last invocation counter the client used in this association
        # the counters promised and not used yet, kept by the port across associations: the EK they are for, the next
        # and the end of the block (4 bytes each, big-endian)
        self.held = bytearray(24) if held is None else held

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

    def wrap(self, tag, apdu, ic):
        """The glo-ciphered APDU (tag `tag`) carrying `apdu`, under the meter's invocation counter `ic` (next())."""
        head = bytes((_SC_AUTH_ENC,)) + ic.to_bytes(4, "big")
        ct, t = self.gcm.encrypt(self.title + head[1:], apdu, self._aad(_SC_AUTH_ENC), _TAG)
        n = len(head) + len(ct) + _TAG
        return bytes((tag,)) + cosem.length(n) + head + ct + t

    def answers(self, f):
        """Whether `f` is the client's f(StoC): SC 0x10, its invocation counter, GMAC(SC | AK | StoC) (HLS pass 3)."""
        if len(f) != 5 + _TAG or f[0] != _SC_AUTH:
            return False
        return self.gcm.verify(self.client_title + bytes(f[1:5]), self._aad(_SC_AUTH) + self.stoc, memoryview(f)[5:])

    def proof(self, ic):
        """The meter's f(CtoS) for HLS pass 4, under its invocation counter `ic`."""
        head = bytes((_SC_AUTH,)) + ic.to_bytes(4, "big")
        return head + self.gcm.tag(self.title + head[1:], self._aad(_SC_AUTH) + self.ctos, _TAG)

    def accepted(self, info, ic):
        """The AARE's fields after its result (accepted, authentication required): the meter's system title, its
        acse-requirements and mechanism, its challenge StoC and the InitiateResponse `info` glo-ciphered under `ic`."""
        stoc = self.stoc
        glo = self.wrap(_GLO_INITIATE_RESPONSE, info, ic)
        return (b"\xa4\x0a\x04\x08" + self.title + b"\x88\x02\x07\x80\x89\x07\x60\x85\x74\x05\x08\x02\x05\xaa"
                + bytes((len(stoc) + 2, 0x80, len(stoc))) + stoc + b"\xbe" + cosem.length(len(glo) + 2) + b"\x04"
                + cosem.length(len(glo)) + glo)

    def serve(self, assoc, req):
        """cosem.Association `assoc`'s request `req` within the utility association: glo-ciphered under its keys and
        in turn, deciphered and served, its answer ciphered (an ExceptionResponse goes in the clear); a request
        in the clear, under another key, replayed or out of turn: an ExceptionResponse (deciphering error)."""
        tag = req[0]
        if tag not in (cosem.GET_REQUEST + _GLO, cosem.ACTION_REQUEST + _GLO, cosem.SET_REQUEST + _GLO):
            return assoc.refuse(1, 1)
        _, s, e = cosem.tlv(req, 0, len(req))
        if e != len(req):
            raise cosem.Malformed()
        inner = self.unwrap(memoryview(req)[s:e])
        if inner is None or not len(inner) or inner[0] != tag - _GLO:
            return assoc.refuse(1, _DECIPHER)
        ic = self.next()  # the answer's counter first: a request whose answer cannot be ciphered is not served
        if ic is None:
            assoc.end()
            return assoc.refuse(1, 1)
        r = assoc.request(inner)
        if r[0] != cosem.EXCEPTION:
            r = self.wrap(r[0] + _GLO, r, ic)
        if not (assoc.associated or assoc.pending):  # a wrong f(StoC) ended it: answered, then forgotten
            assoc.end()
        return r

    def pass3(self, assoc, req):
        """HLS pass 3 and 4: the client's f(StoC) (reply_to_HLS_authentication, method 1 of the current association
        object) checked; right, the association holds and the answer carries the meter's f(CtoS); wrong, or any
        other ACTION in its place, it ends (other-reason) and is event 426."""
        invoke, class_id, name, method, data = _method(req)
        assoc.pending = False  # (an association that fails here ends once this answer is made: serve)
        if (class_id, name, method) != _REPLY_TO_HLS or data is None or len(data) < 2 \
                or data[0] != cosem.OCTET_STRING or data[1] != len(data) - 2 or not self.answers(memoryview(data)[2:]):
            self.failed("f(StoC) refused")
            assoc.refused += 1
            return bytes((_ACTION_RESPONSE, _NORMAL, invoke, cosem.OTHER_REASON, 0))
        ic = self.next()
        if ic is None:
            return bytes((_ACTION_RESPONSE, _NORMAL, invoke, cosem.OTHER_REASON, 0))
        assoc.associated = True
        return bytes((_ACTION_RESPONSE, _NORMAL, invoke, 0, 1, 0)) + cosem.octets(self.proof(ic))

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

    def set(self, assoc, req):
        """SET.request normal within the association, with no selective access: the association's put(class, obis,
        attribute, data, client) answers with a data-access-result (0: done). Any other SET (in blocks, with a
        list) is not supported: an ExceptionResponse."""
        if req[1] != _NORMAL:
            return assoc.refuse(2, 2)  # service unknown, not supported
        if len(req) < 14 or req[12] > 1:  # (as GET and ACTION: a request that does not parse)
            raise cosem.Malformed()
        invoke, cls, name = req[2], (req[3] << 8) | req[4], bytes(req[5:11])
        try:
            r = assoc.get(cls, name, 1, None, assoc.client)  # the model says whether it has the object (4, 9)
            if not isinstance(r, int):
                r = cosem.READ_WRITE_DENIED if req[12] or assoc.put is None else assoc.put(
                    cls, name, req[11], bytes(req[13:]), assoc.client)  # (selective access on a SET: none takes it)
        except Exception:  # noqa: BLE001 - a fault in the object model is an answer, not the end of the server
            r = cosem.OTHER_REASON
        if r:
            assoc.refused += 1
        return bytes((_SET_RESPONSE, _NORMAL, invoke, r))

    def failed(self, why):
        """A client that did not prove it holds the keys (its AARQ not deciphered, or its f(StoC) wrong): event 426."""
        if self.log is not None:
            from binascii import hexlify

            from app import events

            try:
                self.log.add(events.UTILITY_REFUSED, "from %s: %s" % (hexlify(self.client_title).decode(), why))
            except Exception:  # noqa: BLE001 - no room for the event (heap, flash): the refusal stands
                pass

    def _aad(self, sc):
        return bytes((sc,)) + self.ak

    def next(self):
        """The meter's next invocation counter, a block promised on flash first when none is held; None when none
        can be had (the counters used up, the flash refusing): nothing may be ciphered then."""
        h = self.held
        ic = int.from_bytes(h[16:20], "big")
        end = int.from_bytes(h[20:24], "big")
        if h[:16] != self.ek or ic >= end:
            try:
                ic, end = reserve(self.ek)
            except Refused:
                return None
            h[:16] = self.ek
            h[20:24] = end.to_bytes(4, "big")
        h[16:20] = (ic + 1).to_bytes(4, "big")
        return ic


def _method(req):
    """An ACTION.request normal's (invoke, class, obis, method, its parameter's A-XDR bytes or None)."""
    if len(req) < 13 or req[1] != _NORMAL or req[12] > 1 or (req[12] and len(req) < 14):
        raise cosem.Malformed()
    return (req[2], (req[3] << 8) | req[4], bytes(req[5:11]), req[11], bytes(req[13:]) if req[12] else None)


def reserve(ek):
    """(first, end) of a new block of the meter's invocation counters under key `ek`, its end on flash before any is
    used; Refused when the keys are gone or changed, the counters used up, or the flash refuses the write."""
    k = keys()
    if k is None or k[0] != ek:
        raise Refused("keys changed")
    end = k[2] + _IC_BLOCK
    if end > _IC_END:
        raise Refused("invocation counters used up: new keys needed")
    try:
        store.write_atomic(PATH, k[0] + k[1] + end.to_bytes(4, "big"))
    except OSError:
        raise Refused("counter not saved") from None
    return k[2], end


def session(meter_id, client_title, ctos, log=None, held=None):
    """The Session for an AARQ from `client_title` with challenge `ctos`, or None when no keys are set (or the client
    names the meter's own system title: a reflection). `held`: the counters promised and not used, kept across
    associations (Session.held)."""
    k = keys()
    if k is None or bytes(client_title) == system_title(meter_id):
        return None
    return Session(meter_id, client_title, ctos, k[0], k[1], log, held)


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
            old = keys()  # the same EK again goes on with its counter; another starts at 0
            store.write_atomic(PATH, ek + ak + (old[2] if old is not None and old[0] == ek else 0).to_bytes(4, "big"))
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
