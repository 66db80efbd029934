# The input gate of a recorded or replayed run (meter-emu run --record, meter-emu replay). Outside input — console
# bytes, `ctl` settings, power cuts, resets — reaches the firmware only at a *point*: a call of select.poll (asyncio's
# idle wait and the console's reads), numbered from 0 in each boot. The host queues what arrives and tells the VM
# "pending"; at its next point the VM stops device time where it stands (a wait that the input ended: where the
# throttle stands), sends "due" with the point's number and device time, and blocks until the host has delivered
# everything (console bytes readable on its stdin, settings sent on the bus) and says "resume". The pair (point,
# device µs) is the input's stamp in the recording. A replay gives the VM the stamp of its next input (at boot, then
# with each "resume"): that point waits until device time reaches the stamp, then asks for it, so the firmware meets
# every input at the same point and device time as in the recording. Nothing here runs in an ordinary run (MODE None).
import _emu_bus as bus

_cfg = bus.config.get("gate") or {}
MODE = _cfg.get("mode")  # None | "record" | "replay"
_next = _cfg.get("next")  # replay: the stamp [point, device µs] of this boot's next input (one at a time: the heap)
n = -1  # the current point's number
_pending = [False]
_resume = []


def enter():
    """A point begins (select.poll was called)."""
    global n
    n += 1


def due_us():
    """Replay: the device µs at which this point takes its next input, None when it takes none (more)."""
    if _next is not None and _next[0] == n:
        return _next[1]
    return None


def wanted():
    """Record: the host has input queued."""
    return _pending[0]


def take(v):
    """Deliver the input due at this point, at device time `v`: ask the host and wait until it has delivered."""
    global _next
    _pending[0] = False
    _next = None
    del _resume[:]
    # with the world time at this point: a reset delivered here carries it over the reboot (the host's own idea of
    # it comes from whatever message came last, a status query's among them, which wall time orders)
    bus.send({"t": "due", "n": n, "us": v, "world_ns": bus.stamp()} if bus.stamp is not None else
             {"t": "due", "n": n, "us": v})
    while not _resume:
        bus.wait()
    msg = _resume.pop()
    _next = msg.get("next")
    if msg.get("interrupt"):  # a Ctrl-C on a console whose interrupt is on: raised here, where the input arrives
        raise KeyboardInterrupt


def _on_pending(msg):
    _pending[0] = True


def _on_resume(msg):
    _resume.append(msg)


bus.on("pending", _on_pending)
bus.on("resume", _on_resume)
