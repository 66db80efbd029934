"""The DLMS application layer (app/cosem.py `Association.apdu`): the APDUs a client on the optical port, an RS-485
bus or the head-end's wrapper can send once an HDLC link is up, in sequence on one association (AARQ, GET, RLRQ and
anything else), answered from a small object model. The client's SAP is the public client's (16), the meter
reader's (32, whose secret is SECRET) or the utility's (48, whose HLS association needs keys this probe does not give:
it is never opened here; meter_fuzz/probes/dlms_utility.py opens it), by the input's length.

Input: records `[u8 length][APDU]` (a record's length past the input's end takes what is left), at most 16.

apdu() documents no exception for any request (a refusal is an AARE, a GET.response with a data-access-result or an
ExceptionResponse): ERRORS names an exception that is never raised. Invariants (fuzzcore.Violation):
- every answer is an AARE (0x61), RLRE (0x63), GET.response (0xC4) or ExceptionResponse (0xD8), whose BER length (for
  AARE and RLRE) is the rest of it;
- a GET is answered with data only on an association that an AARQ opened (logical names, no ciphering; the public
  client naming no mechanism, or the meter reader low-level security with the secret the meter checked and found
  right; never another client SAP) and no RLRQ, refused AARQ or malformed AARQ has closed since; the data is the
  object model's own for that object, and a GET.response never exceeds the smaller PDU of the two ends;
- GET with block transfer: a datablock answers a GET.request normal (block 1) or next; the blocks of one transfer are
  numbered 1, 2, ... and, put together, are the model's value for the object; a next out of turn or with no
  transfer under way gets a data-access-result, never data;
- the negotiated conformance is within what the meter offers.
"""

import fuzzcore
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
_LIST = cosem.obis("0.0.40.0.0.255")
_VALUES = {
    (3, _VOLTAGE, 2): cosem.number(cosem.LONG_UNSIGNED, 23012),
    (3, _VOLTAGE, 3): cosem.scaler_unit(-2, 35),
    (1, _LONG, 2): cosem.octets(bytes(range(100))),  # longer than a small client PDU
    # a long value in pieces, as the object list is given (longer than the meter's PDU)
    (15, _LIST, 2): [cosem.array_head(40)] + [cosem.structure(cosem.number(cosem.LONG_UNSIGNED, k),
                                                              cosem.octets(bytes(k % 7 + 1))) for k in range(40)],
}


def _whole(v):
    return v if isinstance(v, bytes) else b"".join(v)
_PUBLIC = bytes.fromhex("a109060760857405080101")
SECRET = b"12345678"
_CLIENTS = (cosem.PUBLIC_CLIENT, cosem.READER_CLIENT, 48)


def _model(cls, obis, attr, access=None, client=cosem.PUBLIC_CLIENT):
    if access is not None:
        return cosem.READ_WRITE_DENIED  # (selective access is dlms_objects' to apply)
    v = _VALUES.get((cls, bytes(obis), attr))
    if v is None:
        return cosem.OBJECT_UNDEFINED if attr != 0xEE else cosem.READ_WRITE_DENIED
    return v


def run(data):
    checked = []  # the secrets the association asked about, and whether they were right

    def lls(secret):
        checked.append(secret == SECRET)
        return checked[-1]

    a = cosem.Association(_model, lls=lls)
    client = _CLIENTS[len(data) % 3]
    answers = []
    transfer = None  # (the object's key, the number of the last block, the data so far) of a transfer under way
    for req in fuzzcore.records(data):
        was = a.associated
        asked = len(checked)
        r = a.apdu(req, client)
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
                check(a.client == client and (client == cosem.PUBLIC_CLIENT and len(checked) == asked or client ==
                                              cosem.READER_CLIENT and checked[asked:] == [True]),
                      "an association of client %d without its authentication" % client)
        elif tag == 0xC4:
            normal = len(req) >= 13 and req[0] == 0xC0 and req[1] == 1
            check(normal or (len(req) == 7 and req[:2] == b"\xc0\x02"), "a GET.response to %r" % (req[:4],))
            check(was and a.associated, "a GET answered without an association")
            check(len(r) <= min(a.client_pdu, cosem.MAX_PDU) or r[3] == 1 or (r[1] == 2 and r[8] == 1),
                  "a GET.response over the smaller PDU")
            key = ((req[3] << 8) | req[4], bytes(req[5:11]), req[11]) if normal else None
            if r[1] == 1:
                check(normal, "a normal GET.response to a next")
                if r[3] == 0:
                    check(r[4:] == _whole(_VALUES.get(key)), "data for %r that the model does not hold" % (key,))
                transfer = None
            else:
                check(r[1] == 2 and len(r) >= 10, "a GET.response of kind %d" % r[1])
                number = int.from_bytes(r[4:8], "big")
                if r[8] == 1:  # a data-access-result: the transfer (if any) is over
                    check(not normal and (transfer is None or number != transfer[1]), "a next in turn refused")
                    transfer = None
                else:
                    check(r[8] == 0, "a datablock of choice %d" % r[8])
                    if normal:
                        check(number == 1 and key in _VALUES, "a transfer of %r from block %d" % (key, number))
                        transfer = (key, 0, b"")
                    check(transfer is not None and number == transfer[1] + 1, "block %d out of turn" % number)
                    n, i = r[9], 10
                    if n & 0x80:
                        n, i = int.from_bytes(r[10:10 + (n & 0x7F)], "big"), 10 + (n & 0x7F)
                    check(len(r) == i + n, "a block whose length is not the rest of it")
                    transfer = (transfer[0], number, transfer[2] + r[i:])
                    if r[3]:  # the last block: together they are the value
                        check(transfer[2] == _whole(_VALUES[transfer[0]]), "blocks that are not %r" % (transfer[0],))
                        transfer = None
        if tag != 0xC4:
            transfer = None
        elif tag == 0x63:
            check(not a.associated, "an association after its release")
        answers.append(tag)
    return answers
