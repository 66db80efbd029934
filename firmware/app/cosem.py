"""The DLMS/COSEM application layer (IEC 62056-53/-5-3) for IS 15959's public client (client SAP 16: no security)
and meter reader (client SAP 32: low-level security, a secret), GET only, and its utility settings (client SAP 48:
HLS-GMAC, every APDU glo-ciphered, GET, SET and ACTION: its AARQ is checked here, its security, passes 3 and 4, SET,
ACTION and ciphering are app/dlms_hls.py's, `hls(title, ctos)` giving its Session), above app/hdlc.py's link; runs
unchanged on the boards, the VM and CPython.

`Association(get, lls=check, hls=security, act=action, put=setter).apdu(request, client)` answers one request APDU (a
bytes-like without its LLC header) from client SAP `client` with a response APDU (bytes). What follows is the
public client's and the meter reader's (the utility's: docs/dlms.md):
- AARQ (0x60): accepted when it asks for logical-name referencing without ciphering and carries an xDLMS
  InitiateRequest of DLMS version 6, and when its client's authentication is right: the public client names no
  mechanism (or the lowest level's "none") and asks for no authentication (no sender-acse-requirements bit, no
  calling-authentication-value: refused with diagnostic 1 otherwise); the meter reader names low-level security
  (mechanism 1), asks for authentication in its sender-acse-requirements and gives a calling-authentication-value
  that `check(secret)` accepts (the secret's bytes; no `check`: no meter reader association). The AARE then gives the negotiated conformance (GET, and block transfer with GET and selective access
  if proposed: the proposed bits AND CONFORMANCE; without GET it is refused; a GET with selective access from a
  client that did not negotiate it is refused read-write-denied) and the meter's largest PDU. Anything else gets an AARE
  that rejects it (result 1 and a diagnostic: 2 application context not supported, 11 mechanism not recognised (for
  that client), 12 mechanism required (the meter reader named none), 14 authentication required (no secret given,
  or no authentication asked in the sender-acse-requirements),
  13 authentication failure (the secret refused), 1 no reason (a client SAP with no association here), with an
  InitiateError: 1 a version below 6, 2 no GET in the conformance, 3 a client PDU under 12 bytes, 0 an AARQ that
  does not parse) and no association. The secret is checked last, once all else is right. A meter reader's or
  utility AARQ the heap has no room for now (the secret's check, the security's modules) gets result 2,
  rejected-transient: the client may ask again.
- RLRQ (0x62): RLRE (reason normal) and the association ends (as it does when the link disconnects: `release()`).
- GET.request normal (0xC0 0x01): `get(class_id, obis, attribute, access, client)` — the meter's object model, told
  the client SAP of the association in force (what the client may read is the model's to say) — returns the value's
  A-XDR encoding (bytes, or a list of bytes: a long value in pieces, so that no large block of the heap is needed,
  or a generator of them: a value read from flash as it goes out, never whole on the heap) or a data-access-result
  number (4 object undefined, 3 read-write denied, ...), which the GET.response carries. `access` is None, or with
  a selective access part (selector, parameters): the selector (1 by range, 2 by entry) and its A-XDR parameters,
  for the model to apply (one that takes none refuses it).
- GET with block transfer: a value longer than fits a PDU (the smaller of the client's largest, from its
  InitiateRequest, and MAX_PDU, this end's) goes as GET.response-with-datablock in blocks that fit it, one per
  GET.request-next (0xC0 0x02) acknowledging the block before; each block is put together from the value's pieces
  when it is asked for; the next block asked for out of turn ends the transfer (data-block-number-invalid), a next with none under
  way gets no-long-get-in-progress, and any other request ends it. Offered in the conformance (block-transfer-with-
  get); a client that does not take it gets other-reason (250) for such a value.
- Anything else, or a GET before an association: an ExceptionResponse (0xD8; service not allowed or unknown), never
  an exception out of apdu().
"""

from micropython import const

# conformance block bits (a 24-bit number, bit 0 of the standard's numbering being the MSB)
CONF_GET = const(0x000010)
CONF_BLOCK_GET = const(0x001000)  # block-transfer-with-get-or-read
CONF_SELECTIVE = const(0x000004)  # selective-access
CONF_ACTION = const(0x000001)
CONF_SET = const(0x000008)
CONFORMANCE = CONF_GET | CONF_BLOCK_GET | CONF_SELECTIVE  # what the public client and the meter reader may have
CONFORMANCE_UTILITY = CONFORMANCE | CONF_ACTION | CONF_SET  # and the utility-settings association
DLMS_VERSION = const(6)
MAX_PDU = const(512)  # the largest APDU this end receives (the AARE's server-max-receive-pdu-size)
PUBLIC_CLIENT = const(16)  # IS 15959's client SAPs: the public client (no security)
READER_CLIENT = const(32)  # and the meter reader (low-level security)
UTILITY_CLIENT = const(48)  # and the utility settings (high-level security, GMAC; every APDU ciphered)
LLS = const(1)  # the low-level security mechanism's number (2.16.756.5.8.2.1)
HLS_GMAC = const(5)  # high-level security with GMAC (2.16.756.5.8.2.5)

# data-access-result
OBJECT_UNDEFINED = const(4)
READ_WRITE_DENIED = const(3)
OTHER_REASON = const(250)
TYPE_UNMATCHED = const(12)
_NO_LONG_GET = const(16)  # no-long-get-in-progress
_BLOCK_INVALID = const(19)  # data-block-number-invalid
_BLOCK_OVERHEAD = const(12)  # a block response's bytes around its data: C4 02 invoke, last, number (4), 00, length (3)
_CIPHERING = const(21)  # a glo-ciphered answer's bytes around the plain one: tag, length (3), SC, counter (4), tag (12)

# the application context and mechanism names: 2.16.756.5.8.1.x and 2.16.756.5.8.2.x
_CONTEXT = b"\x60\x85\x74\x05\x08\x01"
_MECHANISM = b"\x60\x85\x74\x05\x08\x02"
_LN_NO_CIPHER = const(1)
_LN_CIPHER = const(3)
# AARE results: accepted (0), rejected-permanent, rejected-transient (the meter had no heap for the association now)
_REJECTED = const(1)
_REJECTED_TRANSIENT = const(2)
# AARE diagnostics (acse-service-user)
_DIAG_NONE = const(0)
_DIAG_NO_REASON = const(1)
_DIAG_CONTEXT = const(2)
_DIAG_AP_TITLE = const(3)  # calling-AP-title not recognised
_DIAG_MECHANISM = const(11)
_DIAG_MECHANISM_REQUIRED = const(12)
_DIAG_AUTH_FAILED = const(13)
_DIAG_AUTH_REQUIRED = const(14)

_AARQ = const(0x60)
_AARE = const(0x61)
_RLRQ = const(0x62)
_RLRE = const(0x63)
GET_REQUEST = const(0xC0)
_GET_RESPONSE = const(0xC4)
EXCEPTION = const(0xD8)
ACTION_REQUEST = const(0xC3)  # (its handling and the glo-ciphered forms: app/dlms_hls.py)
SET_REQUEST = const(0xC1)  # (likewise)
_GLO_INITIATE_REQUEST = const(0x21)
_NORMAL = const(1)
_NEXT = const(2)
_WITH_DATABLOCK = const(2)

# A-XDR type tags
NULL = const(0)
BOOLEAN = const(3)
DOUBLE_LONG = const(5)
DOUBLE_LONG_UNSIGNED = const(6)
OCTET_STRING = const(9)
VISIBLE_STRING = const(10)
INTEGER = const(15)
LONG = const(16)
UNSIGNED = const(17)
LONG_UNSIGNED = const(18)
LONG64 = const(20)
LONG64_UNSIGNED = const(21)
ENUM = const(22)
STRUCTURE = const(2)
ARRAY = const(1)

_SIZES = {BOOLEAN: 1, INTEGER: 1, UNSIGNED: 1, ENUM: 1, LONG: 2, LONG_UNSIGNED: 2, DOUBLE_LONG: 4,
          DOUBLE_LONG_UNSIGNED: 4, LONG64: 8, LONG64_UNSIGNED: 8}


class Malformed(Exception):
    """A request APDU that does not parse (never escapes apdu(): it becomes a refusal)."""


def number(tag, value):
    """The A-XDR encoding of an integer of type `tag` (BOOLEAN, INTEGER ... LONG64_UNSIGNED, ENUM); ValueError when
    the value does not fit the type."""
    size = _SIZES[tag]
    signed = tag in (INTEGER, LONG, DOUBLE_LONG, LONG64)
    lo = -(1 << (8 * size - 1)) if signed else 0
    hi = (1 << (8 * size - 1)) - 1 if signed else (1 << (8 * size)) - 1
    if tag == BOOLEAN:
        value = 1 if value else 0
    if not lo <= value <= hi:
        raise ValueError("out of range")
    return bytes((tag,)) + (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")


def octets(data, tag=OCTET_STRING):
    """An octet-string (or visible-string) of fewer than 128 bytes: the tag, its length, the bytes."""
    if len(data) > 127:
        raise ValueError("too long")
    return bytes((tag, len(data))) + bytes(data)


def structure(*parts):
    """A structure of already encoded values."""
    return bytes((STRUCTURE, len(parts))) + b"".join(parts)


def length(n):
    """An A-XDR length (or element count): one byte under 128, else 0x81 or 0x82 and one or two bytes."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def array(count, body):
    """An array of `count` already encoded elements (`body`: them, joined)."""
    return array_head(count) + body


def array_head(count):
    """An array's tag and element count: the first piece of an array sent in pieces."""
    return bytes((ARRAY,)) + length(count)


def scaler_unit(scaler, unit):
    """A register's attribute 3: structure {integer scaler, enum unit} (units: 27 W, 35 V, 33 A, 30 Wh, 44 Hz ...)."""
    return structure(number(INTEGER, scaler), number(ENUM, unit))


def tlv(buf, i, end):
    """The BER element at buf[i:end]: (tag, start of its value, end of its value)."""
    if i + 2 > end:
        raise Malformed()
    tag = buf[i]
    n = buf[i + 1]
    i += 2
    if n & 0x80:  # long form: 1 or 2 length bytes are enough for any APDU here
        k = n & 0x7F
        if k not in (1, 2) or i + k > end:
            raise Malformed()
        n = 0
        for _ in range(k):
            n = (n << 8) | buf[i]
            i += 1
    if i + n > end:
        raise Malformed()
    return tag, i, i + n


class _Cut(Exception):
    """A value made as it goes out failed to make its next piece."""


class Association:
    """One client's application association over one link (see the module docstring)."""

    def __init__(self, get, max_pdu=MAX_PDU, lls=None, hls=None, act=None, put=None):
        self.get = get
        self.max_pdu = max_pdu
        self.lls = lls  # lls(secret) -> whether it is the meter reader's (None: no meter reader association)
        self.hls = hls  # hls(client system title, CtoS) -> the utility association's security, or None (no keys)
        self.act = act  # act(class_id, obis, method, data or None, client) -> action-result, or (0, return data)
        self.put = put  # put(class_id, obis, attribute, data, client) -> data-access-result (0: success)
        self.sec = None  # the utility association's security (app/dlms_hls.py Session) while one is made or holds
        self.pending = False  # the utility association awaits the client's f(StoC) (HLS pass 3)
        self.associated = False
        self.client = 0  # the client SAP of the association in force (0: none)
        self.client_pdu = 0  # the client's largest PDU, from its InitiateRequest
        self.conformance = 0
        self.refused = 0  # requests refused, for diagnosis
        self._long = None  # the pieces still to send of a value going out in blocks, None when none is
        self._more = None  # and the generator that makes the rest, None when all are made
        self._at = 0  # how much of the first of them has gone
        self._block = 0  # the number of the last block sent

    def release(self):
        self.end()
        self._long = self._more = None

    def end(self):
        self.associated = self.pending = False
        self.client = 0
        self.sec = None

    def apdu(self, req, client=PUBLIC_CLIENT):
        try:
            if not len(req):
                raise Malformed()
            tag = req[0]
            if tag in (_AARQ, _RLRQ):
                self._long = self._more = None  # a new association, or none: no transfer carries on
            if tag == _AARQ:
                try:
                    return self._aarq(req, client)
                except (Malformed, IndexError):  # an AARQ is answered with an AARE, also when it does not parse
                    self.end()
                    return self._aare(_DIAG_NO_REASON, b"\x0e\x01\x06\x00")  # InitiateError: other
            if tag == _RLRQ:
                tlv(req, 0, len(req))
                self.end()
                return b"\x63\x03\x80\x01\x00"
            if not (self.associated or self.pending):
                return self.refuse(1, 1)  # service not allowed, operation not possible
            if self.sec is None:
                return self.request(req)
            return self.sec.serve(self, req)  # the utility association: glo-ciphered both ways (app/dlms_hls.py)
        except (Malformed, IndexError):
            return self.refuse(2, 3)  # service unknown, other reason

    def request(self, req):
        """A request within an association (deciphered, for the utility association's)."""
        tag = req[0]
        sec = self.sec
        if self.pending:  # the one request then: the client's f(StoC) (app/dlms_hls.py, as ACTION below)
            return sec.pass3(self, req) if tag == ACTION_REQUEST and sec is not None else self.refuse(1, 1)
        if tag == GET_REQUEST and len(req) >= 2 and req[1] == _NEXT:
            return self._next(req)
        self._long = self._more = None  # any other request ends a transfer in blocks
        if tag == GET_REQUEST and len(req) >= 2 and req[1] == _NORMAL:
            return self._get(req)
        if tag == ACTION_REQUEST and self.conformance & CONF_ACTION and sec is not None:  # (the utility's only)
            return sec.action(self, req)
        if tag == SET_REQUEST and self.conformance & CONF_SET and sec is not None:  # (likewise)
            return sec.set(self, req)
        return self.refuse(2, 2)  # service unknown, not supported

    def refuse(self, state, service):
        self.refused += 1
        return bytes((EXCEPTION, state, service))

    def _aarq(self, req, client):
        self.end()
        tag, i, end = tlv(req, 0, len(req))
        context = mechanism = secret = title = None
        initiate = None
        acse_auth = False  # sender-acse-requirements with its authentication bit: the client asks to authenticate
        while i < end:
            t, v, e = tlv(req, i, end)
            if t == 0x8A:  # sender-acse-requirements: a BIT STRING (unused bits, then bit 0 = authentication)
                acse_auth = e - v == 2 and req[v + 1] & 0x80 != 0
            elif t == 0xA1:  # application-context-name: an object identifier (universal tag 6), nothing else
                k, s, f = tlv(req, v, e)
                context = bytes(req[s:f]) if k == 0x06 and f == e else b""
            elif t == 0xA6:  # calling-AP-title: an octet string, the client's system title
                k, s, f = tlv(req, v, e)
                title = bytes(req[s:f]) if k == 0x04 and f == e else b""
            elif t == 0x8B:  # mechanism-name (implicit object identifier)
                mechanism = bytes(req[v:e])
            elif t == 0xAC:  # calling-authentication-value: [0] a GraphicString, the secret (nothing else taken)
                k, s, f = tlv(req, v, e)
                secret = bytes(req[s:f]) if k == 0x80 and f == e else b""
            elif t == 0xBE:  # user-information: an octet string holding the xDLMS InitiateRequest
                _, s, f = tlv(req, v, e)
                initiate = (s, f)
            i = e
        utility = client == UTILITY_CLIENT
        if context is None or len(context) != 7 or context[:6] != _CONTEXT or \
                context[6] != (_LN_CIPHER if utility else _LN_NO_CIPHER):
            return self._aare(_DIAG_CONTEXT)
        mech = 0 if mechanism is None else (
            mechanism[6] if len(mechanism) == 7 and mechanism[:6] == _MECHANISM else -1)
        if client == PUBLIC_CLIENT:
            if mech:
                return self._aare(_DIAG_MECHANISM)
            if acse_auth or secret is not None:  # authentication asked of an association without any: malformed
                return self._aare(_DIAG_NO_REASON)
        elif client == READER_CLIENT:
            if not mech:
                return self._aare(_DIAG_MECHANISM_REQUIRED)
            if mech != LLS:
                return self._aare(_DIAG_MECHANISM)
            if not secret or not acse_auth:  # a secret, and the authentication functional unit that carries it
                return self._aare(_DIAG_AUTH_REQUIRED)
        elif utility:
            if not mech:
                return self._aare(_DIAG_MECHANISM_REQUIRED)
            if mech != HLS_GMAC:
                return self._aare(_DIAG_MECHANISM)
            if not secret or not 8 <= len(secret) <= 64 or not acse_auth:  # the client's challenge, CtoS
                return self._aare(_DIAG_AUTH_REQUIRED)
            if title is None or len(title) != 8:
                return self._aare(_DIAG_AP_TITLE)
        else:
            return self._aare(_DIAG_NO_REASON)
        if initiate is None:
            return self._aare(_DIAG_NO_REASON)
        s, f = initiate
        sec = ic = None
        if utility:  # a glo-initiateRequest: the InitiateRequest authenticated and encrypted under the keys
            if self.hls is None or req[s] != _GLO_INITIATE_REQUEST:
                return self._aare(_DIAG_NO_REASON)
            try:
                sec = self.hls(title, secret)
            except MemoryError:  # noqa: B014 - no heap for the security now: rejected-transient, ask again later
                return self._aare(_DIAG_NO_REASON, None, None, _REJECTED_TRANSIENT)
            except Exception:  # noqa: BLE001 - no association
                sec = None
            if sec is None:  # (no keys: the same answer as keys that are not the client's)
                return self._aare(_DIAG_NO_REASON, b"\x0e\x01\x06\x00")
            _, s, f = tlv(req, s, f)
            req = sec.unwrap(memoryview(req)[s:f])
            if req is None:  # not under these keys (or a flipped bit): no association, said
                sec.failed("AARQ not deciphered")
                return self._aare(_DIAG_NO_REASON, b"\x0e\x01\x06\x00")
            ic = sec.next()  # the AARE's counter (a block of them promised now, not for an AARQ that failed)
            if ic is None:
                return self._aare(_DIAG_NO_REASON)
            s, f = 0, len(req)
        version, conformance, pdu = self._initiate(req, s, f)
        if version < DLMS_VERSION:
            return self._aare(_DIAG_NO_REASON, b"\x0e\x01\x06\x01")  # InitiateError: DLMS version too low
        self.conformance = conformance & (CONFORMANCE_UTILITY if utility else CONFORMANCE)
        self.client_pdu = pdu
        if not self.conformance & CONF_GET:
            return self._aare(_DIAG_NO_REASON, b"\x0e\x01\x06\x02")  # InitiateError: incompatible conformance
        if pdu < 12:
            return self._aare(_DIAG_NO_REASON, b"\x0e\x01\x06\x03")  # InitiateError: PDU size too short
        if client == READER_CLIENT:
            ok = self._authentic(secret)
            if ok is None:  # no heap for the check now (its module): rejected-transient, ask again; never "wrong
                return self._aare(_DIAG_NO_REASON, None, None, _REJECTED_TRANSIENT)  # secret" for a secret not checked
            if not ok:
                return self._aare(_DIAG_AUTH_FAILED)
        self.client = client
        c = self.conformance
        info = (b"\x08\x00\x06\x5f\x1f\x04\x00" + bytes(((c >> 16) & 0xFF, (c >> 8) & 0xFF, c & 0xFF))
                + bytes((self.max_pdu >> 8, self.max_pdu & 0xFF)) + b"\x00\x07")
        if sec is not None:  # accepted, the client still to prove it holds the keys (HLS pass 3): only that now
            self.sec = sec
            self.pending = True
            return self._aare(_DIAG_AUTH_REQUIRED, sec.accepted(info, ic), sec)
        self.associated = True
        return self._aare(_DIAG_NONE, info)

    def _authentic(self, secret):
        """Whether `secret` is the meter reader's; None when there was no heap to check it."""
        if self.lls is None:
            return False
        try:
            return self.lls(secret) is True
        except MemoryError:  # noqa: B014 - not checked: the caller says so (rejected-transient)
            return None
        except Exception:  # noqa: BLE001 - a check that fails (the flash) is no authentication: refused, never an
            return False  # exception out of apdu()

    def _initiate(self, req, i, end):
        """InitiateRequest: (proposed DLMS version, proposed conformance, client max receive PDU size)."""
        if end - i < 13 or req[i] != 0x01:
            raise Malformed()
        i += 1
        if req[i]:  # dedicated-key present: only with ciphering, which this association does not offer
            raise Malformed()
        i += 1
        for _ in range(2):  # response-allowed, proposed-quality-of-service: both optional one-byte values
            if req[i]:
                i += 1
            i += 1
        if i + 9 > end or req[i + 1] != 0x5F or req[i + 2] != 0x1F or req[i + 3] != 4:
            raise Malformed()
        version = req[i]
        conformance = (req[i + 5] << 16) | (req[i + 6] << 8) | req[i + 7]
        pdu = (req[i + 8] << 8) | req[i + 9] if i + 10 <= end else 0
        if i + 10 > end:
            raise Malformed()
        return version, conformance, pdu

    def _aare(self, diagnostic, info=None, sec=None, result=0):
        """An AARE: rejected with `diagnostic`, or accepted (diagnostic 0; with `sec`, the utility association's
        security, accepted with authentication required and HLS's fields)."""
        if diagnostic and sec is None:
            self.refused += 1
        body = (b"\xa1\x09\x06\x07" + _CONTEXT + bytes((_LN_CIPHER if sec is not None else _LN_NO_CIPHER,))
                + bytes((0xA2, 3, 2, 1, result or (_REJECTED if diagnostic and sec is None else 0)))
                + bytes((0xA3, 5, 0xA1, 3, 2, 1, diagnostic)))
        if sec is not None:  # its title, mechanism, challenge and the InitiateResponse ciphered (app/dlms_hls.py)
            body += info
        elif info is not None:
            body += b"\xbe" + length(len(info) + 2) + b"\x04" + length(len(info)) + info
        return bytes((_AARE,)) + length(len(body)) + body

    def _get(self, req):
        if len(req) < 13:
            raise Malformed()
        invoke = req[2]
        class_id = (req[3] << 8) | req[4]
        obis = bytes(req[5:11])
        attribute = req[11]
        access = None
        if req[12]:  # selective access: the selector and its parameters
            if req[12] != 1 or len(req) < 15:
                raise Malformed()
            if not self.conformance & CONF_SELECTIVE:  # a client that did not negotiate it
                return self._result(invoke, READ_WRITE_DENIED)
            access = (req[13], bytes(req[14:]))
        try:
            value = self.get(class_id, obis, attribute, access, self.client)
        except Exception:  # noqa: BLE001 - a fault in the object model is an answer, not the end of the server
            value = OTHER_REASON
        if isinstance(value, int):
            return self._result(invoke, value)
        room = self._room()
        more = None
        if isinstance(value, bytes):
            pieces = [value]
        elif isinstance(value, list):
            pieces = value
        else:  # a generator: its pieces are made as they go out, only as many as fit a response now
            pieces = []
            more = value
            size = 4
            try:
                for p in more:
                    pieces.append(p)
                    size += len(p)
                    if size > room:
                        break
                else:
                    more = None
            except Exception:  # noqa: BLE001 - as a fault in the object model above
                return self._result(invoke, OTHER_REASON)
        if more is None and sum(len(p) for p in pieces) + 4 <= room:
            return bytes((_GET_RESPONSE, _NORMAL, invoke, 0)) + b"".join(pieces)
        if not self.conformance & CONF_BLOCK_GET or self._room() <= _BLOCK_OVERHEAD:
            return self._result(invoke, OTHER_REASON)
        self._long = list(pieces)
        self._more = more
        self._at = 0
        self._block = 0
        return self._send_block(invoke, self._long)

    def _room(self):
        """The largest answer: the smaller of the two ends' PDUs, less the ciphering's bytes in the utility association
        (glo tag and length, security control, counter, tag)."""
        return min(self.client_pdu, self.max_pdu) - (_CIPHERING if self.sec is not None else 0)

    def _next(self, req):
        if len(req) != 7:
            raise Malformed()
        invoke = req[2]
        number = (req[3] << 24) | (req[4] << 16) | (req[5] << 8) | req[6]
        if self._long is None:
            return self._block_result(invoke, number, _NO_LONG_GET)
        if number != self._block:  # not the block just sent acknowledged: the transfer ends
            self._long = self._more = None
            return self._block_result(invoke, number, _BLOCK_INVALID)
        return self._send_block(invoke, self._long)

    def _pull(self, pieces):
        """The generator's next piece onto `pieces`; False when it has none left. A fault while making it (the flash,
        the heap) raises _Cut: the transfer ends with an error, never as a value cut short that looks whole."""
        if self._more is not None:
            try:
                p = next(self._more, None)
            except Exception:  # noqa: BLE001 - a fault reading what the value is made of
                self._more = None
                raise _Cut() from None
            if p is not None:
                pieces.append(p)
                return True
            self._more = None
        return False

    def _send_block(self, invoke, pieces):
        try:
            return self._fill_block(invoke, pieces)
        except _Cut:  # the block's data-access-result other-reason, marked the last: the client knows it is short
            self._long = self._more = None
            return self._block_result(invoke, self._block + 1, OTHER_REASON)

    def _fill_block(self, invoke, pieces):
        room = self._room() - _BLOCK_OVERHEAD
        taken = []
        while (pieces or self._pull(pieces)) and room > 0:
            p = pieces[0]
            part = p[self._at:self._at + room]
            taken.append(part)
            room -= len(part)
            self._at += len(part)
            if self._at >= len(p):
                pieces.pop(0)
                self._at = 0
        self._block += 1
        last = not pieces and not self._pull(pieces)
        if last:
            self._long = self._more = None
        chunk = b"".join(taken)
        return (bytes((_GET_RESPONSE, _WITH_DATABLOCK, invoke, 1 if last else 0)) + self._block.to_bytes(4, "big")
                + b"\x00" + length(len(chunk)) + chunk)

    def _block_result(self, invoke, number, code):
        self.refused += 1
        return bytes((_GET_RESPONSE, _WITH_DATABLOCK, invoke, 1)) + number.to_bytes(4, "big") + bytes((1, code))

    def _result(self, invoke, code):
        self.refused += 1
        return bytes((_GET_RESPONSE, _NORMAL, invoke, 1, code))


def obis(text):
    """"1.0.1.8.0.255" -> the six bytes of the OBIS code."""
    return bytes(int(p) for p in text.split("."))
