"""A DLMS client's side of IS 15959's utility association (client SAP 48: HLS with GMAC, every APDU authenticated and
encrypted, security suite 0) for the firmware tests, on firmware/lib/gcm.py so that it runs in the MicroPython VM
too. Its APDUs are laid out as gurux-dlms 1.0.203 sends them (an AARQ of its captured: context, calling-AP-title,
sender-acse-requirements, mechanism, CtoS, glo-initiateRequest); host_tests/firmware/test_dlms_hls.py also drives
app/cosem.py from the gurux client itself on CPython."""

from gcm import GCM

TITLE = b"ABCDEFGH"  # the client's system title
CTOS = b"0123456789abcdef"  # its challenge
INITIATE = bytes.fromhex("01000000065f1f0400401e5dffff")  # gurux's InitiateRequest: version 6, its conformance
ASSOCIATION = bytes.fromhex("0000280000ff")  # the current association object, 0.0.40.0.0.255
DISCONNECT = bytes.fromhex("000060030aff")  # the disconnect control, 0.0.96.3.10.255


def _len(n):
    return bytes((n,)) if n < 0x80 else bytes((0x81, n))


class Client:
    def __init__(self, ek, ak, title=TITLE, ic=1):
        self.gcm = GCM(ek)
        self.ak = ak
        self.title = title
        self.ic = ic  # the next invocation counter

    def aarq(self, ctos=CTOS, initiate=INITIATE, mechanism=5, context=3, title=None, auth=True):
        title = self.title if title is None else title
        glo = self.glo(0x21, initiate)
        body = b"\xa1\x09\x06\x07\x60\x85\x74\x05\x08\x01" + bytes((context,))
        if title:
            body += b"\xa6" + _len(len(title) + 2) + b"\x04" + _len(len(title)) + title
        if auth:
            body += b"\x8a\x02\x07\x80"
        body += b"\x8b\x07\x60\x85\x74\x05\x08\x02" + bytes((mechanism,))
        if ctos:
            body += b"\xac" + _len(len(ctos) + 2) + b"\x80" + _len(len(ctos)) + ctos
        body += b"\xbe" + _len(len(glo) + 2) + b"\x04" + _len(len(glo)) + glo
        return b"\x60" + _len(len(body)) + body

    def glo(self, tag, apdu, sc=0x30):
        """`apdu` glo-ciphered under the client's next invocation counter (tag: its glo tag)."""
        head = bytes((sc,)) + self.ic.to_bytes(4, "big")
        self.ic += 1
        ct, t = self.gcm.encrypt(self.title + head[1:], apdu, bytes((sc,)) + self.ak, 12)
        body = head + ct + t
        return bytes((tag,)) + _len(len(body)) + body

    def request(self, apdu):
        """A request APDU (get-request 0xC0, action-request 0xC3) glo-ciphered (0xC8, 0xCB)."""
        return self.glo(apdu[0] + 8, apdu)

    def opened(self, glo, server_title):
        """The plain APDU inside the meter's glo-ciphered answer (asserting its form and tag), and its counter."""
        i = 2 if glo[1] < 0x80 else 2 + (glo[1] & 0x7F)
        body = glo[i:]
        assert body[0] == 0x30, glo
        apdu = self.gcm.decrypt(server_title + body[1:5], body[5:-12], b"\x30" + self.ak, body[-12:])
        assert apdu is not None, "the meter's answer does not authenticate"
        return bytes(apdu), int.from_bytes(body[1:5], "big")

    def f(self, challenge, title=None):
        """f(challenge) = SC 0x10, counter, GMAC(SC | AK | challenge) under `title`'s IV (the client's: its f(StoC))."""
        head = b"\x10" + self.ic.to_bytes(4, "big")
        self.ic += 1
        return head + self.gcm.tag((title or self.title) + head[1:], b"\x10" + self.ak + challenge, 12)

    def pass3(self, stoc, invoke=0xC1):
        """HLS pass 3: reply_to_HLS_authentication (class 15, method 1) with f(StoC), glo-ciphered."""
        f = self.f(stoc)
        return self.request(bytes((0xC3, 0x01, invoke, 0x00, 0x0F)) + ASSOCIATION + b"\x01\x01\x09"
                            + bytes((len(f),)) + f)


def aare_fields(aare):
    """The AARE's elements by tag (their values' bytes)."""
    out = {}
    i, end = 2, len(aare)
    if aare[1] & 0x80:
        i = 2 + (aare[1] & 0x7F)
    while i < end:
        tag, n = aare[i], aare[i + 1]
        j = i + 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(aare[j:j + k], "big")
            j += k
        out[tag] = aare[j:j + n]
        i = j + n
    return out
