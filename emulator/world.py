"""The board's surroundings as the host keeps them: the grid and load model's settings and true totals (carried in
STATE/meta.json across power cuts), the world clock, the latching relay's contacts and the input pins, and the
`ctl set` keys. A mixin of Meter (emulator/meter.py)."""

from __future__ import annotations

import time

from . import grid as gridmodel
from . import radio
from .errors import ControlError
from .supervisor import Supervisor

TRUTH_SAVE_S = 2.0  # wall seconds between meta.json writes for periodic truth reports
PRESSABLE = ("button", "cover")  # inputs `ctl press` drives: the consumer's button, the terminal cover (off while held)


SPEED_MIN = 0.001  # device-time speed factors: a thousandth of real time ...
SPEED_MAX = 1e6  # ... to a million times it ('max' skips idle waits altogether)


def parse_speed(value: str | float) -> float | str:
    if value == "max":
        return "max"
    try:  # nan, inf, 0: a wedged board; a factor beyond a million: a clock that jumps (use 'max')
        return gridmodel.finite("speed", value, SPEED_MIN, SPEED_MAX)
    except ControlError as e:
        raise ControlError(f"{e}, or 'max'") from None


class World(Supervisor):
    def _world_from(self, msg: dict) -> None:
        if "world_ns" in msg:
            self.meta["world_ns"] = max(self.meta["world_ns"], int(msg["world_ns"]))

    # -- the NB-IoT radio: the meter's address, the link's settings and the module's presence (meta.json) ---------
    def _radio_init(self) -> None:
        self.modem_address = None
        if not getattr(self, "modem", False) or not self.board.get("uarts", {}).get("modem"):
            return  # no module fitted (`run --modem` fits one on a board with a modem UART)
        self.modem_address = radio.meter_address(self.state.path)
        link = self.meta.get("link")
        self.meta["link"] = link if isinstance(link, dict) else radio.defaults()
        m = self.meta.get("modem")
        self.meta["modem"] = m if isinstance(m, dict) else {"present": True, "deny": False}

    def _modem_net(self) -> dict | None:
        if getattr(self, "modem_address", None) is None:
            return None
        return {
            "address": self.modem_address,
            "link": radio.params(self.meta["link"]),
            "present": self.meta["modem"]["present"],
            "deny": self.meta["modem"]["deny"],
        }

    def _radio_endpoints(self) -> dict:
        if getattr(self, "modem_address", None) is None:
            return {}
        return {"udp": {"address": self.modem_address, "port": radio.SMP_UDP_PORT}}

    def _link_set(self, key: str, v: object) -> object:
        if getattr(self, "modem_address", None) is None:
            raise ControlError(f"{key}: no NB-IoT module fitted: start the meter with `meter-emu run --modem`")
        radio.apply(self.meta["link"], key, v)
        self.state.write_meta(self.meta)
        if self.bus and self.powered:
            self._to_vm({"t": "modem", "link": radio.params(self.meta["link"])})
        return v

    # -- the grid and the load: settings and the true energy integral live in meta.json across boots ---------------
    def _grid_init(self) -> None:
        g = gridmodel.defaults(self.board)
        g.update({k: v for k, v in (self.meta.get("grid") or {}).items() if k in g})
        self.meta["grid"] = g
        truth = gridmodel.zero_truth()
        truth.update({k: float(v) for k, v in (self.meta.get("truth") or {}).items() if k in truth})
        self.meta["truth"] = truth
        self.meta.setdefault("scenario", None)
        if self.start_scenario is not None:
            self.meta["scenario"] = dict(self.start_scenario, **{"from": None, "next": 0, "cycle": 0})
        self.state.write_meta(self.meta)

    def _take_state(self, state: dict | None, truth: dict | None, save: bool = True) -> None:
        """The VM's view of the model (settings with their anchors, scenario progress) and its truth totals."""
        if state:
            if isinstance(state.get("settings"), dict):
                self.meta["grid"].update(state["settings"])
            if "scenario" in state:
                self.meta["scenario"] = state["scenario"]
        if truth:
            self.meta["truth"] = {k: float(truth[k]) for k in gridmodel.TRUTH_KEYS if k in truth}
        now = time.monotonic()
        if save or now - self.truth_saved > TRUTH_SAVE_S:
            self.truth_saved = now
            self.state.write_meta(self.meta)

    def _grid_send(self, values: dict) -> None:
        if self.bus and self.powered:
            self._to_vm({"t": "grid", "set": values})

    # -- the latching relay: a pulse on the set coil closes the contacts, on the reset coil opens them; they stay
    # put without power (the state lives in the state folder); the auxiliary contact feeds relay_feedback
    def _relay_init(self) -> None:
        pins = self.board["pins"]
        self.relay_coils = {pins[k]["gpio"]: k == "relay_set" for k in ("relay_set", "relay_reset") if k in pins}
        self.relay_closed = bool(self.meta.get("relay_closed", True))
        self.meta["grid"]["relay.closed"] = self.relay_closed
        self.relay_operations = 0
        self._relay_feedback()

    def _relay_feedback(self) -> None:
        fb = self.board["pins"].get("relay_feedback")
        if fb:
            closed_level = 0 if fb.get("active", "low") == "low" else 1
            self._set_input(fb["gpio"], closed_level if self.relay_closed else closed_level ^ 1)

    def _relay_coil(self, gpio: int, value: int) -> None:
        if value != 1 or gpio not in getattr(self, "relay_coils", {}):
            return
        closed = self.relay_coils[gpio]
        self.relay_operations += 1
        if closed != self.relay_closed:
            self.relay_closed = closed
            self.meta["relay_closed"] = closed
            self.meta["grid"]["relay.closed"] = closed
            self.state.write_meta(self.meta)
            self._grid_send({"relay.closed": closed})
            self.announce(f"emulator: relay contacts {'closed' if closed else 'open'}")
            self._relay_feedback()

    def _set_input(self, gpio: int, level: int) -> None:
        self.inputs[gpio] = level
        if self.bus and self.powered:
            self._to_vm({"t": "input", "gpio": gpio, "value": level})

    SETTABLE = {
        "speed": "device-time speed: a factor > 0 or 'max'",
        "rtc.drift_ppm": "RTC crystal error in parts per million (signed)",
        "rtc.lost": "1: the RTC battery is dead; the RTC restarts from 2000-01-01 at the next boot",
        "power.restore_delay": "seconds until power returns after a cut; 'manual' waits for power-on",
        "wire.error_rate": "probability per byte of a flipped bit on the console line (0..1)",
        "wire.drop_rate": "probability per byte of a lost byte on the console line (0..1)",
        "adc.<gpio>": "volts at an ADC pin, overriding the grid model there ('model' returns the pin to it)",
        **gridmodel.SETTABLE,
        **radio.SETTABLE,
    }

    def _check_one(self, key: str, raw) -> object:
        """The value of one `ctl set` KEY=VALUE, checked (ControlError naming the key and what it allows: NaN, the
        infinities and numbers out of range included); nothing changes yet."""
        if key == "speed":
            return parse_speed(raw)
        if key == "rtc.drift_ppm":
            return gridmodel.finite(key, raw, -10000, 10000)
        if key == "rtc.lost":
            return bool(gridmodel.finite(key, raw, 0, 1))
        if key == "power.restore_delay":
            return "manual" if raw == "manual" else gridmodel.finite(key, raw, 0, 86400)
        if key in ("wire.error_rate", "wire.drop_rate"):
            return gridmodel.finite(key, raw, 0, 1)
        if key in gridmodel.SETTABLE:
            return gridmodel.parse(key, raw)
        if key in radio.SETTABLE:
            return radio.parse(key, raw)
        if key.startswith("adc."):
            try:
                int(key[4:])
            except ValueError:
                raise ControlError(f"{key}: expected adc.<gpio number>") from None
            return "model" if raw == "model" else gridmodel.finite(key, raw, -1, 10)
        raise ControlError(f"unknown key {key!r}; keys: " + ", ".join(self.SETTABLE))

    def _set_one(self, key: str, raw) -> object:
        """Check and apply one setting; the value applied."""
        v = self._check_one(key, raw)
        if key == "speed":
            self.speed = v  # type: ignore[assignment]
            if self.bus:
                self._to_vm({"t": "speed", "value": self.speed})
            return self.speed
        if key == "rtc.drift_ppm":
            self.meta["rtc"]["drift_ppm"] = v
            if self.bus:
                self._to_vm({"t": "drift", "ppm": v})
            return v
        if key == "rtc.lost":
            self.meta["rtc"]["valid"] = not v
            self.state.write_meta(self.meta)
            return v
        if key == "power.restore_delay":
            self.restore_delay = None if v == "manual" else v  # type: ignore[assignment]
            return v
        if key in ("wire.error_rate", "wire.drop_rate"):
            assert self.wire is not None
            setattr(self.wire, key.split(".")[1], v)
            return v
        if key in radio.SETTABLE:
            return self._link_set(key, v)
        if key in gridmodel.SETTABLE:
            g = self.meta["grid"]
            g[key] = v
            values = {key: v}
            anchor = gridmodel.ANCHORED.get(key)
            if anchor:
                # from now: the VM stamps its world time; with the board off, the world clock stands still here
                g[anchor] = None if self.powered else self.meta["world_ns"] // 1000
                values[anchor] = g[anchor]
            self.state.write_meta(self.meta)
            self._grid_send(values)
            return v
        gpio = int(key[4:])  # adc.<gpio>
        if v == "model":
            self.adc.pop(gpio, None)
            if self.bus and self.powered:
                self._to_vm({"t": "adc", "gpio": gpio, "volts": None})
            return "model"
        self.adc[gpio] = v  # type: ignore[assignment]
        if self.bus and self.powered:
            self._to_vm({"t": "adc", "gpio": gpio, "volts": v})
        return v
