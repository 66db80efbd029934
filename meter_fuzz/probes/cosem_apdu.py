"""The DLMS application layer of the public client (app/cosem.py `Association.apdu`): the APDUs a client on the
optical port, an RS-485 bus or the head-end's wrapper can send once an HDLC link is up, in sequence on one
association (AARQ, GET, RLRQ and anything else), answered from a small object model.

Input: records `[u8 length][APDU]` (a record's length past the input's end takes what is left), at most 16.

apdu() documents no exception for any request (a refusal is an AARE, a GET.response with a data-access-result or an
ExceptionResponse): ERRORS names an exception that is never raised. Invariants (fuzzcore.Violation):
- every answer is an AARE (0x61), RLRE (0x63), GET.response (0xC4) or ExceptionResponse (0xD8), whose BER length (for
  AARE and RLRE) is the rest of it;
- a GET is answered with data only on an association that an AARQ of the public client opened (logical names, no
  ciphering, no password) and no RLRQ, refused AARQ or malformed AARQ has closed since; the data is the object
  model's own for that object, and a GET.response never exceeds the client's largest PDU;
- the negotiated conformance is within what the meter offers.
"""

from fuzzcore import check

from app import cosem


class NoError(Exception):
    """Never raised: Association.apdu documents no exception for any request."""


ERRORS = (NoError,)
MODULES = ("app/cosem.py",)
MEM_BASE = 32 * 1024
MEM_PER_BYTE = 64
_VOLTAGE = cosem.obis("1.0.12.7.0.255")
_LONG = cosem.obis("0.0.42.0.0.255")
_VALUES = {
    (3, _VOLTAGE, 2): cosem.number(cosem.LONG_UNSIGNED, 23012),
    (3, _VOLTAGE, 3): cosem.scaler_unit(-2, 35),
    (1, _LONG, 2): cosem.octets(bytes(range(100))),  # longer than a small client PDU
}
_PUBLIC = bytes.fromhex("a109060760857405080101")


def _model(cls, obis, attr):
    v = _VALUES.get((cls, bytes(obis), attr))
    if v is None:
        return cosem.OBJECT_UNDEFINED if attr != 0xEE else cosem.READ_WRITE_DENIED
    return v


def _records(data):
    out = []
    i = 0
    n = len(data)
    while i < n and len(out) < 16:
        k = data[i]
        out.append(bytes(data[i + 1:i + 1 + k]))
        i += 1 + k
    return out


def run(data):
    a = cosem.Association(_model)
    answers = []
    for req in _records(data):
        was = a.associated
        r = a.apdu(req)
        check(type(r) is bytes and len(r) >= 3, "answer %r" % (r,))
        tag = r[0]
        check(tag in (0x61, 0x63, 0xC4, 0xD8), "answer tag 0x%02x" % tag)
        if tag in (0x61, 0x63):
            check(r[1] == len(r) - 2, "a BER length that is not the rest of the answer")
        if tag == 0x61:
            accepted = b"\xa2\x03\x02\x01\x00" in r
            check(accepted == a.associated, "AARE result and association disagree")
            if accepted:
                check(_PUBLIC in req and not (a.conformance & ~cosem.CONFORMANCE), "an association not offered")
        elif tag == 0xC4:
            check(len(req) >= 13 and req[0] == 0xC0 and req[1] == 1, "a GET.response to %r" % (req[:4],))
            check(was and a.associated, "a GET answered without an association")
            check(len(r) <= a.client_pdu or r[3] == 1, "a GET.response over the client's PDU")
            if r[3] == 0:
                key = ((req[3] << 8) | req[4], bytes(req[5:11]), req[11])
                check(r[4:] == _VALUES.get(key), "data for %r that the model does not hold" % (key,))
        elif tag == 0x63:
            check(not a.associated, "an association after its release")
        answers.append(tag)
    return answers
