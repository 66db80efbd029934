# The virtual device clock. Device time advances only by what the emulator models, never by the host's scheduling:
# each reading of the clock by the firmware costs READ_COST_US (so a loop polling ticks_us() ends), an ADC conversion
# its read_us, a flash operation its datasheet time, a sleep or an idle wait its length, a BL0942 exchange its bytes
# at the line rate. The firmware's Python work in between costs nothing, as on an infinitely fast CPU: a host that
# preempts the VM between two ADC samples no longer moves the second one, and a run without host input is the same
# run on an idle and on a busy host.
#
# Wall time only throttles. At a speed of N (1x by default) device time may not run ahead of N x the wall time since
# the anchor: a wait's end is paced by the wall, and firmware reading the clock in a loop is held back. At --speed max
# idle waits are skipped. Device time that fell behind the wall (work the model does not count, a host that
# preempted the VM) is made up in the next idle wait, which then ends sooner in wall time, so at 1x device time
# keeps pace with the wall over seconds; at most CREDIT_MAX_US of it is made up (CREDIT_HELD_US while a host talks on
# a port). While a host talks (it sets "hold"), the speed is at most 1x and nothing is skipped, so a host waiting for
# a reply never sees a device-side timeout fire early. A wait that times out ends exactly at its deadline; a wait
# that input ended (a byte on a port, a bus message) ends where the throttle stands, which is when the input came.
import _emu_bus as bus
import utime

READ_COST_US = 1  # a firmware read of the clock (ticks_us, ticks_ms, ...)
SLACK_US = 2000  # how far device time may run ahead of the throttle before the VM waits (a host sleep costs ~60 µs)
CREDIT_MAX_US = 1000000
CREDIT_HELD_US = 20000

_real_last = utime.ticks_us()
_real_acc = 0
_v = 0  # device time, µs
_a_v = 0  # the throttle's anchor: device time may not pass _a_v + (wall - _a_wall) x rate
_a_wall = 0
_rate = 1.0
_max = False
_hold = False
_hold_wall = 0  # real µs until which a network peer may be answering (hold_for)
_hold_peer = None  # who that hold waits for (hold_end ends only its own)
_free = False  # a replay: idle waits are always skipped (pacing changes no result; device time is the same)
_until = None  # device µs where `ctl run` ends: the speed drops to 1x exactly there
_end = None  # device µs where `meter-emu run --for` ends the run: the board halts exactly there
_wdt_deadline = None
_wdt_timeout = 0
_wdt_reported = None  # real time of the last feed reported to the host
_timers = []  # [device µs, fn], earliest first: the host's timed inputs (a press's release), due in device time
_skipped = 0  # device µs that idle waits skipped ahead of the wall (--speed max, a replay): what `ctl time` shows


def _real_us():
    global _real_last, _real_acc
    t = utime.ticks_us()
    _real_acc += utime.ticks_diff(t, _real_last)
    _real_last = t
    return _real_acc


def _held():
    return _hold or (_hold_wall and _real_us() < _hold_wall)


def rate():
    r = 1.0 if _max else _rate
    if r > 1.0 and _held():
        return 1.0
    return r


def now_us():
    """Device time, for the shims: reading it costs nothing (a host's query must not move the firmware's time)."""
    return _v


def read_us():
    """Device time as the firmware reads it (time.ticks_us and friends): each reading costs READ_COST_US, and a
    firmware that reads the clock faster than the throttle allows waits here."""
    global _v
    _v += READ_COST_US
    if _timers and _v >= _timers[0][0]:
        _fire(_v)
    if _until is not None and _v >= _until:
        _arrive(_until)
    if _end is not None and _v >= _end:
        _ended()
    if _wdt_deadline is not None and _v >= _wdt_deadline:
        wdt_check(_v)
    elif not can_skip() and _v - _bound() > SLACK_US:
        _hold_back()
    return _v


def _bound():
    """The furthest device time may be now: the throttle's anchor plus the wall time since, times the rate."""
    return _a_v + int((_real_us() - _a_wall) * rate())


def _hold_back():
    ahead = _v - _bound()
    while ahead > 0:
        utime.sleep_us(int(ahead / rate()) + 1)
        ahead = _v - _bound()


def take_credit():
    """At the start of an idle wait: device time that fell behind the wall is made up, but at most the credit."""
    global _a_v, _a_wall
    w = _real_us()
    cap = CREDIT_HELD_US if _held() else CREDIT_MAX_US
    if _a_v + int((w - _a_wall) * rate()) - _v > cap:
        _a_v = _v + cap
        _a_wall = w


def _arrive(v):
    """The end of a `ctl run`: device time stands at `v` and runs at 1x from here."""
    global _v, _max, _rate, _until
    if v > _v:
        _v = v
    _max = False
    _rate = 1.0
    _until = None
    _reanchor()
    bus.send({"t": "arrived", "us": _v})
    return _v


def run_to(target_us, value):
    """Run at `value` ('max' or a factor) until device time `target_us`, then at 1x (never past it at speed)."""
    global _until
    set_speed(value)
    _until = target_us
    if _v >= target_us:  # a target already passed ends the run at once
        _arrive(_v)


def _reanchor():
    global _a_v, _a_wall
    _a_v = _v
    _a_wall = _real_us()


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


def skipped_us():
    """Device µs idle waits skipped ahead of the wall since the VM started."""
    return _skipped


def can_skip():
    return _free or (_max and not _held())


def hold_left_us():
    """Wall µs until a hold_for ends (0: none, or the host's own hold, which has no end here)."""
    if _hold or not _hold_wall:
        return 0
    left = _hold_wall - _real_us()
    return left if left > 0 else 0


def hold_for(wall_us, peer=None):
    """A peer outside the VM (a host on a UDP socket, a DLMS client on the optical port) may answer within `wall_us`
    of wall time: until then (or until hold_end(peer)) device time runs at most at 1x and idle waits are not skipped,
    as while a host talks on the console."""
    global _hold_wall, _hold_peer
    if not _held():
        _reanchor()
    _hold_wall = _real_us() + wall_us
    _hold_peer = peer


def hold_end(peer=None):
    """`peer` answered (its datagram or bytes came): its hold_for ends now, and idle waits skip again at --speed max.
    Another peer's hold, and the host's own (set_hold), are not touched."""
    global _hold_wall
    if _hold_wall and _hold_peer == peer:
        if _held():
            _reanchor()
        _hold_wall = 0


def set_free():
    global _free
    _free = True


def skip(us):
    """A modelled cost: device time moves on by `us` (an ADC conversion, a flash operation, `ctl time --advance`)."""
    global _v
    if us > 0:
        _v += us
        if _timers and _v >= _timers[0][0]:
            _fire(_v)
        if _until is not None and _v >= _until:
            _arrive(_until if _until > _v - us else _v)
        if _end is not None and _v >= _end:
            _ended()


def end_at(us):
    """`meter-emu run --for`: the board halts when device time reaches `us` (a run with a fixed end)."""
    global _end
    _end = us
    if _v >= us:
        _ended()


def _ended():
    bus.halt({"t": "end", "us": _v})


def skip_until(target):
    """Device time moves to `target` (the end of an idle wait), stopping at a `ctl run`'s end and at a watchdog
    deadline on the way."""
    global _v, _skipped
    if _until is not None and target >= _until:
        target = _until
    if _end is not None and target >= _end:
        target = _end
    if target > _v and can_skip():
        _skipped += target - _v
    if _wdt_deadline is not None and _wdt_deadline <= target:
        if _wdt_deadline > _v:
            _v = _wdt_deadline
        wdt_check(_v)
    if _timers and _timers[0][0] <= target:
        _fire(target)
    if target > _v:
        _v = target
    if _until is not None and _v >= _until:
        _arrive(_until)
    if _end is not None and _v >= _end:
        _ended()


def at(us, fn):
    """fn() when device time reaches `us` (at once if it has): a timed input such as a press's release, so a hold
    lasts its length in device time whatever the host's scheduling or the run's speed."""
    _timers.append([us, fn])
    _timers.sort(key=lambda e: e[0])
    if _v >= us:
        _fire(_v)


def _fire(upto):
    """Run the timers due by `upto`, each with device time standing at its own due time (never moved back)."""
    global _v
    while _timers and _timers[0][0] <= upto:
        due, fn = _timers.pop(0)
        if due > _v:
            _v = due
        fn()


def wall_us_to(deadline):
    """Wall µs until the throttle lets device time reach `deadline` (0: it may be there now)."""
    ahead = deadline - _bound()
    return 0 if ahead <= 0 else int(ahead / rate()) + 1


def woken(deadline):
    """After a wall wait that input ended: device time moves to the throttle's bound (when the input came), at
    most to `deadline` (None: no limit)."""
    b = _bound()
    skip_until(b if deadline is None or b < deadline else deadline)


def speed_name():
    return "max" if _max else _rate


# --- watchdog: checked when device time passes it at an idle point or a firmware read of the clock (so a loop
# polling ticks_us() without feeding is reset in device time), and reported to the host, which resets a VM that
# spends the timeout in CPU time without feeding (a pure hang, `while True: pass`, never moves device time) or
# WDT_WALL_SLACK times it in wall time (the REPL, where the VM waits in C and device time stands still).
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
        bus.send({"t": "wdt", "cpu_ms": _wdt_timeout, "wall_ms": int(_wdt_timeout / rate()) + 1})


def wdt_check(now):
    if _wdt_deadline is not None and now >= _wdt_deadline:
        bus.halt({"t": "reset", "cause": "wdt"})


def wait_us(us):
    """Block for `us` microseconds of device time (time.sleep), serving the host's bus meanwhile: the sleep ends at
    exactly its deadline in device time, whatever the host's scheduling; the wall only paces it."""
    deadline = _v + us
    p = _bus_poller()
    if us >= 2000:
        bus.idle()
    credit = False
    while True:
        bus.pump()
        bus.take_interrupt()
        if _v >= deadline:
            return
        if can_skip():
            skip_until(deadline)
            return
        if not credit:  # only a wait paced by the wall makes up a lag (not the sampling loop at --speed max)
            take_credit()
            credit = True
        wall = wall_us_to(deadline)
        if wall <= 0:
            skip_until(deadline)
            return
        if wall < 2000:
            utime.sleep_us(wall)
        else:
            p.poll(wall // 1000)


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
    """`ctl time --advance`: the board was away for that long (as in a deep sleep). Not a lag for the throttle to
    hold back, and not a stretch the firmware failed to feed its watchdog in: both move on with it."""
    global _a_v, _wdt_deadline
    us = int(msg["us"])
    if us > 0:
        _a_v += us
        if _wdt_deadline is not None:
            _wdt_deadline += us
    skip(us)


bus.on("speed", _on_speed)
bus.on("hold", _on_hold)
bus.on("advance", _on_advance)
