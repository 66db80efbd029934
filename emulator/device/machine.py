# `machine` for the emulated board: MicroPython's own API (Pin, ADC, UART, WDT, RTC, reset, ...), with the
# differences between the ESP32 and RP2040 ports taken from the board file the host passes in. The hardware behind
# it (input levels, analogue inputs, reset line, RTC battery) is played by the host over the bus.
import _emu_bus as bus
import _emu_clock as _clock
import _emu_rtc as _rtc
import utime

_cfg = bus.config
_board = _cfg["board"]
_family = _board["mcu"]["family"]
_ESP32 = _family == "esp32"

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
_CAUSES = {"power": PWRON_RESET, "hard": HARD_RESET, "wdt": WDT_RESET, "deepsleep": DEEPSLEEP_RESET,
           "soft": SOFT_RESET}
if not _ESP32:
    # the rp2 port defines only these two
    del HARD_RESET, DEEPSLEEP_RESET, SOFT_RESET

_inputs = {}
for _k, _v in _cfg.get("inputs", {}).items():
    _inputs[int(_k)] = int(_v)
_analog = {}
for _k, _v in _cfg.get("adc", {}).items():
    _analog[int(_k)] = float(_v)
_watch = set(_cfg.get("watch", ()))
_irqs = {}
# the latching relay's auxiliary contact follows a coil pulse at once, here in the board (a real relay moves within
# milliseconds, inside the firmware's pulse); the host models the same contacts for the load and its status
_pins = _cfg.get("board", {}).get("pins", {})
_coils = {}
for _k in ("relay_set", "relay_reset"):
    if _pins.get(_k) and _pins.get("relay_feedback"):
        _coils[_pins[_k]["gpio"]] = _k == "relay_set"
_fb = _pins.get("relay_feedback")


def _max_gpio():
    return 39 if _ESP32 else 29


def _check_gpio(n):
    if not isinstance(n, int) or n < 0 or n > _max_gpio():
        raise ValueError("invalid pin")
    return n


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None, **kw):
        self._id = _check_gpio(id.gpio() if isinstance(id, Pin) else id)
        self._mode = Pin.IN
        self._pull = None
        self._out = 0
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None, **kw):
        if mode != -1 and mode is not None:
            if _ESP32 and mode in (Pin.OUT, Pin.OPEN_DRAIN) and 34 <= self._id <= 39:
                raise ValueError("pin can only be input")
            self._mode = mode
        if pull != -1:
            self._pull = pull
        if value is not None:
            self._set(value)

    def gpio(self):
        return self._id

    def _set(self, v):
        v = 1 if v else 0
        if v != self._out:
            self._out = v
            if self._id in _watch:
                bus.send({"t": "pin", "gpio": self._id, "value": v, "us": _clock.now_us()})
            if _modem is not None and self._id == _modem.PWRKEY:
                _modem.on_pin(self._id, v)
            if v and self._id in _coils:
                closed_level = 0 if _fb.get("active", "low") == "low" else 1
                _inputs[_fb["gpio"]] = closed_level if _coils[self._id] else closed_level ^ 1

    def value(self, v=None):
        if v is not None:
            self._set(v)
            return None
        if self._mode == Pin.OUT:
            return self._out
        if self._id in _inputs:
            return _inputs[self._id]
        return 1 if self._pull == Pin.PULL_UP else 0

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self._set(1)

    def off(self):
        self._set(0)

    def irq(self, handler=None, trigger=3, **kw):
        _irqs[self._id] = (self, handler, trigger)

    def __repr__(self):
        return "Pin(%d)" % self._id


def _on_input(msg):
    g = int(msg["gpio"])
    _level(g, int(msg["value"]))
    hold = msg.get("for_us")
    if hold is not None:  # a press: released after `for_us` of device time; the host learns when (held, released)
        import _emu_rtc

        due_ns = _emu_rtc.world_ns() + int(hold) * 1000
        bus.send({"t": "held", "gpio": g, "value": int(msg["release"]), "due_ns": due_ns})
        _hold(g, int(msg["release"]), _clock.now_us() + int(hold))


def _hold(g, release, due_us):
    # fired from a clock read inside the firmware's own code: the host's message is shim work (a full heap drops it
    # rather than raising MemoryError into the firmware's read of the clock; the host then sees the hold end at its
    # due time, `held_s` counts down to it)
    def released():
        _level(g, release)
        bus.shim_work(bus.send, {"t": "released", "gpio": g, "value": release})

    _clock.at(due_us, released)


def _level(g, v):
    old = _inputs.get(g)
    _inputs[g] = v
    hit = _irqs.get(g)
    if hit is not None and hit[1] is not None and old != v:
        edge = Pin.IRQ_RISING if v else Pin.IRQ_FALLING
        if hit[2] & edge:
            import micropython

            micropython.schedule(hit[1], hit[0])


def _on_adc(msg):
    if msg.get("volts") is None:  # back to the grid model
        _analog.pop(int(msg["gpio"]), None)
    else:
        _analog[int(msg["gpio"])] = float(msg["volts"])


bus.on("input", _on_input)
for _k, _h in _cfg.get("holds", {}).items():  # presses held across the reset: [release level, device µs left]
    _hold(int(_k), int(_h[0]), _clock.now_us() + int(_h[1]))
bus.on("adc", _on_adc)

_adc_cfg = _board.get("adc", {})
_FRONT = _board.get("frontend", {}).get("type", "adc")
if _FRONT == "adc":
    import _emu_adc as _adcm  # the analogue front end on the grid model (imported by the ROM before the ballast)
else:
    _adcm = None
_METERING_UART = _board.get("uarts", {}).get("metering", {}).get("id")
_modem = None
if _cfg.get("modem_net") is not None and _board.get("uarts", {}).get("modem"):
    import _emu_modem as _modem  # the NB-IoT module on uarts.modem (imported by the ROM before the ballast)
_optical = None
if _cfg.get("optical") is not None and _board.get("uarts", {}).get("optical"):
    import _emu_optical as _optical  # the DLMS port's line to the host's pty


class ADC:
    if _ESP32:
        ATTN_0DB = 0
        ATTN_2_5DB = 1
        ATTN_6DB = 2
        ATTN_11DB = 3
        WIDTH_9BIT = 0
        WIDTH_10BIT = 1
        WIDTH_11BIT = 2
        WIDTH_12BIT = 3
        _FULL_SCALE = (0.95, 1.25, 1.75, 3.1)  # volts at the top code for each attenuation (ESP32 datasheet)

    def __init__(self, pin, atten=None):
        g = pin.gpio() if isinstance(pin, Pin) else pin
        if _ESP32:
            if not isinstance(g, int) or not 32 <= g <= 39:
                raise ValueError("invalid pin for ADC")
            self._atten = ADC.ATTN_0DB if atten is None else atten
        else:
            if g in (0, 1, 2, 3, 4):
                g = (26, 27, 28, 29, 4)[g]  # rp2: ADC(channel) or ADC(gpio)
            if g not in (26, 27, 28, 29, 4):
                raise ValueError("invalid pin")
        self._g = g
        self._model = _adcm.reader(g) if _adcm is not None else None

    if _ESP32:

        def atten(self, a):
            self._atten = a

        def width(self, w):
            pass

        def _full_scale(self):
            return ADC._FULL_SCALE[self._atten]

        def read(self):
            return self.read_u16() >> 4

        def read_uv(self):
            if self._model is not None and self._g not in _analog:
                return int((self._model() >> (16 - _adcm.BITS)) * _adcm.FS / _adcm.TOP * 1000000)
            return int(self._volts() * 1000000)

    else:

        def _full_scale(self):
            return float(_adc_cfg.get("vref", 3.3))

    def _volts(self):
        v = _analog.get(self._g, 0.0)
        fs = self._full_scale()
        return 0.0 if v < 0 else (fs if v > fs else v)

    def read_u16(self):
        m = self._model
        if m is not None and self._g not in _analog:
            return m()
        # a pin the grid model does not drive, or one set by `ctl set adc.<gpio>=volts`: an ideal converter
        bits = int(_adc_cfg.get("bits", 12))
        top = (1 << bits) - 1
        code = int(self._volts() / self._full_scale() * top + 0.5)
        # ports scale their native resolution to 16 bits by replicating the top bits
        return (code << (16 - bits)) | (code >> (2 * bits - 16))


class UART:
    """A UART with nothing attached, except uarts.metering on a BL0942 board, which reaches the IC's model
    (_emu_bl0942), uarts.modem, which reaches the NB-IoT module's (_emu_modem), and uarts.optical, which reaches
    the host's DLMS pty (_emu_optical). Reads return None like an
    idle MicroPython UART with timeout=0."""

    def __new__(cls, id, *a, **kw):
        if _FRONT == "bl0942" and id == _METERING_UART and cls is UART:
            import _emu_bl0942

            return _emu_bl0942.Port(id, *a, **kw)
        if _modem is not None and id == _modem.UART_ID and cls is UART:
            return _modem.Port(id, *a, **kw)
        if _optical is not None and id == _optical.UART_ID and cls is UART:
            return _optical.Port(id, *a, **kw)
        return object.__new__(cls)

    def __init__(self, id, baudrate=9600, **kw):
        self._id = id
        self.init(baudrate, **kw)

    def init(self, baudrate=9600, **kw):
        self._baud = baudrate

    def deinit(self):
        pass

    def any(self):
        return 0

    def read(self, n=-1):
        return None

    def readinto(self, buf, n=-1):
        return None

    def readline(self):
        return None

    def write(self, buf):
        return len(buf)


class WDT:
    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("timeout")
        _clock.wdt_start(timeout)

    def feed(self):
        _clock.wdt_feed()


class RTC:
    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        if dt is None:
            ns = _rtc.now_ns()
            t = utime.gmtime(ns // 1000000000)
            sub = (ns // 1000) % 1000000
            # (year, month, day, weekday, hours, minutes, seconds, subseconds)
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], sub)
        secs = utime.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        sub = dt[7] if len(dt) > 7 else 0
        _rtc.set_ns(secs * 1000000000 + sub * 1000)
        return None

    def init(self, dt):
        self.datetime(dt)


def reset():
    bus.halt({"t": "reset", "cause": "hard"})


def soft_reset():
    bus.halt({"t": "reset", "cause": "soft"})


def reset_cause():
    return _CAUSES.get(_cfg.get("reset_cause", "power"), PWRON_RESET)


def unique_id():
    return bytes.fromhex(_cfg["unique_id"])


_freq = [int(_board["mcu"].get("freq_hz", 160000000))]


def freq(hz=None):
    if hz is None:
        return _freq[0]
    _freq[0] = int(hz)


def idle():
    _clock.wait_us(100)


def lightsleep(ms=None):
    if ms is not None:
        _clock.wait_us(int(ms) * 1000)


def deepsleep(ms=None):
    if ms is not None:
        _clock.wait_us(int(ms) * 1000)
    bus.halt({"t": "reset", "cause": "deepsleep" if _ESP32 else "power"})



def disable_irq():
    return 1


def enable_irq(state=1):
    pass


if not _ESP32:

    def bootloader(*a):
        # BOOTSEL mode: the board stops running the firmware until it is power-cycled
        bus.halt({"t": "bootloader"})
