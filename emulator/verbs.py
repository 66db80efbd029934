"""The `meter-emu ctl` verbs: each request from the control channel becomes a method `_ctl_<verb>` that answers with
a reply dict (`ok` false and an error naming the problem on a ControlError). A mixin of Meter (emulator/meter.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from . import grid as gridmodel
from . import radio
from .control import ADVANCE_MAX_S, RUN_MAX_S
from .errors import ControlError
from .supervisor import WORD_SCALE
from .world import PRESSABLE, World, parse_speed

RTC_MIN_S = 946684800  # `ctl run --until`: 2000-01-01T00:00:00Z, where a board's RTC starts ...
RTC_MAX_S = 4102444799  # ... to 2099-12-31T23:59:59Z


class ControlVerbs(World):
    # -- control requests ----------------------------------------------------------------------------------------
    def _on_control(self, req: dict, reply: Callable[[dict], None]) -> None:
        try:
            verb = req.get("verb")
            if self.replay is not None and verb not in ("status", "time", "stop"):
                raise ControlError("a replay takes no input: its input is the recording's")
            handler = getattr(self, "_ctl_" + str(verb).replace("-", "_"), None)
            if handler is None:
                raise ControlError(f"unknown verb {verb!r}")
            handler(req, reply)
        except ControlError as e:
            reply({"ok": False, "error": str(e)})
        except (TypeError, ValueError, OverflowError, KeyError, AttributeError) as e:
            # a request of the wrong shape (another client than meter-emu ctl): refused, the emulator carries on
            reply({"ok": False, "error": f"bad {req.get('verb')!r} request: {type(e).__name__}: {e}"})

    def _ctl_status(self, req: dict, reply: Callable[[dict], None]) -> None:
        def done(st: dict | None) -> None:
            reply({"ok": True, **self._status(st)})

        self._query(done, largest_free=req.get("largest_free") is True, collect=req.get("collect") is True)

    def _status(self, st: dict | None) -> dict:
        world_ns = int((st or {}).get("world_ns") or self.meta["world_ns"])
        out = {
            "board": self.board["id"],
            "power": "on" if self.powered else "off",
            "pid": self.proc.pid if self.proc and self.powered else None,
            "boots": self.boots,
            "reset_cause": self.reset_cause,
            "speed": self.speed,
            "running": self.fast_run is not None,
            "running_to": self._run_end(),
            "line_busy": self.held,
            "console": self.wire.path if self.wire else None,
            "outputs": {str(k): v for k, v in sorted(self.outputs.items())},
            "inputs": {str(k): v for k, v in sorted(self.inputs.items())},
            "held_s": {str(k): max(0.0, round((r["due_ns"] - world_ns) / 1e9, 3))
                       for k, r in sorted(self.releases.items())},
            "wire": self.wire.stats() if self.wire else {},
            "interrupts": dict(self.wire.interrupts) if self.wire else {},
            "formatted": self.formatted,
            "relay": "closed" if self.relay_closed else "open",
            "relay_operations": self.relay_operations,
            "last_halt": self.last_halt,
            "shim_heap": self.shim_heap,
        }
        out["device_answering"] = st is not None
        if self.optical is not None:
            out["optical_port"] = self.optical.stats()
        out["grid"] = {k: v for k, v in (st or {}).get("grid", self.meta["grid"]).items()}
        if st and "true" in st:
            out["true"] = st["true"]
            out["truth"] = st["truth"]
            out["scenario"] = st.get("scenario")
        else:
            # off: the power cut is the grid's too (this house sees no voltage); not answering: unknown now
            out["true"] = None if self.powered else {"voltage": 0.0, "current": 0.0, "p_w": 0.0, "q_var": 0.0,
                                                      "s_va": 0.0, "pf": 1.0, "frequency_hz": 0.0, "us": None}
            out["truth"] = dict(self.meta["truth"], us=None)
            sc = self.meta.get("scenario")
            out["scenario"] = None if not sc else {"steps": len(sc["steps"]), "next": sc["next"],
                                                   "cycle": sc["cycle"], "repeat": bool(sc.get("repeat")),
                                                   "elapsed_s": None, "done": sc["next"] >= len(sc["steps"])}
        if st:
            dev = {k: v for k, v in st.items() if k not in ("t", "id", "grid", "true", "truth", "scenario")}
            # the VM's objects are twice a board's size (64-bit words): halve to compare with the board's heap
            dev["heap_free_board_estimate"] = st["heap_free"] // WORD_SCALE
            if "heap_largest_free" in st:
                dev["heap_largest_free_board_estimate"] = st["heap_largest_free"] // WORD_SCALE
            dev["heap_board_bytes"] = self.board["heap_bytes"]
            out["device"] = dev
        return out

    def _ctl_time(self, req: dict, reply: Callable[[dict], None]) -> None:
        adv = req.get("advance")
        if adv is not None:
            adv = gridmodel.finite("--advance", adv, 0, ADVANCE_MAX_S)
            if not self.powered or not self.bus:
                raise ControlError("the board is off")
            self._to_vm({"t": "advance", "us": int(adv * 1e6)})

        def done(st: dict | None) -> None:
            if st is None:
                reply({"ok": False, "error": "the board is off or not answering"})
                return
            reply({"ok": True, "uptime_s": st["us"] / 1e6, "ticks_ms": (st["us"] // 1000) & ((1 << 30) - 1),
                   "skipped_s": st["skipped_us"] / 1e6, "rtc": st["rtc"], "rtc_valid": self.meta["rtc"]["valid"],
                   "world_s": st["world_ns"] / 1e9,
                   "speed": self.speed, "running": self.fast_run is not None,
                   "running_to": self._run_end(), "line_busy": self.held})

        self._query(done)

    def _run_end(self) -> float | None:
        """World seconds where the `ctl run` under way ends (None: no run)."""
        run = self.fast_run
        return None if run is None or run["target_ns"] is None else run["target_ns"] / 1e9

    def _ctl_run(self, req: dict, reply: Callable[[dict], None]) -> None:
        until, for_s = req.get("until"), req.get("for")
        if (until is None) == (for_s is None):
            raise ControlError("run needs --until (an RTC time) or --for (device seconds)")
        if for_s is not None:
            for_s = gridmodel.finite("--for", for_s, 0, RUN_MAX_S)
            if for_s <= 0:
                raise ControlError("--for is device seconds, 0 < s <= ten years")
        if until is not None and (type(until) is not int or not RTC_MIN_S <= until <= RTC_MAX_S):
            raise ControlError(f"--until: the RTC reads 2000-01-01 to 2099-12-31 (seconds {RTC_MIN_S}.."
                               f"{RTC_MAX_S} since 1970), got {gridmodel.shown(until)}")
        if not self.powered or not self.bus:
            raise ControlError("the board is off")
        speed = parse_speed(req.get("speed", "max"))
        self.speed = speed
        self.fast_run = {"target_ns": None, "speed": speed}  # the VM answers with the target in world time
        self._to_vm({"t": "run", "speed": speed, "rtc": None if until is None else int(until),
                       "for_s": None if for_s is None else float(for_s)})
        reply({"ok": True, "speed": speed, "until_rtc": until, "for_s": for_s})

    def _ctl_reset(self, req: dict, reply: Callable[[dict], None]) -> None:
        kind = req.get("kind", "hard")
        if kind not in ("hard", "soft"):
            raise ControlError("reset kind is 'hard' or 'soft'")
        if not self.powered:
            raise ControlError("the board is off: use power-on")
        after = req.get("ctrl_c_after_ms")
        if after is not None and (isinstance(after, bool) or not isinstance(after, (int, float)) or not 0 <= after <= 60000):
            raise ControlError("ctrl_c_after_ms is 0 to 60000")
        self.ctrl_c_after_ms = after
        if self.gate is not None:
            self.gate.add(("reset", kind, reply))  # at the board's next point, where the recording stamps it
            return
        self.reset_now(kind, reply)

    def _ctl_power_cut(self, req: dict, reply: Callable[[dict], None]) -> None:
        off = req.get("off", self.restore_delay)
        if off is not None:
            off = gridmodel.finite("--off", off, 0, 86400)
        if not self.powered:
            raise ControlError("the board is already off")
        n = req.get("at_write")
        if n is None:
            if self.pending_cut is not None:
                raise ControlError("a power cut is already under way")
            if self.gate is not None and self._vm_running():
                self.gate.add(("cut", off, reply))  # at the board's next point, where the recording stamps it
                return
            self.begin_cut(off, reply)
            return
        if type(n) is not int or not 1 <= n <= 10**9:
            raise ControlError("--at-write counts flash operations from now: 1 or more")
        torn = req.get("torn", 0)
        if type(torn) is not int or not 0 <= torn <= 1 << 20:
            raise ControlError("--torn is the bytes of that write that land: 0 or more")
        self.restore_delay = off
        assert self.bus is not None
        self.armed_cut = {"n": n, "torn": torn}
        self._to_vm({"t": "cut_at", "n": n, "torn": torn})
        reply({"ok": True, "armed": True, "at_write": n, "torn": torn})

    def _ctl_power_on(self, req: dict, reply: Callable[[dict], None]) -> None:
        if self.powered:
            raise ControlError("the board is already on")
        off_ns = int(max(0.0, time.monotonic() - self.off_since) * 1e9)
        if self.gate is not None and self.gate.recorder is not None:
            self.gate.recorder.power_on(self.boots, off_ns)
        self._power_on()
        reply({"ok": True, "power": "on", "boots": self.boots})

    def _ctl_set(self, req: dict, reply: Callable[[dict], None]) -> None:
        values = req.get("values") or {}
        if not values:
            raise ControlError("set needs key=value pairs; keys: " + ", ".join(self.SETTABLE))
        for key, raw in values.items():  # all or nothing: a bad value leaves every setting as it was
            self._check_one(key, raw)
        applied = {}
        for key, raw in values.items():
            applied[key] = self._set_one(key, raw)
        reply({"ok": True, "set": applied})

    def _ctl_scenario(self, req: dict, reply: Callable[[dict], None]) -> None:
        data = req.get("scenario")
        if data is None:
            self.meta["scenario"] = None
        else:
            sc = gridmodel.parse_scenario(data, str(req.get("source") or "scenario"), radio.SCENARIO_KEYS)
            sc.update({"from": None if self.powered else self.meta["world_ns"] // 1000, "next": 0, "cycle": 0})
            self.meta["scenario"] = sc
        self.state.write_meta(self.meta)
        if self.bus and self.powered:
            self._to_vm({"t": "scenario", "scenario": self.meta["scenario"]})
        sc = self.meta["scenario"]
        reply({"ok": True, "scenario": None if sc is None else {"steps": len(sc["steps"]), "repeat": sc["repeat"],
                                                                "period_s": (sc["period_us"] or 0) / 1e6 or None}})

    def _ctl_press(self, req: dict, reply: Callable[[dict], None]) -> None:
        name = req.get("input", "button")
        pin = self.board["pins"].get(name)
        if name not in PRESSABLE or pin is None:
            has = ", ".join(n for n in PRESSABLE if n in self.board["pins"]) or "none"
            raise ControlError(f"unknown input {name!r}; this board has: {has}")
        hold = gridmodel.finite("--for", req.get("for", 0.2), 0, 3600)
        if not hold > 0:
            raise ControlError("--for is a duration in seconds, 0 < s <= 3600")
        active = 0 if pin["active"] == "low" else 1
        gpio = pin["gpio"]
        # held for `hold` seconds of device time, whatever the run's speed or the host's load: the VM releases it
        # (and says so); until the VM has it, and while the board is off, the host keeps the release's due time
        if self.bus and self.powered:
            self._to_vm({"t": "input", "gpio": gpio, "value": active, "for_us": int(hold * 1e6), "release": active ^ 1})
        self.inputs[gpio] = active
        self.releases[gpio] = {"value": active ^ 1, "due_ns": self.meta["world_ns"] + int(hold * 1e9)}
        reply({"ok": True, "input": name, "gpio": pin["gpio"], "held_for": hold})

    def _ctl_modem(self, req: dict, reply: Callable[[dict], None]) -> None:
        """`ctl modem ACTION`: the NB-IoT module pulled out or put back, wedged, registration denied or allowed."""
        action = radio.modem_action(req.get("action"))
        if getattr(self, "modem_address", None) is None:
            raise ControlError("no NB-IoT module fitted: start the meter with `meter-emu run --modem` (its board names uarts.modem)")
        m = self.meta["modem"]
        if action in ("remove", "insert"):
            m["present"] = action == "insert"
        elif action in ("deny", "allow"):
            m["deny"] = action == "deny"
        elif not self.powered:
            raise ControlError("the board is off: a module without power cannot wedge")
        self.state.write_meta(self.meta)
        if self.bus and self.powered:
            msg: dict[str, object] = {"t": "modem", "do": "deny" if action in ("deny", "allow") else action}
            if action in ("deny", "allow"):
                msg["on"] = action == "deny"
            self._to_vm(msg)
        reply({"ok": True, "modem": action, "present": m["present"], "deny": m["deny"]})

    def _ctl_stop(self, req: dict, reply: Callable[[dict], None]) -> None:
        reply({"ok": True, "stopping": True})
        self.events.put(("stop", None))
