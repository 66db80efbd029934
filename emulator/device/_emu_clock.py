# The virtual device clock. Device time = real time x rate, plus the idle time skipped at --speed max. While a host
# talks on a port (the host sets "hold"), device time runs no faster than real time and skips nothing, so a host
# waiting for a reply never sees a device-side timeout fire early.
import _emu_bus as bus
import utime

_real_last = utime.ticks_us()
_real_acc = 0
_v0 = 0
_r0 = 0
_rate = 1.0
_max = False
_hold = False
_until = None  # device µs where `ctl run` ends: the speed drops to 1x exactly there
_wdt_deadline = None
_wdt_timeout = 0
_wdt_reported = None  # real time of the last feed reported to the host


def _real_us():
    global _real_last, _real_acc
    t = utime.ticks_us()
    _real_acc += utime.ticks_diff(t, _real_last)
    _real_last = t
    return _real_acc


def rate():
    r = 1.0 if _max else _rate
    if _hold and r > 1.0:
        return 1.0
    return r


def now_us():
    v = _v0 + int((_real_us() - _r0) * rate())
    if _until is not None and v >= _until:
        return _arrive(_until)
    return v


def _arrive(v):
    """The end of a `ctl run`: device time stands at `v` and runs at 1x from here."""
    global _v0, _r0, _max, _rate, _until
    _v0 = v
    _r0 = _real_us()
    _max = False
    _rate = 1.0
    _until = None
    bus.send({"t": "arrived", "us": v})
    return v


def run_to(target_us, value):
    """Run at `value` ('max' or a factor) until device time `target_us`, then at 1x (never past it at speed)."""
    global _until
    set_speed(value)
    _until = target_us
    now_us()  # a target already passed ends the run at once


def _reanchor():
    global _v0, _r0
    v = now_us()
    _r0 = _real_us()
    _v0 = v


def set_speed(value):
    global _rate, _max
    _reanchor()
    if value == "max":
        _max = True
        _rate = 1.0
    else:
        _max = False
        _rate = float(value)


def set_hold(on):
    global _hold
    _reanchor()
    _hold = bool(on)


def can_skip():
    return _max and not _hold


def skip(us):
    global _v0
    if us > 0:
        _v0 += us
        if _until is not None and _v0 >= _until:
            _arrive(_v0)


def skip_until(target):
    """Jump device time forward to `target` (idle at --speed max), stopping at a watchdog deadline on the way."""
    if _until is not None and target > _until:
        target = _until
    if _wdt_deadline is not None and _wdt_deadline <= target:
        skip(_wdt_deadline - now_us())
        wdt_check(now_us())
    skip(target - now_us())


def speed_name():
    return "max" if _max else _rate


# --- watchdog: checked whenever device time is read at an idle point, and reported to the host, which ends a VM
# that stops feeding while busy (a hang never reaches an idle point).
def wdt_start(timeout_ms):
    global _wdt_timeout, _wdt_reported
    _wdt_timeout = timeout_ms
    _wdt_reported = None
    wdt_feed()


def wdt_feed():
    global _wdt_deadline, _wdt_reported
    _wdt_deadline = now_us() + _wdt_timeout * 1000
    t = _real_us()
    if _wdt_reported is None or t - _wdt_reported > 100000:
        _wdt_reported = t
        bus.send({"t": "wdt", "wall_ms": int(_wdt_timeout / rate()) + 1})


def wdt_check(now):
    if _wdt_deadline is not None and now >= _wdt_deadline:
        bus.halt({"t": "reset", "cause": "wdt"})


def wait_us(us):
    """Block for `us` microseconds of device time (time.sleep), serving the host's bus meanwhile."""
    deadline = now_us() + us
    p = _bus_poller()
    if us >= 2000:
        bus.idle()
    while True:
        bus.pump()
        now = now_us()
        rem = deadline - now
        if rem <= 0:
            return
        if can_skip():
            skip_until(deadline)
            return
        wall_us = int(rem / rate())
        if wall_us < 2000:
            utime.sleep_us(wall_us)
        else:
            p.poll(wall_us // 1000)


_poller = None


def _bus_poller():
    global _poller
    if _poller is None:
        import uselect

        _poller = uselect.poll()
        _poller.register(bus.sock(), uselect.POLLIN)
    return _poller


def _on_speed(msg):
    set_speed(msg["value"])


def _on_hold(msg):
    set_hold(msg["on"])


def _on_advance(msg):
    skip(int(msg["us"]))


bus.on("speed", _on_speed)
bus.on("hold", _on_hold)
bus.on("advance", _on_advance)
