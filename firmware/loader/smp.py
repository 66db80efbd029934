# The SMP (mcumgr) core: the 8-byte header, dispatch to registered handlers by (group, command, operation), and
# responses in the version the client used. Handlers take the request map and return the response map, or raise
# SmpError. Used by the application's console task and by recovery mode alike.
from micropython import const

import cbor

OP_READ = const(0)
OP_READ_RSP = const(1)
OP_WRITE = const(2)
OP_WRITE_RSP = const(3)

GROUP_OS = const(0)
GROUP_IMAGE = const(1)
_GROUP_FIRST_APP = const(64)

# MCUmgr result codes (MGMT_ERR_*)
_EOK = const(0)
_EUNKNOWN = const(1)
ENOMEM = const(2)
EINVAL = const(3)
_ETIMEOUT = const(4)
ENOENT = const(5)
EBADSTATE = const(6)
_EMSGSIZE = const(7)
ENOTSUP = const(8)
_ECORRUPT = const(9)
EBUSY = const(10)
EACCESSDENIED = const(11)

HEADER_SIZE = const(8)
# Largest SMP packet (header + CBOR payload) the console decoder accepts: reported as buf_size by OS params.
BUF_SIZE = const(2048)


class SmpError(Exception):
    """An error response: `rc` for SMP v1 clients; `group_rc` (the group's own code) for v2 clients."""

    def __init__(self, rc, group_rc=None):
        super().__init__(rc)
        self.rc = rc
        self.group_rc = group_rc


def header(version, op, length, group, seq, cmd):
    return bytes((((version & 3) << 3) | (op & 7), 0, length >> 8, length & 0xFF, group >> 8, group & 0xFF,
                  seq & 0xFF, cmd & 0xFF))


class Server:
    def __init__(self):
        self._handlers = {}
        self.requests = 0
        self.errors = 0
        self.after_reply = None  # a callable set by a handler, run once its response has been written
        # (buf_size, buf_count) of the transport the request being handled came through, which OS params reports;
        # None for the console (the OS group works its figures out from the board)
        self.bufs = None
        self.op = OP_READ  # the request being handled: a handler taking both ops writes only on OP_WRITE
        # callables that give back heap the meter can do without for a moment (the app's DLMS session), each saying
        # whether it freed something: a signed command or an upload's check outranks them (make_room)
        self.releasers = []

    def register(self, group, cmd, handler, read=True, write=True):
        if read:
            self._handlers[key(group, cmd, OP_READ)] = handler
        if write:
            self._handlers[key(group, cmd, OP_WRITE)] = handler

    def handle(self, frame):
        """The response packet for one request packet, or None for packets that get no answer."""
        r = self.respond(frame)
        return None if r is None else r[0] + r[1]

    def respond(self, frame, bufs=None):
        """(header, body) of the response to one request packet, or None for packets that get no answer. A handler
        returns its response map, or bytes: the map already encoded (a reply kept from an earlier request). A read
        the heap cannot serve is answered once more after a collection, then EBUSY (retry); a write once more only when
        the releasers gave heap back (make_room), then ENOMEM. `bufs`: the transport's (buf_size, buf_count), None for
        the console's (see self.bufs)."""
        self.bufs = bufs
        if len(frame) < HEADER_SIZE:
            return None
        b0 = frame[0]
        op = b0 & 7
        if op not in (OP_READ, OP_WRITE):
            return None
        version = (b0 >> 3) & 3
        group = (frame[4] << 8) | frame[5]
        self.requests += 1
        self.op = op
        try:
            body = self._body(frame, group, op)
        except MemoryError:
            body = None
        if body is None:
            # A read changes nothing: what the failed attempt left is collected, then once more. A write runs again
            # only with heap given back: a handler leaves nothing half-done on a MemoryError (a signed command's id
            # is recorded after its check; an upload's chunk is taken once, by its offset).
            if op == OP_READ or self.make_room():
                import gc

                gc.collect()
                try:
                    body = self._body(frame, group, op)
                except MemoryError:
                    pass
            if body is None:
                self.errors += 1
                body = _rc(EBUSY if op == OP_READ else ENOMEM)
        return header(version, op + 1, len(body), group, frame[6], frame[7]), body

    def make_room(self):
        """Ask the releasers for their heap; whether any gave some back."""
        freed = False
        for fn in self.releasers:
            freed = fn() or freed
        return freed

    def _body(self, frame, group, op):
        try:
            if ((frame[2] << 8) | frame[3]) != len(frame) - HEADER_SIZE:
                raise SmpError(EINVAL)
            try:
                req = cbor.loads(memoryview(frame)[HEADER_SIZE:]) if len(frame) > HEADER_SIZE else {}
            except ValueError:
                raise SmpError(EINVAL) from None
            if not isinstance(req, dict):
                raise SmpError(EINVAL)
            fn = self._handlers.get(key(group, frame[7], op))
            if fn is None:
                raise SmpError(ENOTSUP)
            rsp = fn(req)
            return rsp if type(rsp) is bytes else cbor.dumps(rsp)
        except SmpError as e:
            self.errors += 1
            if (frame[0] >> 3) & 3 and e.group_rc is not None:
                return cbor.dumps({"err": {"group": group, "rc": e.group_rc}})
            return _rc(e.rc)


def key(group, cmd, op):
    """A handler's key in Server._handlers: one small int (a tuple key took a heap block per handler: 27 in the
    app, 1.6 KB of the VM's heap, issue 19)."""
    return (group << 10) | (cmd << 2) | op


def _rc(rc):
    return bytes((0xA1, 0x62, 0x72, 0x63, rc))  # CBOR {"rc": rc} for rc < 24
