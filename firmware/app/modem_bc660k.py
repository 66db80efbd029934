# The Quectel BC660K-GL dialect (NB-IoT; docs/firmware-engineer.md "The modem driver"): the module's own commands
# and URCs, behind the transport in app/modem.py. Hex data both ways (AT+QICFG="dataformat",1,1), UDP sockets in
# direct-push mode on context 0, a datagram pushed as `+QIURC: "recv",<id>,<len>,"<hex>"` with no sender address.
# Another module is another file with the same names (Dialect, LINE_MAX, DATA_HEAD, MAX_DATAGRAM, PWRKEY_MS, SOCKETS,
# FIXED_PEER), listed in app/modem.py DIALECTS.
from micropython import const

from app.modem_at import REG_SEARCHING, AtError, number, starts

MAX_DATAGRAM = const(512)  # bytes per datagram the module takes in one AT+QISEND (and pushes in one URC)
# the longest line it sends, +QIURC: "recv",<id 0-4>,<len ≤ 512>,"<hex>", as the channel holds it: 22 bytes of head,
# the datagram (its hex is decoded as it arrives: DATA_HEAD), the closing quote
LINE_MAX = const(22 + MAX_DATAGRAM + 1)
PWRKEY_MS = const(700)  # PWRKEY held low ≥ 500 ms switches the module on (or off)
SOCKETS = const(5)  # connect ids 0..4
FIXED_PEER = True  # a "UDP" socket sends only to the remote it was opened with (app/modem_smp.py: no amplifier)
_CONTEXT = const(0)  # the PDP context id of AT+QIOPEN on BC660K (1 on BC66)
_PUSH = const(1)  # access mode: received data pushed in the URC
_SHORT_MS = const(1000)
_OPEN_MS = const(5000)
_SEND_MS = const(10000)
_SOCKET_IN_USE = const(563)  # +CME ERROR to AT+QIOPEN for an id the module still holds
# The module's +CME ERROR (AT+CMEE=1) and +QIOPEN <err> numbers stay numbers on the meter: names would cost every
# meter RAM, and the host names them (meterkit.boards.MODEM_ERRORS).

# PSM off (AT+CPSMS=0): a mains-powered meter must stay reachable by its head-end; a module left in PSM by an earlier
# setting (it is kept in the module's NVRAM) could be paged by nobody until the meter next sent
_SETUP = (b"ATE0", b"AT+CMEE=1", b'AT+QICFG="dataformat",1,1', b"AT+CPSMS=0", b"AT+CEREG=1")
_CEREG = b"+CEREG: "
_QIOPEN = b"+QIOPEN: "
_RECV = b'+QIURC: "recv",'
DATA_HEAD = _RECV  # the URC whose quoted hex the channel decodes as it arrives (app/modem_at.py)
_CLOSED = b'+QIURC: "closed",'
_RDY = b"RDY"
_SEND_OK = b"SEND OK"
_SEND_FINALS = (_SEND_OK, b"SEND FAIL")
_KNOWN = (b"+CPIN:", b"+IP:", b"+QNBIOTEVENT:", b"+QIURC:", b"+CSCON:", b"+QATSLEEP", b"+QATWAKEUP")


class Dialect:
    """BC660K commands over an AtChannel; URCs reported to `link` (app/modem.py Modem): registration(stat),
    opened(id, err), datagram(id, size, buf, start, end) with the data at buf[start:end] (decoded by the channel),
    closed(id), restarted();
    a data URC it cannot parse adds one to link.bad_urcs."""

    send_ms = _SEND_MS  # AT+QISEND's timeout: a class value, which a test shortens on its instance

    def __init__(self, link):
        self.link = link

    async def start(self, at):
        """Echo off, numeric errors, hex data, registration URCs on."""
        for cmd in _SETUP:
            await at.command(cmd, _SHORT_MS)

    async def registration(self, at):
        """The registration stat now (AT+CEREG? → +CEREG: <n>,<stat>)."""
        await at.command(b"AT+CEREG?", _SHORT_MS, prefix=_CEREG)
        for line in at.info:
            n, i = number(line, len(_CEREG), len(line))
            if n >= 0 and i < len(line) and line[i] == 44:
                stat, _ = number(line, i + 1, len(line))
                return stat
        return REG_SEARCHING

    async def open(self, at, sid, ip, rport, lport):
        """Ask for a UDP socket; the outcome comes later as +QIOPEN (link.opened). A socket id the module still
        holds (563: the link was lost under a send that timed out, or a probe the module missed, while its socket
        stayed open) is closed on the module and asked for again."""
        cmd = ('AT+QIOPEN=%d,%d,"UDP","%s",%d,%d,%d' % (_CONTEXT, sid, ip, rport, lport, _PUSH)).encode()
        try:
            await at.command(cmd, _OPEN_MS)
        except AtError as e:
            if e.code != _SOCKET_IN_USE:
                raise
            await self.close(at, sid)
            await at.command(cmd, _OPEN_MS)

    async def close(self, at, sid):
        await at.command(b"AT+QICLOSE=%d" % sid, _OPEN_MS)

    async def send(self, at, sid, data, n):
        """Send data[:n] as one datagram; True on SEND OK, False on SEND FAIL (the radio's buffer is full)."""
        if n > MAX_DATAGRAM:
            raise ValueError("datagram over %d bytes" % MAX_DATAGRAM)
        # the data goes out as hex in pieces (at.command); some firmware answers OK before SEND OK: not final here
        cmd = (b'AT+QISEND=%d,%d,"' % (sid, n), data, n, b'"')
        return await at.command(cmd, self.send_ms, finals=_SEND_FINALS, skip_ok=True) == _SEND_OK

    def urc(self, buf, n):
        link = self.link
        if starts(buf, n, _RECV):
            sid, i = number(buf, len(_RECV), n)
            size, i = number(buf, i + 1, n)
            # ,"<hex>" closes the line
            if sid < 0 or size < 0 or i + 3 > n or buf[i] != 44 or buf[i + 1] != 34 or buf[n - 1] != 34:
                link.bad_urcs += 1
            else:
                link.datagram(sid, size, buf, i + 2, n - 1)
            return True
        if starts(buf, n, _CEREG):
            stat, _ = number(buf, len(_CEREG), n)
            link.registration(stat)
            return True
        if starts(buf, n, _QIOPEN):
            sid, i = number(buf, len(_QIOPEN), n)
            err, _ = number(buf, i + 1, n)
            link.opened(sid, err)
            return True
        if starts(buf, n, _CLOSED):
            sid, _ = number(buf, len(_CLOSED), n)
            link.closed(sid)
            return True
        if n == 3 and starts(buf, n, _RDY):
            link.restarted()
            return True
        for k in _KNOWN:
            if starts(buf, n, k):
                return True
        return False
