# Hardware access for the loader and the app, from the board definition and MicroPython's own `machine` API only.
import machine


class Hal:
    def __init__(self, board):
        self.board = board
        pins = board["pins"]
        led = pins.get("led")
        self._led = None
        if led:
            self._led = machine.Pin(led["gpio"], machine.Pin.OUT)
            self._led_on = 1 if led.get("active", "high") == "high" else 0
            self.led(False)
        self._button, self._pressed = _input(pins.get("button"), "low")
        self._cover, self._cover_open = _input(pins.get("cover"), "high")

    def led(self, on):
        if self._led is not None:
            self._led.value(self._led_on if on else 1 - self._led_on)

    def button_pressed(self):
        return self._button is not None and self._button.value() == self._pressed

    def on_button(self, handler):
        """Call handler(pin) from an interrupt at each press (the edge to the active level); False without a
        button. The handler must not allocate (it may run in a hard interrupt)."""
        if self._button is None:
            return False
        _on_edge(self._button, self._pressed, handler)
        return True

    def cover_open(self):
        """True while the terminal cover is off, False while it is on, None on a board without a cover switch."""
        return None if self._cover is None else self._cover.value() == self._cover_open

    def on_cover(self, handler):
        """Call handler(pin) from an interrupt each time the cover comes off (an opening shorter than a reading is
        not missed); False without a cover switch. The handler must not allocate."""
        if self._cover is None:
            return False
        _on_edge(self._cover, self._cover_open, handler)
        return True

    def relay_pulse(self, connect, ms=100):
        """Pulse the latching relay's set (connect) or reset (disconnect) coil; False when the board has none."""
        pin = self.board["pins"].get("relay_set" if connect else "relay_reset")
        if not pin:
            return False
        import time

        coil = machine.Pin(pin["gpio"], machine.Pin.OUT)
        coil.value(1)
        time.sleep_ms(ms)
        coil.value(0)
        return True

    def relay_closed(self):
        """The auxiliary contact: True when the load is connected, None when the board has no feedback input."""
        fb = self.board["pins"].get("relay_feedback")
        if not fb:
            return None
        pull = {"up": machine.Pin.PULL_UP, "down": machine.Pin.PULL_DOWN}.get(fb.get("pull") or "")
        p = machine.Pin(fb["gpio"], machine.Pin.IN, pull) if pull is not None else machine.Pin(fb["gpio"], machine.Pin.IN)
        return p.value() == (0 if fb.get("active", "low") == "low" else 1)


def _input(spec, active_default):
    """(machine.Pin, its active level) for an input in the board's pins, or (None, 0) when the board has none."""
    if not spec:
        return None, 0
    pull = {"up": machine.Pin.PULL_UP, "down": machine.Pin.PULL_DOWN}.get(spec.get("pull") or "")
    if pull is None:
        pin = machine.Pin(spec["gpio"], machine.Pin.IN)
    else:
        pin = machine.Pin(spec["gpio"], machine.Pin.IN, pull)
    return pin, 0 if spec.get("active", active_default) == "low" else 1


def _on_edge(pin, active, handler):
    pin.irq(handler=handler, trigger=machine.Pin.IRQ_FALLING if active == 0 else machine.Pin.IRQ_RISING)
