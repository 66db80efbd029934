# The battery-backed RTC of the emulated board. Its reading is world time (virtual seconds since the state dir was
# created, carried across boots by the host) plus an offset that only RTC.datetime() changes, stretched by the
# crystal's drift. A dead battery (ctl set rtc.lost=1) makes it restart from 2000-01-01 at the next boot.
import _emu_bus as bus
import _emu_clock as clock

_EPOCH_2000 = 946684800

_offset_ns = 0
_world0_ns = 0
_drift_ppm = 0.0


def _world_ns():
    return _world0_ns + clock.now_us() * 1000


def now_ns():
    w = _world_ns()
    return w + int(w * _drift_ppm / 1e6) + _offset_ns


def set_ns(value_ns):
    global _offset_ns
    w = _world_ns()
    _offset_ns = value_ns - w - int(w * _drift_ppm / 1e6)
    bus.send({"t": "rtc", "offset_ns": _offset_ns, "world_ns": w})


def configure(cfg):
    global _offset_ns, _world0_ns, _drift_ppm
    _world0_ns = int(cfg["world_ns"])
    _drift_ppm = float(cfg.get("drift_ppm", 0.0))
    if cfg.get("valid", True):
        _offset_ns = int(cfg["offset_ns"])
    else:
        # a board whose RTC lost power starts counting from 2000-01-01 00:00:00
        _offset_ns = _EPOCH_2000 * 1000000000 - _world0_ns


def world_ns():
    return _world_ns()


def _on_drift(msg):
    global _drift_ppm, _offset_ns
    # keep the current reading continuous when the drift changes
    cur = now_ns()
    _drift_ppm = float(msg["ppm"])
    w = _world_ns()
    _offset_ns = cur - w - int(w * _drift_ppm / 1e6)


def world_at(rtc_s):
    """The world time (ns) at which this RTC will read `rtc_s` (its drift and offset undone)."""
    return int((rtc_s * 1000000000 - _offset_ns) / (1 + _drift_ppm / 1e6))


def run_to_world(target_ns, speed):
    # rounded up, plus 2 µs for world_at's float division: the run ends when the RTC reads the target, never a hair
    # before it (device time moves in whole µs and stops exactly at the end now)
    clock.run_to(-((_world0_ns - target_ns) // 1000) + 2, speed)


def _on_run(msg):
    # `ctl run --until RTC` or `--for SECONDS`: the target in world time, reported so it survives a reboot
    target = world_at(msg["rtc"]) if msg.get("rtc") is not None else _world_ns() + int(msg["for_s"] * 1e9)
    bus.send({"t": "run_target", "target_ns": target})
    run_to_world(target, msg["speed"])


bus.on("drift", _on_drift)
bus.on("run", _on_run)
bus.stamp = world_ns
