# The mains behind the emulated meter: the grid's voltage (level, frequency with a slow drift, harmonics, sags and
# swells) and the house's load (resistive, inductive, capacitive or a rectifier; its current, power factor, export,
# a stepping pattern), on the virtual clock. The front ends read it (machine.ADC through _emu_adc, the BL0942 through
# _emu_bl0942), and it keeps the TRUE energy integral the accuracy tests compare the firmware's registers with.
#
# Everything is piecewise constant between change points (a setting from the host, a scenario step, the end of a
# sag, a load step), so the integral is exact: P = sum over harmonics of Vh*Ih*cos(phi_h), Q likewise with sin
# (+ lagging), S = Vrms*Irms, accumulated lazily from the last touch whenever something reads the model.
#
# Settings are a flat dict, keyed as `meter-emu ctl set` names them (the host validates them: emulator/grid.py).
# Anchors ("grid.sag_from", "load.steps_from", the scenario's "from") are world-clock microseconds (the RTC's
# world time, carried across boots), so a sag, a load pattern or a scenario continues through a power cut.
import math

import _emu_bus as bus
import _emu_clock as clock
import _emu_rtc as rtc

_TWO_PI = 2.0 * math.pi
_SQRT2 = math.sqrt(2.0)
# A capacitor-input rectifier draws a narrow pulse near each voltage peak: odd harmonics in these proportions of
# the fundamental, with the signs of a pulse centred on the peak (h = 3, 7: opposite), and the pulse a little
# ahead of the peak (the capacitor recharges while the voltage still rises), so the fundamental leads slightly.
RECT = ((1, 1.0), (3, 0.8), (5, 0.6), (7, 0.4), (9, 0.2))
RECT_LEAD_DEG = 5.0
TRUTH_PERIOD_US = 5000000  # at most one "truth" bus message per 5 s of device time
_TRUTH_WALL_MS = 500  # ... and per 0.5 s of wall time (at --speed max, 5 device seconds pass in milliseconds)

_cfg = bus.config
S = dict(_cfg["grid"])  # every setting, from the host (emulator/grid.py defaults(), then meta.json)
_CUT = "power.cut"  # a scenario's power cut (emulator/grid.py CUT_KEY)
SCEN = _cfg.get("scenario")  # {"steps": [[at_us, {settings}], ...], "repeat", "period_us", "from", "next", "cycle"}
TRUTH = {"import_wh": 0.0, "export_wh": 0.0, "q_import_varh": 0.0, "q_export_varh": 0.0, "s_vah": 0.0,
         "seconds": 0.0}
for _k, _v in (_cfg.get("truth") or {}).items():
    if _k in TRUTH:
        TRUTH[_k] = float(_v)

# derived state (see _recompute)
V = []  # voltage terms: (order, peak volts, phase rad)
I_TERMS = []  # current terms: (order, peak amperes, phase rad)
P = 0.0
Q = 0.0
VRMS = 0.0
IRMS = 0.0
_next_us = 0  # device time of the next change point
_last_us = 0  # device time the truth is integrated to
_sag_factor = 1.0
_step_current = None
# phase of the fundamental: theta(t) = th0 + w0*(t - t0) + dT*(c0 - cos(wd*t)), t in seconds (drift integrated)
_th0 = 0.0
_t0 = 0.0
_w0 = 0.0
_dT = 0.0
_wd = 0.0
_c0 = 0.0
_f0 = 50.0
_drift = 0.0
segment_hooks = []  # fn(dt_us, p, q): told every stretch of constant settings as it is integrated (the BL0942)
_dirty = False  # settings changed in the VM (scenario step, anchors): report them at the next idle point
_sent_us = 0
_sent_ms = None


def world_us(now):
    return rtc._world0_ns // 1000 + now


def _dev(world):
    return world - rtc._world0_ns // 1000


def theta(t_us):
    t = t_us * 1e-6
    th = _th0 + _w0 * (t - _t0)
    if _dT:
        th += _dT * (_c0 - math.cos(_wd * t))
    return th


def frequency(t_us):
    if _dT:
        return _f0 + _drift * math.sin(_wd * t_us * 1e-6)
    return _f0


def _set_phase_params(now):
    """(Re)anchor theta at `now` so the waveform stays continuous when the frequency settings change."""
    global _th0, _t0, _w0, _dT, _wd, _c0, _f0, _drift
    th = theta(now) if _w0 else 0.0
    _f0 = float(S["grid.frequency"])
    _drift = float(S["grid.drift_hz"])
    per = float(S["grid.drift_period_s"]) or 600.0
    _t0 = now * 1e-6
    _th0 = th
    _w0 = _TWO_PI * _f0
    _wd = _TWO_PI / per
    _dT = _drift * per if _drift else 0.0
    _c0 = math.cos(_wd * _t0)


def v_at(t_us):
    """Instantaneous line volts at device time t_us."""
    th = theta(t_us)
    s = 0.0
    for h, a, ph in V:
        s += a * math.sin(h * th + ph)
    return s


def i_at(t_us):
    """Instantaneous line amperes (0 with the relay open; negative half-waves first when exporting)."""
    if not I_TERMS:
        return 0.0
    th = theta(t_us)
    s = 0.0
    for h, a, ph in I_TERMS:
        s += a * math.sin(h * th + ph)
    return s


def _load_current(now):
    """The load's RMS current at `now` (a stepping pattern, or load.current) and when the next step begins."""
    steps = S["load.steps"]
    if not steps:
        return float(S["load.current"]), None
    anchor = S["load.steps_from"]
    s0 = now if anchor is None else _dev(anchor)
    total = 0
    for _a, sec in steps:
        total += int(sec * 1000000)
    pos = (now - s0) % total
    acc = 0
    for a, sec in steps:
        acc += int(sec * 1000000)
        if pos < acc:
            return float(a), now + (acc - pos)
    return float(steps[-1][0]), now + (total - pos)


def _recompute(now):
    global V, I_TERMS, P, Q, VRMS, IRMS, _next_us, _sag_factor
    nxt = now + (1 << 62)
    # voltage: grid.voltage is the total RMS (fundamental and harmonics); a sag/swell scales it for a while
    sag = S["grid.sag"]
    fac = 1.0
    if sag:
        start = _dev(S["grid.sag_from"]) if S["grid.sag_from"] is not None else now
        end = start + int(sag[1] * 1000000)
        if start <= now < end:
            fac = float(sag[0])
            nxt = min(nxt, end)
        elif now < start:
            nxt = min(nxt, start)
    _sag_factor = fac
    harm = S["grid.harmonics"] or []
    norm = 1.0
    for h in harm:
        norm += h[1] * h[1]
    v1 = float(S["grid.voltage"]) * fac / math.sqrt(norm)
    vt = [(1, v1, 0.0)]
    for h in harm:
        vt.append((int(h[0]), v1 * h[1], math.radians(h[2] if len(h) > 2 else 0.0)))
    # current
    amps, step_end = _load_current(now)
    if step_end is not None:
        nxt = min(nxt, step_end)
    if not S["relay.closed"]:
        amps = 0.0
    kind = S["load.type"]
    it = []
    if amps > 0:
        if kind == "rectifier":
            norm = 0.0
            for _h, r in RECT:
                norm += r * r
            i1 = amps / math.sqrt(norm)
            lead = math.radians(RECT_LEAD_DEG)
            for h, r in RECT:
                it.append((h, i1 * r, h * lead + (0.0 if h % 4 == 1 else math.pi)))
        else:
            pf = 1.0 if kind == "resistive" else min(1.0, max(0.0, float(S["load.pf"])))
            phi = math.acos(pf)
            if kind == "capacitive":
                phi = -phi
            it.append((1, amps, -phi))  # current lags the voltage by phi (leads when phi < 0)
        if S["load.export"]:
            it = [(h, a, ph + math.pi) for h, a, ph in it]
    # powers: only harmonics present in both carry power
    p = 0.0
    q = 0.0
    vs = {}
    for h, a, ph in vt:
        vs[h] = (a, ph)
    for h, a, ph in it:
        if h in vs:
            va, vph = vs[h]
            phi = vph - ph
            p += va * a * math.cos(phi)
            q += va * a * math.sin(phi)
    vr = 0.0
    for _h, a, _ph in vt:
        vr += a * a
    ir = 0.0
    for _h, a, _ph in it:
        ir += a * a
    VRMS = math.sqrt(vr)
    IRMS = math.sqrt(ir)
    P = p
    Q = q
    V = [(h, a * _SQRT2, ph) for h, a, ph in vt]
    I_TERMS = [(h, a * _SQRT2, ph) for h, a, ph in it]
    t = _scenario_next()
    if t is not None:
        nxt = min(nxt, t)
    _next_us = nxt


# -- per-meter tolerances -----------------------------------------------------------------------------------------
def draws(salt, n):
    """n uniform numbers in [-1, 1) drawn reproducibly from this meter's unique id and `salt` (FNV-1a seed,
    xorshift32): a meter's component tolerances stay the same across boots, and differ from meter to meter."""
    h = 2166136261
    for b in bytes.fromhex(_cfg.get("unique_id", "00")) + salt.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    x = h or 1
    out = []
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out.append(x / 2147483648.0 - 1.0)
    return out


def gauss_table(n, salt, sigma=1.0):
    """n normal numbers with this sigma (Box-Muller on draws()): the VM's random module has no gauss()."""
    u = draws(salt, n + 1)
    out = []
    for k in range(0, n, 2):
        a = (u[k] + 1.0) * 0.5 or 1e-12
        b = (u[k + 1] + 1.0) * 0.5
        r = math.sqrt(-2.0 * math.log(a))
        out.append(sigma * r * math.cos(_TWO_PI * b))
        out.append(sigma * r * math.sin(_TWO_PI * b))
    return out[:n]


# -- scenario ------------------------------------------------------------------------------------------------------
def _scenario_next():
    """Device time of the scenario's next step, or None."""
    sc = SCEN
    if not sc or sc["from"] is None:
        return None
    steps = sc["steps"]
    k = sc["next"]
    if k >= len(steps):
        return None
    return _dev(sc["from"]) + sc["cycle"] * (sc.get("period_us") or 0) + steps[k][0]


link_hooks = []  # the NB-IoT module (_emu_modem): a scenario step's link.* settings, at the step's device time


def _apply(values, at_world):
    global _dirty
    freq = False
    for key, val in values.items():
        if key.startswith("link."):
            for fn in link_hooks:
                fn(key, val)
            continue
        S[key] = val
        if key == "grid.sag":
            S["grid.sag_from"] = at_world
        elif key == "load.steps":
            S["load.steps_from"] = at_world
        elif key.startswith("grid.") and key[5:] in ("frequency", "drift_hz", "drift_period_s"):
            freq = True
    _dirty = True
    return freq


def _boundary(t):
    """Apply what happens at device time t (scenario steps due) and recompute the model from t."""
    freq = False
    sc = SCEN
    while True:
        due = _scenario_next()
        if due is None or due > t:
            break
        k = sc["next"]
        values = sc["steps"][k][1]
        sc["next"] = k + 1
        if sc["next"] >= len(sc["steps"]) and sc.get("repeat") and sc.get("period_us"):
            sc["next"] = 0
            sc["cycle"] += 1
        if _CUT in values:  # the power fails here, at the step's device time (the host brings it back)
            bus.halt({"t": "cut", "off_s": values[_CUT]})  # the halt hook integrates the truth up to now
        if _apply(values, world_us(due)):
            freq = True
    if freq:
        _set_phase_params(t)
    _recompute(t)


def _integrate(t):
    global _last_us
    dt = t - _last_us
    if dt <= 0:
        return
    _last_us = t
    p = P
    q = Q
    if p or q or IRMS:
        h = dt / 3.6e9  # µs → hours
        if p > 0:
            TRUTH["import_wh"] += p * h
        elif p < 0:
            TRUTH["export_wh"] -= p * h
        if q > 0:
            TRUTH["q_import_varh"] += q * h
        elif q < 0:
            TRUTH["q_export_varh"] -= q * h
        TRUTH["s_vah"] += VRMS * IRMS * h
    TRUTH["seconds"] += dt * 1e-6
    for fn in segment_hooks:
        fn(dt, p, q)


def touch(now):
    """Bring the model to device time `now`: integrate stretch by stretch over the change points on the way."""
    while _next_us <= now:
        t = _next_us
        _integrate(t)
        _boundary(t)
    _integrate(now)


# -- the host's messages -------------------------------------------------------------------------------------------
def _on_grid(msg):
    now = clock.now_us()
    touch(now)
    vals = msg["set"]
    w = world_us(now)
    freq = _apply(vals, w)
    for key in ("grid.sag_from", "load.steps_from"):
        if key in vals:
            S[key] = vals[key] if vals[key] is not None else w
    if freq:
        _set_phase_params(now)
    _recompute(now)


def _on_scenario(msg):
    global SCEN, _dirty
    now = clock.now_us()
    touch(now)
    SCEN = msg["scenario"]
    if SCEN is not None and SCEN.get("from") is None:
        SCEN["from"] = world_us(now)
    _dirty = True
    _recompute(now)


def _on_power_cut(msg):
    bus.halt({"t": "off"})


def truth(now):
    d = dict(TRUTH)
    d["us"] = now
    return d


def true_values(now):
    s = VRMS * IRMS
    return {"voltage": VRMS, "current": IRMS, "p_w": P, "q_var": Q, "s_va": s, "pf": (P / s) if s > 0 else 1.0,
            "frequency_hz": frequency(now), "us": now}


def progress(now):
    sc = SCEN
    if not sc:
        return None
    n = len(sc["steps"])
    return {"steps": n, "next": sc["next"], "cycle": sc["cycle"], "repeat": bool(sc.get("repeat")),
            "elapsed_s": (world_us(now) - sc["from"]) / 1e6 if sc["from"] is not None else 0.0,
            "done": sc["next"] >= n}


def status():
    now = clock.now_us()
    touch(now)
    return {"grid": S, "true": true_values(now), "truth": truth(now), "scenario": progress(now)}


def state_msg(now):
    return {"t": "grid_state", "settings": S, "scenario": SCEN, "truth": truth(now)}


def idle():
    """At an idle point: report changed settings at once, the truth every TRUTH_PERIOD_US of device time."""
    global _dirty, _sent_us, _sent_ms
    now = clock.now_us()
    if not _dirty and now - _sent_us < TRUTH_PERIOD_US:
        return
    import utime

    ms = utime.ticks_ms()
    if not _dirty and _sent_ms is not None and utime.ticks_diff(ms, _sent_ms) < _TRUTH_WALL_MS:
        return
    touch(now)
    _sent_us = now
    _sent_ms = ms
    # (as shim work: the firmware may have filled the heap, and a MemoryError here, inside the firmware's asyncio
    # wait, once ended the app of a meter serving DLMS and a signed command at once; the shims' room is given up for
    # a second try only, and a report the heap has no room for even so is dropped and a state report sent again at
    # the next idle. Not bus.with_room, which gives the room up and takes it again each time: the wall paces these
    # reports, and the room's 8 KB block taken again elsewhere at host-timed moments moved the firmware's holes)
    lost = bus.dropped
    if _dirty:
        _dirty = False
        bus.shim_work(_send_state, now)
        if bus.dropped != lost:
            _dirty = True
    else:
        bus.shim_work(_send_truth, now)


def _send_state(now):
    bus.send(state_msg(now))


def _send_truth(now):
    bus.send({"t": "truth", "truth": truth(now)})


def _halt_hook(msg):
    now = clock.now_us()
    touch(now)
    msg["truth"] = truth(now)
    msg["grid_state"] = {"settings": S, "scenario": SCEN}


def start():
    global _last_us, _sent_us
    now = clock.now_us()
    _last_us = now
    _sent_us = now
    if SCEN is not None and SCEN.get("from") is None:  # `run --scenario`: it starts at power-up
        SCEN["from"] = world_us(now)
    _set_phase_params(now)
    _recompute(now)


bus.on("grid", _on_grid)
bus.on("scenario", _on_scenario)
bus.on("power_cut", _on_power_cut)
bus.halt_hooks.append(_halt_hook)
bus.idle_hooks.append(idle)
start()
