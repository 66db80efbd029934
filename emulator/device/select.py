# `select` for the emulated board: MicroPython's poll object, whose idle wait follows the virtual clock. Waiting
# with nothing ready skips device time at --speed max (unless a host is talking), and otherwise waits real time
# scaled by the speed. The hardware bus is polled alongside the firmware's objects and never reported to it.
import _emu_bus as bus
import _emu_clock as clock
import uselect

POLLIN = uselect.POLLIN
POLLOUT = uselect.POLLOUT
POLLERR = uselect.POLLERR
POLLHUP = uselect.POLLHUP

if hasattr(uselect, "select"):
    select = uselect.select


class _Poll:
    def __init__(self):
        self._p = uselect.poll()
        self._bus = bus.sock()
        self._p.register(self._bus, uselect.POLLIN)

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
            else:
                out.append((r[0], r[1]))
        if saw_bus:
            bus.pump()
        return out, saw_bus

    def _wait(self, timeout):
        bus.idle()
        deadline = None if timeout is None or timeout < 0 else clock.now_us() + int(timeout) * 1000
        while True:
            if deadline is None:
                wall_ms = -1
            else:
                now = clock.now_us()
                clock.wdt_check(now)
                rem = deadline - now
                if rem <= 0 or clock.can_skip():
                    wall_ms = 0
                else:
                    wall_ms = int(rem / clock.rate() / 1000) + 1
            out, saw_bus = self._ready(self._p.poll(wall_ms))
            if out:
                return out
            if deadline is None or saw_bus:
                continue
            if deadline - clock.now_us() <= 0:
                return []
            if clock.can_skip():
                clock.skip_until(deadline)
                return []


def poll():
    return _Poll()
