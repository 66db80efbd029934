# SMP over UDP through the modem (port 1337, docs/firmware-engineer.md "SMP over UDP"): one SMP request per datagram,
# answered by the console's own SMP server — the same groups, handlers and authorisation, so locked-mode rules and
# signed envelopes apply exactly as over serial — one request at a time between the two (a request is handled
# without an await). Replies go back through the same socket; a reply larger than a datagram goes in several, the
# first starting with the SMP header whose length counts the rest (as SMP over BLE splits a packet over notifications;
# smpclient's UDP transport and ota reassemble it), so a status read fits the module's 512-byte datagrams.
#
# No amplifier: a reply may be larger than its request only when it can reach no one but the socket's configured
# remote (the dialect's FIXED_PEER: a BC660K "UDP" socket sends only to the address the meter opened it with, so a
# datagram with a spoofed source makes the meter answer its own head-end). On a socket that answers each datagram's
# sender, a reply over AMPLIFY times its request is not sent (counted in `refused_large`).
#
# OS params over UDP reports this transport's buffers, not the console's: buf_size the datagram cap (a larger request
# cannot arrive) and buf_count the socket's receive slots (modem.QUEUE): the request being
# answered holds one until its reply has gone, and a datagram that finds them all taken is dropped, so a client may
# have QUEUE requests in flight (docs/smp-groups.md).
from micropython import const

from app.modem import QUEUE, LinkDown, SendFailed
from app.modem_at import AtError

PORT = const(1337)
AMPLIFY = const(3)


class SmpOverUdp:
    """Serves `server` (loader.smp.Server) on `sock` (app.modem Socket). `run()` is the task."""

    def __init__(self, server, sock, fixed_peer=None):
        self.server = server
        self.sock = sock
        self.fixed_peer = sock.modem.kind.FIXED_PEER if fixed_peer is None else fixed_peer
        self._out = bytearray(sock.modem.max_datagram)
        self._bufs = (sock.modem.max_datagram, QUEUE)
        self.answered = 0
        self.unsent = 0  # the link failed under the reply: the client retries
        self.split = 0  # datagrams beyond a reply's first (a reply larger than one datagram)
        self.refused_large = 0  # an amplifier's reply, not sent

    async def run(self):
        while True:
            req = await self.sock.recv()
            await self.answer(req)

    async def answer(self, req):
        """Answer one request datagram (a buffer, valid until this returns)."""
        server = self.server
        r = server.respond(req, self._bufs)
        # taken before the first await: a console request handled meanwhile sets its own
        after = server.after_reply
        server.after_reply = None
        if r is None:
            return
        hdr, body = r
        r = None
        n = len(hdr) + len(body)
        if not self.fixed_peer and n > AMPLIFY * len(req):
            self.refused_large += 1
        else:
            try:
                await self._send(hdr, body)
                self.answered += 1
            except (LinkDown, SendFailed, AtError):
                self.unsent += 1
        hdr = body = None  # their room is free for the work after the reply
        if after is not None:  # the request was handled: what it asked for after its reply happens either way
            try:
                after()
            except Exception:  # work after a reply must never end the server (the console's rule too)
                server.errors += 1

    async def _send(self, hdr, body):
        """hdr + body in as many datagrams as it takes, each copied into the one datagram buffer."""
        out = self._out
        cap = len(out)
        k = len(hdr)
        out[:k] = hdr
        src = memoryview(body)
        pos = 0
        while True:
            take = min(cap - k, len(src) - pos)
            out[k : k + take] = src[pos : pos + take]
            pos += take
            await self.sock.send(out, k + take)
            if pos >= len(src):
                return
            self.split += 1
            k = 0
