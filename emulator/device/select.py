# `select` for the emulated board: MicroPython's poll object, whose idle wait follows the virtual clock. Waiting
# with nothing ready skips device time at --speed max (unless a host is talking), and otherwise waits until the
# throttle lets device time reach the deadline (_emu_clock); a wait that times out ends exactly at its deadline, one
# that input ended at the moment the input came. The hardware bus is polled alongside the firmware's objects and
# never reported to it.
import _emu_bus as bus
import _emu_clock as clock
import _emu_gate as gate
import uselect

POLLIN = uselect.POLLIN
POLLOUT = uselect.POLLOUT
POLLERR = uselect.POLLERR
POLLHUP = uselect.POLLHUP

if hasattr(uselect, "select"):
    select = uselect.select

# Emulated hardware with events of its own on the device clock (the NB-IoT module): `wakers` give the next device
# time it needs the VM awake, so an idle wait ends there; `net` gives the real sockets each owner (the NB-IoT module,
# the DLMS port's line) owns, polled alongside the bus and never reported to the firmware, and the owner's
# `net_input(sock)` takes what arrived on one of its own.
wakers = []
net = []
# The VM's poll keeps the file descriptors it polls in an array that grows by 4. When it cannot grow in place, it
# moves the array and re-points every entry at the new one, non-descriptor objects too (the emulated UARTs, whose
# entry holds no pointer): theirs then points at garbage, and the next poll() reads it and the VM dies with SIGSEGV
# (MicroPython 1.28's extmod/modselect.c poll_set_add_fd; a fifth descriptor beside a UART is enough: the bus, the
# DLMS line, and three of the module's sockets). So each poll object's array is made FD_ROOM long at its start,
# before anything else is registered, and never has to grow: descriptors registered later take its free slots.
FD_ROOM = 32


class _Poll:
    def __init__(self):
        self._p = p = uselect.poll()
        for fd in range(FD_ROOM):  # (numbers, not descriptors: only their slots are wanted)
            p.register(1000 + fd, 0)
        for fd in range(FD_ROOM - 1, -1, -1):  # the last slot first, so the array is all free again
            p.unregister(1000 + fd)
        self._bus = bus.sock()
        self._p.register(self._bus, uselect.POLLIN)
        self._stop = None
        self._net = {}  # real socket -> its owner's object, registered while it is open

    def _sync_net(self):
        live = {}
        for owner in net:
            for s in owner.net_sockets():
                live[s.sock] = (owner, s)  # each socket's input goes to its own owner only
        for k in list(self._net):
            if k not in live:
                del self._net[k]
                try:
                    self._p.unregister(k)
                except (OSError, KeyError):
                    pass
        if len(live) >= FD_ROOM - 2:  # the bus, and a descriptor the firmware may register
            raise OSError("select shim: %d real sockets, room for %d" % (len(live), FD_ROOM - 2))
        for k, s in live.items():
            if k not in self._net:
                self._net[k] = s
                self._p.register(k, uselect.POLLIN)

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        self._p.register(obj, eventmask)

    def unregister(self, obj):
        self._p.unregister(obj)

    def modify(self, obj, eventmask):
        self._p.modify(obj, eventmask)

    def poll(self, timeout=-1):
        return self._wait(timeout)

    def ipoll(self, timeout=-1, flags=0):
        return iter(self._wait(timeout))

    def _ready(self, res):
        out = []
        saw_bus = False
        for r in res:
            if r[0] is self._bus:
                saw_bus = True
            elif r[0] in self._net:
                saw_bus = True  # hardware input: handled here, not the firmware's
                if not clock.can_skip():
                    clock.woken(self._stop)  # it came now, in device time as the throttle has it
                owner, s = self._net[r[0]]
                bus.shim_work(owner.net_input, s)
            else:
                out.append((r[0], r[1]))
        if saw_bus:
            bus.pump()
        return out, saw_bus

    def _wait(self, timeout):
        bus.idle()
        deadline = None if timeout is None or timeout < 0 else clock.now_us() + int(timeout) * 1000
        clock.take_credit()
        gated = gate.MODE is not None
        if gated:
            gate.enter()
        taken = False  # record: one hand-over per point, then the firmware runs (and reads what came)
        while True:
            stop = deadline
            self._stop = deadline
            if net:
                self._sync_net()
            for w in wakers:
                due = w()
                if due is not None and (stop is None or due < stop):
                    stop = due if due > clock.now_us() else clock.now_us()
            if gated:
                due = gate.due_us()  # replay: this point takes an input at that device time
                if due is not None:
                    if due <= clock.now_us():
                        gate.take(clock.now_us())
                        continue
                    if stop is None or due < stop:
                        stop = due
                elif gate.wanted() and not taken:  # record: the host has input queued
                    gate.take(clock.now_us())
                    taken = True
                    continue
            if stop is None:
                wall_ms = -1
            else:
                clock.wdt_check(clock.now_us())
                if clock.now_us() >= stop or clock.can_skip():
                    wall_ms = 0
                else:
                    wall_ms = (clock.wall_us_to(stop) + 999) // 1000
                    left = clock.hold_left_us()
                    if left and wall_ms > left // 1000 + 1:
                        wall_ms = left // 1000 + 1  # a network hold ends first: skipping resumes there
            out, saw_bus = self._ready(self._p.poll(wall_ms))
            bus.take_interrupt()
            if out:
                if not gated and not clock.can_skip():
                    clock.woken(deadline)  # the input came now, in device time as the throttle has it
                return out
            if saw_bus:
                if gated and gate.wanted():
                    clock.woken(stop)  # input queued during the wait: it arrives where the throttle stands
                continue
            if stop is None:
                clock.woken(None)
                continue
            if clock.can_skip() or clock.wall_us_to(stop) <= 0:
                clock.skip_until(stop)  # nothing came: the wait ends exactly at its deadline (or a replayed input)
                if stop == deadline and clock.now_us() >= deadline and gate.due_us() != deadline:
                    return []


def poll():
    return _Poll()
