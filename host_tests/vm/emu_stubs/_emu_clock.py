# Test stand-in for emulator/device/_emu_clock.py: device time only moves when a test (or skip) moves it; hold_for
# records what the NB-IoT module asked (the real clock then caps the speed at 1x), hold_end the peers that answered.
_now = [0]
holds = []
ended = []


def now_us():
    return _now[0]


def set_us(t):
    _now[0] = int(t)


def skip(us):
    if us > 0:
        _now[0] += int(us)


def skip_until(t):
    set_us(t)


def wdt_check(now):
    pass


def wdt_start(ms):
    pass


def wdt_feed():
    pass


def can_skip():
    return True


def rate():
    return 1.0


def speed_name():
    return 1.0


def wait_us(us):
    skip(us)


def hold_for(wall_us, peer=None):
    holds.append([wall_us, peer])


def hold_end(peer=None):
    ended.append(peer)


def hold_left_us():
    return 0


def take_credit():
    pass
