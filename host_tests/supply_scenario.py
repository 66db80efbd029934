"""The prepaid supply through the whole firmware in the emulator (issue 6), driven the way a field team and a
head-end would: `ota meter clock/tariff/topup/relay/events` with the command key, the button through `meter-emu ctl
press`, the load through `meter-emu ctl set`. Used by host_tests/e2e/test_supply.py (one day); the month-long
run built from day_cycle() is still to come.

Time: the meter's clock is set to a chosen UTC moment; local time is UTC + 5:30 (meter_settings' default). The
no-disconnection window is 18:00-08:00 local every day."""

from __future__ import annotations

import calendar
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from host_tests.emu import Emulator, ota

ROOT = Path(__file__).resolve().parents[1]
KEY = ROOT / "keys" / "dev" / "command-DEVELOPMENT-ONLY-ed25519.pem"
LOCAL = 330 * 60  # meter_settings.DEFAULTS["tz_offset_min"]
SIGNED_FOR = 90 * 86400  # envelopes outlive the scenario's device time
SETTINGS = {"tariff": {"flat": 1000}, "windows": {"daily": [["18:00", "08:00"]]}, "allowance": 0,
            "emergency": 2000, "thresholds": [30, 10, 0],
            "load_limit": {"threshold_w": 4000, "over_s": 10, "lockout_s": 120, "max_trips": 3}}
KETTLE_A = 2000 / 230  # 2 kW at 230 V
PERSIST_S = 60  # meter_settings' persist_interval_s: a power failure is dated by the last save before it
CUT_LATE_S = 60  # the issue's bound: disconnected within 60 s after the window ends


class ScenarioError(AssertionError):
    pass


def run_ota(*args, expect: int = 0) -> dict | list | str:
    p = ota(*args, timeout=120)
    if p.returncode != expect:
        raise ScenarioError(f"ota {' '.join(map(str, args))}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    try:
        out = json.loads(p.stdout)
    except ValueError:
        return p.stdout + p.stderr
    if isinstance(out, dict) and out.pop("ok", None) is True and set(out) == {"events"}:
        return out["events"]
    return out


def utc(local_day: str, hhmm: str) -> int:
    """UTC seconds of a local date and time ("2026-12-01", "17:00")."""
    t = time.strptime(f"{local_day} {hhmm}", "%Y-%m-%d %H:%M")
    return calendar.timegm(t) - LOCAL


def local_hhmm(rtc: int) -> tuple[int, int]:
    t = time.gmtime(rtc + LOCAL)
    return t.tm_hour, t.tm_min


@dataclass
class Supply:
    emu: Emulator
    log: list[str] = field(default_factory=list)
    topup_s: list[float] = field(default_factory=list)
    tid: int = 0

    # -- the meter's side ----------------------------------------------------------------------------------------
    def ota(self, *args, expect: int = 0):
        return run_ota(*args, "--port", self.emu.console, expect=expect)

    def signed(self, *args, expect: int = 0):
        return self.ota(*args, "--key", KEY, "--expires-in", SIGNED_FOR, expect=expect)

    def status(self) -> dict:
        return self.ota("meter", "relay", "status", "--json")  # type: ignore[return-value]

    def events(self) -> list[dict]:
        return self.ota("meter", "events", "--json")  # type: ignore[return-value]

    def rtc(self) -> int | None:
        st = self.emu.ctl("time")
        if not st.get("rtc_valid", True) or st["rtc"].startswith("2000"):
            return None
        return calendar.timegm(time.strptime(st["rtc"], "%Y-%m-%dT%H:%M:%SZ"))

    def topup(self, amount: int) -> dict:
        self.tid += 1
        r = self.signed("meter", "topup", "--amount", amount, "--tid", self.tid, "--json")
        assert isinstance(r, dict)
        self.topup_s.append(r["round_trip_s"])  # the SMP exchange: the meter answers once the relay has moved
        self.note(f"top-up {amount}: balance {r['balance']}, supply {'on' if r['output'] else 'off'}")
        return r

    def load(self, amps: float) -> None:
        self.emu.ctl("set", "grid.voltage=230", "load.type=resistive", f"load.current={amps}", "load.pf=1")

    def note(self, what: str) -> None:
        self.log.append(what)

    def run_until(self, t: int, timeout: float = 600) -> int:
        """Run device time at full speed until the meter's RTC reads `t`, then at 1x (`meter-emu ctl run`: the board
        stops there itself, so no poll overshoots it). Returns the RTC reading after the run."""
        r = self.emu.ctl("run", "--until", str(t), "--wait", "--timeout", str(timeout), check=False,
                         timeout=timeout + 30)
        if not r.get("arrived"):
            raise ScenarioError(f"device time did not reach {t}: {r}")
        now = self.rtc()
        assert now is not None and now >= t, (now, t)
        return now

    def relay_closed(self) -> bool:
        return self.emu.status()["relay"] == "closed"

    def wait_relay(self, closed: bool, timeout: float = 20) -> None:
        try:
            self.emu.wait_status(lambda st: (st["relay"] == "closed") == closed, timeout=timeout,
                                 what=f"relay {'closed' if closed else 'open'}")
        except TimeoutError as e:
            raise ScenarioError(f"relay not {'closed' if closed else 'open'}; the meter's events:\n"
                                f"{_shown(self.events())}\n"
                                f"{self.status()}") from e


def _shown(events: list[dict]) -> str:
    return "\n".join(f"{x['seq']} {x['rtc']} {x['code']} {x['event']} {x['detail']}" for x in events)


def start_day(emu: Emulator, day: str, settings: dict | None = None) -> Supply:
    """Set the clock to 17:00 local on `day`, configure the supply (SETTINGS unless given), put on the kettle."""
    s = Supply(emu)
    s.signed("meter", "clock", "--time", utc(day, "17:00"), "--json")
    s.signed("meter", "tariff", "--set", _settings_file(emu, settings or SETTINGS), "--json")
    s.load(KETTLE_A)
    return s


def _settings_file(emu: Emulator, settings: dict) -> Path:
    p = emu.state.parent / "supply-settings.json"
    p.write_text(json.dumps(settings))
    return p


def credit_cycle(s: Supply, start: int, inside: int, window_end: int, credit: int) -> dict:
    """From `start`: top up `credit` (plus any debt), which runs out inside the no-disconnection window; at `inside`
    the balance is spent and the supply still on; the cut comes within CUT_LATE_S of `window_end` and the meter then
    measures no load. Returns {"cut_after_s", "topup_s"}."""
    now = s.rtc()
    if now is not None and now < start:
        s.run_until(start)
    s.load(KETTLE_A)
    r = s.topup(credit + max(0, -s.status()["credit"]["balance"]))
    if not r["output"]:
        raise ScenarioError(f"a top-up that clears the debt should close the relay: {r}")
    s.wait_relay(True, timeout=5)
    s.run_until(inside)
    st = s.status()
    c = st["credit"]
    if not (c["balance"] < 0 and st["output"] and c["window"]):
        raise ScenarioError(f"inside the window the credit should be spent and the supply on: {st}")
    s.note(f"{_hhmm(inside)} balance {c['balance']}, supply on inside the window")
    s.run_until(window_end + 3 * 60)
    st = s.status()
    if st["output"] or s.relay_closed():
        raise ScenarioError(f"3 min after the window the supply should be off: {st}")
    cut = [e for e in s.events() if e["code"] == 402][-1]
    after = cut["rtc"] - window_end
    if not 0 <= after <= CUT_LATE_S:
        raise ScenarioError(f"the credit cut came {after} s after the window's end: {cut}")
    reading = s.ota("meter", "read", "--json")
    watts = reading["obis"]["1.0.1.7.0.255"]  # type: ignore[index]
    if abs(watts) > 5:
        raise ScenarioError(f"disconnected, the meter should measure no load, not {watts} W")
    s.note(f"{_hhmm(window_end)} +{after} s: cut, {watts:.1f} W measured with the relay open")
    return {"cut_after_s": after, "topup_s": s.topup_s[-1]}


def _hhmm(t: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t + LOCAL))


def day_cycle(s: Supply, day: str, next_day: str) -> dict:
    """One day: 3000 of credit at 17:00 runs out about 18:30 inside the 18:00-08:00 window; no cut until 08:00; the
    cut within 60 s of 08:00; a top-up then closes the relay at once."""
    return credit_cycle(s, utc(day, "17:00"), utc(day, "21:00"), utc(next_day, "08:00"), 3000)


# -- what else a month brings -----------------------------------------------------------------------------------
def out_of_order_topups(s: Supply) -> None:
    """Two tokens entered in the reverse of their issue order: both credit; a replay of either is refused (exit 14)
    and credits nothing."""
    before = s.status()["credit"]["balance"]
    s.tid += 2
    later = s.signed("meter", "topup", "--amount", 700, "--tid", s.tid, "--json")
    earlier = s.signed("meter", "topup", "--amount", 300, "--tid", s.tid - 1, "--json")
    after = s.status()["credit"]["balance"]
    if not (later["balance"] - before <= 700 and earlier["balance"] - later["balance"] <= 300  # type: ignore[index]
            and 1000 - 30 <= after - before <= 1000):
        raise ScenarioError(f"two tokens out of order should both credit: {before} -> {later} -> {earlier}")
    p = run_ota("meter", "topup", "--port", s.emu.console, "--key", KEY, "--amount", 300, "--tid", s.tid - 1,
                "--expires-in", SIGNED_FOR, expect=14)
    if "token-replayed" not in str(p) or s.status()["credit"]["balance"] > after:
        raise ScenarioError(f"a replayed token should be refused and credit nothing: {p}")
    s.note(f"tokens {s.tid} then {s.tid - 1}: both credited ({after - before}); the replay refused")


def load_limit_trip(s: Supply) -> None:
    """4.6 kW over the 4 kW limit: a trip after 10 s (event 407, nothing measured), back by itself after the
    120 s lockout."""
    trips = sum(e["code"] == 407 for e in s.events())
    s.load(20.0)
    t = s.rtc()
    assert t is not None
    s.run_until(t + 30)
    s.wait_relay(False)
    if sum(e["code"] == 407 for e in s.events()) != trips + 1:
        raise ScenarioError("an overload should trip the load limit once (event 407)")
    s.load(KETTLE_A)
    s.run_until(t + 200)
    s.wait_relay(True)
    s.note("load limit: tripped at 4.6 kW, restored after the lockout")


def emergency_from_button(s: Supply) -> None:
    """With the supply cut for credit outside a window, the consumer's button takes the emergency credit (once)
    and the relay closes; a second press gives nothing more."""
    st = s.status()
    if st["output"] or st["credit"]["emergency_taken"]:
        raise ScenarioError(f"emergency credit needs a spent balance, the supply off, and none taken yet: {st}")
    pressed_at = s.rtc()
    assert pressed_at is not None
    s.emu.ctl("press", "button", "--for", "0.3")
    s.wait_relay(True)
    st = s.status()
    taken = [e for e in s.events() if e["code"] == 403]
    if st["credit"]["emergency_taken"] != SETTINGS["emergency"] or not taken:
        raise ScenarioError(f"the button should have taken the emergency credit: {st}")
    if not 0 <= taken[-1]["rtc"] - pressed_at <= 60:  # at the press's reading (1x: seconds, however busy the host)
        raise ScenarioError(f"the emergency credit came {taken[-1]['rtc'] - pressed_at} s after the press; the "
                            f"meter's events:\n{_shown(s.events())}")
    s.note(f"button: emergency credit {SETTINGS['emergency']}, supply back on")


def rtc_loss(s: Supply, until_true: int) -> None:
    """The RTC's battery dies and the power fails (inside the night's window, credit spent): the meter boots not
    knowing the time, says so (event 406) and does not cut for credit, even past the window's end (`until_true`);
    once the head-end sets the clock it cuts within CUT_LATE_S."""
    st = s.status()
    if not (st["output"] and st["credit"]["window"] and st["credit"]["balance"] < 0):
        raise ScenarioError(f"before the RTC loss the credit should be spent and the supply on inside a window: {st}; "
                            f"the meter's events:\n{_shown(s.events())}")
    true0 = s.rtc()
    assert true0 is not None
    world0 = s.emu.ctl("time")["world_s"]
    boots = s.emu.status()["boots"]
    s.emu.ctl("set", "rtc.lost=1")
    s.emu.ctl("power-cut", "--off", "1")
    s.emu.wait_boots(boots + 1)
    st = s.status()
    if st["clock_known"] or not st["output"]:
        raise ScenarioError(f"after the RTC loss the meter should not know the time and keep the supply on: {st}; "
                            f"the meter's events:\n{_shown(s.events())}")

    def true_now() -> int:
        return int(true0 + s.emu.ctl("time")["world_s"] - world0)

    r = s.emu.ctl("run", "--for", str(max(1, until_true - true_now())), "--wait", "--timeout", "600", timeout=630)
    if not r.get("arrived"):
        raise ScenarioError(f"device time did not run: {r}")
    st = s.status()
    if not st["output"] or not s.relay_closed() or st["clock_known"]:
        raise ScenarioError(f"with the time unknown credit must never cut: {st}")
    evs = s.events()
    if not any(e["code"] == 406 for e in evs):
        raise ScenarioError("the meter should record that the time is unknown (event 406)")
    fail = [e for e in evs if e["code"] == 101]
    if not fail or not true0 - PERSIST_S - 2 <= fail[-1]["rtc"] <= true0 + 1:
        raise ScenarioError(f"the power failure should be dated by the last register save before it: {fail}")
    now = true_now()
    s.signed("meter", "clock", "--time", now, "--json")
    s.run_until(now + CUT_LATE_S)
    s.wait_relay(False, timeout=10)
    cut = [e for e in s.events() if e["code"] == 402][-1]
    if not 0 <= cut["rtc"] - now <= CUT_LATE_S:
        raise ScenarioError(f"once the clock is set the cut should follow within {CUT_LATE_S} s: {cut}, set {now}")
    s.note(f"RTC lost at {_hhmm(true0)}: no cut while unknown; clock set at {_hhmm(now)}, cut "
           f"{cut['rtc'] - now} s later")


def month(s: Supply, days: list[str], progress=print) -> dict:
    """The month-long scenario on a BL0942 board: each day credit runs out inside the night's window and is cut
    within 60 s of 08:00 (day_cycle); on the way, top-ups out of order (day 2), a load-limit trip (day 4), emergency
    credit from the button after a daylight cut (day 6: 2000 of emergency credit cannot clear a night's debt, so a
    morning top-up clears it first and runs out) and an RTC loss at night (day 8), each checked. `days` has
    one more date than the days run."""
    cuts, t0 = [], time.monotonic()
    for k in range(len(days) - 1):
        day, nxt = days[k], days[k + 1]
        if k == 7:  # the RTC dies at 02:00 inside the window; the head-end sets the clock at 08:10
            s.run_until(utc(day, "17:00"))
            s.topup(3000 + max(0, -s.status()["credit"]["balance"]))
            s.run_until(utc(nxt, "02:00"))
            rtc_loss(s, utc(nxt, "08:10"))
        else:
            cuts.append(day_cycle(s, day, nxt)["cut_after_s"])
        if k == 1:
            out_of_order_topups(s)
        elif k == 3:
            s.topup(2000 - s.status()["credit"]["balance"])  # a morning top-up that clears the debt, an overload
            load_limit_trip(s)
        elif k == 5:  # a morning top-up that just clears the debt runs out in daylight: cut, then the button
            s.topup(300 - s.status()["credit"]["balance"])
            t = s.rtc()
            assert t is not None
            s.run_until(t + 15 * 60)
            s.wait_relay(False)
            emergency_from_button(s)
        progress(f"day {k + 1}/{len(days) - 1}: {s.log[-1]} ({time.monotonic() - t0:.0f} s)")
    return {"cut_after_s": cuts, "topup_s": s.topup_s, "wall_s": time.monotonic() - t0}


# -- hours on the ADC boards, which run near 50x at max speed (each reading is a burst of samples) ----------------
SHORT_SETTINGS = dict(SETTINGS, windows={"daily": [["17:15", "19:00"], ["20:30", "21:30"]]})


def hours(s: Supply, day: str, progress=print) -> dict:
    """The short scenario on an ADC board (start_day with SHORT_SETTINGS), about five hours of device time: 1000
    of credit at 17:00 runs out about 17:30 inside the 17:15-19:00 window and is cut within 60 s of 19:00; two tokens
    entered out of order and a replay, a top-up that clears the debt, a load-limit trip, the credit out again at about 19:40 (cut at once: no window), emergency
    credit from the button, which runs out inside the 20:30-21:30 window; the RTC dies there, and the meter cuts only
    once the head-end has set the clock."""
    t0 = time.monotonic()

    def done(what: str) -> None:
        progress(f"{what}: {s.log[-1]} ({time.monotonic() - t0:.0f} s)")

    r = credit_cycle(s, utc(day, "17:00"), utc(day, "18:30"), utc(day, "19:00"), 1000)
    done("window")
    out_of_order_topups(s)
    done("tokens")
    s.topup(600 - s.status()["credit"]["balance"])
    load_limit_trip(s)
    done("load limit")
    s.run_until(utc(day, "20:00"))  # 600 is about 18 min of the kettle
    s.wait_relay(False)
    emergency_from_button(s)
    done("emergency")
    s.run_until(utc(day, "21:10"))  # the emergency 2000 ran out at about 21:00, inside the second window
    rtc_loss(s, utc(day, "21:35"))
    done("RTC loss")
    return dict(r, wall_s=time.monotonic() - t0)
