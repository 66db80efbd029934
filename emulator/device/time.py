# `time` for the emulated board: MicroPython's own API, driven by the virtual device clock (_emu_clock): each ticks
# reading costs the clock's READ_COST_US, each sleep exactly its length in device time.
# The RTC (time.time, localtime) is the battery-backed clock that machine.RTC sets.
import _emu_clock as _clock
import _emu_rtc as _rtc
import utime

_TICKS_PERIOD = 1 << 30
_TICKS_MAX = _TICKS_PERIOD - 1
_TICKS_HALF = _TICKS_PERIOD // 2

gmtime = utime.gmtime
mktime = utime.mktime


def ticks_us():
    return _clock.read_us() & _TICKS_MAX


def ticks_ms():
    return (_clock.read_us() // 1000) & _TICKS_MAX


def ticks_cpu():
    return ticks_us()


def ticks_add(ticks, delta):
    return (ticks + delta) & _TICKS_MAX


def ticks_diff(end, start):
    return ((end - start + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF


def sleep_us(us):
    if us > 0:
        _clock.wait_us(int(us))


def sleep_ms(ms):
    if ms > 0:
        _clock.wait_us(int(ms) * 1000)


def sleep(s):
    if s > 0:
        _clock.wait_us(int(s * 1000000))


def time_ns():
    return _rtc.now_ns()


def time():
    return _rtc.now_ns() // 1000000000


def localtime(secs=None):
    return utime.gmtime(time() if secs is None else secs)
