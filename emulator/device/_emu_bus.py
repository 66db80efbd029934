# Device side of the emulator's hardware bus: a Unix stream socket to the host process carrying one JSON object
# per line. The host plays the board's hardware (power, reset line, RTC battery, input pins, flash faults); the
# shims (machine, time, select, the flash block device) talk to it through this module only.
import gc
import json
import socket
import struct
import sys

_sock = None
_rx = b""
_chunk = bytearray(512)  # preallocated: the shims must not take the board's heap in bursts
_handlers = {}
config = {}
stamp = None  # set by the RTC: world time, sent with every halt so the host carries it across the power cut
# The shims' room for their own work at run time (a status reply, a halt): on a board that work is C outside the GC
# heap, here it allocates in the heap the firmware shares. The ROM keeps this block (part of the shims' share, taken
# before the ballast); when the firmware's long-running heap has no hole left for a shim's need, the block is given
# up for it and taken back afterwards, so the emulator never ends the firmware with its own MemoryError.
_spare = [bytearray()][:0]
dropped = 0  # shim work lost to a full heap (shim_work)
_spare_bytes = [0]


def keep_spare(n):
    _spare_bytes[0] = n
    _spare[:] = [bytearray(n)] if n > 0 else []


def start(path):
    global _sock
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The unix port's connect() takes a raw sockaddr for AF_UNIX.
    if path.startswith("@"):  # abstract namespace: the name is exactly the bytes after the NUL
        addr = b"\0" + path[1:].encode()
    else:
        addr = path.encode() + b"\0"
    s.connect(struct.pack("H", socket.AF_UNIX) + addr)
    _sock = s
    send({"t": "hello"})
    msg = _read_blocking("config")
    config.update(msg)
    s.setblocking(False)
    return config


def sock():
    return _sock


def on(kind, fn):
    _handlers[kind] = fn


_cut = [False]  # send() began a message and did not finish it (a MemoryError mid-way): shim_work ends its line


def send(msg):
    data = (json.dumps(msg) + "\n").encode()
    _cut[0] = True
    view = memoryview(data)
    while view:
        try:
            n = _sock.send(view)
        except OSError as e:
            if e.errno == 11:  # EAGAIN: the host drains its side continuously
                continue
            raise
        view = view[n:]
    _cut[0] = False


def _lines():
    global _rx
    out = []
    while True:
        i = _rx.find(b"\n")
        if i < 0:
            return out
        out.append(_rx[:i])
        _rx = _rx[i + 1:]


def _dispatch(line):
    shim_work(_handle, line)  # the handlers set state or answer: doing one again after a failed start is harmless


def shim_work(fn, arg):
    """fn(arg), the shims' own work inside the board's heap: on a MemoryError (the firmware has the heap) once more
    with the shims' room given back, and dropped if it fails again (a query times out on the host, a datagram is
    lost on the radio) rather than ending the firmware. fn must be safe to run again after a MemoryError: the
    second try has to find the work where the first left it (the module's schedule keeps an event until its work is
    done, _emu_modem.Module.advance; a datagram that left the schedule before its URC was built was once lost with
    no counter showing it)."""
    global dropped
    try:
        fn(arg)
    except MemoryError:  # noqa: B014
        _spare.clear()  # the shims' own room, for this work only (clear: no reference left in this frame)
        gc.collect()
        if _cut[0]:
            _cut[0] = False
            _end_line()  # ends the message the failure cut short (the host drops that line)
        try:
            fn(arg)
        except MemoryError:  # noqa: B014
            dropped += 1
        gc.collect()
    if not _spare:
        try:
            _spare.append(bytearray(_spare_bytes[0]))
        except MemoryError:  # noqa: B014
            pass  # taken back at a later message


def with_room(fn, arg):
    """fn(arg) with the shims' room given back for it (a model's work inside the board's heap, which the firmware
    may have filled: the module's model decoding a datagram), taken again after. A MemoryError even so is counted
    in `dropped` (the work is lost, as a datagram on the radio) and never reaches the firmware."""
    global dropped
    _spare.clear()  # not pop(): the popped room would stay referenced from this frame's stack until it returns
    try:
        fn(arg)
    except MemoryError:  # noqa: B014
        dropped += 1
    finally:
        if not _spare:
            try:
                _spare.append(bytearray(_spare_bytes[0]))
            except MemoryError:  # noqa: B014
                pass  # taken back at a later message


def _handle(line):
    msg = json.loads(line)
    fn = _handlers.get(msg.get("t"))
    if fn is not None:
        fn(msg)


def pump():
    """Handle every message the host has sent so far, without waiting."""
    global _rx
    got = False
    while True:
        try:
            n = _sock.readinto(_chunk)
        except OSError as e:
            if e.errno == 11:
                break
            raise
        if n is None:
            break
        if not n:
            _power_lost()
        _rx += _chunk[:n]
        got = True
    if got:
        for line in _lines():
            _dispatch(line)


_waiter = []


def wait():
    """Block until the host sends something, then handle it (the input gate's hand-over)."""
    if not _waiter:
        import uselect

        p = uselect.poll()
        p.register(_sock, uselect.POLLIN)
        _waiter.append(p)
    _waiter[0].poll(-1)
    pump()


def _read_blocking(kind):
    global _rx
    while True:
        for line in _lines():
            msg = json.loads(line)
            if msg.get("t") == kind:
                return msg
            fn = _handlers.get(msg.get("t"))
            if fn is not None:
                fn(msg)
        chunk = _sock.recv(4096)
        if not chunk:
            _power_lost()
        _rx += chunk


halt_hooks = []  # callables that add what the host must carry over a reset to the halt message
idle_hooks = []  # callables run at the VM's idle points (the select shim's wait, time.sleep): periodic reports


def idle():
    for fn in idle_hooks:
        fn()


_HALT_KEYS = ("t", "cause", "op", "off_s", "us", "world_ns")  # what a halt is without the hooks' extras


def halt(msg):
    """Tell the host what happened (power cut, reset) and wait to be ended: the host kills this process. A board's
    reset never fails for want of heap, so neither does this: the message is built in the heap the firmware may have
    filled (a reset once raised MemoryError here on an ESP32 heap in pieces, and the meter never reset). On a
    MemoryError it goes again with the shims' room given back, then without the hooks' extras (the host then lacks
    this boot's truth totals), and at worst the VM ends with status 4, which the host takes as a hard reset."""
    if stamp is not None:
        msg["world_ns"] = stamp()
    try:
        _halt_send(msg)
    except MemoryError:  # noqa: B014
        _spare.clear()
        gc.collect()
        _end_line()  # ends a line the failure may have cut short (the host drops it)
        try:
            _halt_send(msg)  # the hooks again: each sets its keys, so a second run is the first one's result
        except MemoryError:  # noqa: B014
            try:
                bare = {}
                for k in _HALT_KEYS:
                    if k in msg:
                        bare[k] = msg[k]
                msg = None
                gc.collect()
                _end_line()
                send(bare)
            except MemoryError:  # noqa: B014
                sys.exit(4)
    _sock.setblocking(True)
    while True:
        if not _sock.readinto(_chunk):  # the preallocated chunk: nothing to allocate while the power goes
            _power_lost()


def _halt_send(msg):
    for fn in halt_hooks:
        fn(msg)
    send(msg)


def _end_line():
    while True:
        try:
            if _sock.send(b"\n"):
                return
        except OSError as e:
            if e.errno != 11:
                raise


def _power_lost():
    # The host went away: a board whose supply vanished stops executing at once.
    sys.exit(3)


# A Ctrl-C on the console, raised at the VM's next point (the select shim's wait, a sleep), not by SIGINT: this
# VM raises KeyboardInterrupt from its signal handler wherever it is, and one that lands in the garbage collector
# leaves the heap locked ("FATAL: uncaught NLR"); a board raises a pending interrupt at the next jump instead.
# The host sends it only while the interrupt character is on; when the firmware has turned it off since (a point
# comes later than a board's next jump), it is dropped rather than raised where the firmware sealed the console.
_interrupt = [False]


def _on_interrupt(msg):
    _interrupt[0] = True


on("interrupt", _on_interrupt)


_proc = []  # the host's /proc/self, outside the firmware's filesystem (a VfsPosix not mounted anywhere)


def _kbd_intr_on():
    try:
        if not _proc:
            import os

            _proc.append(os.VfsPosix("/proc/self"))
        with _proc[0].open("/status", "r") as f:  # the root is prefixed to a path from "/"
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & 2)  # SIGINT (2): bit 1
    except OSError:
        pass
    return False


def take_interrupt():
    """Raise the console's Ctrl-C here if one came (called at the VM's points); tell the host it was taken."""
    if _interrupt[0]:
        _interrupt[0] = False
        raised = _kbd_intr_on()
        send({"t": "interrupted", "raised": raised})
        if raised:
            raise KeyboardInterrupt
