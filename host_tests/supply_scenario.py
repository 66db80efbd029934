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
CUT_LATE_S = 60  # the issue's bound: disconnected within 60 s after the window ends


class ScenarioError(AssertionError):
    pass


def run_ota(*args, expect: int = 0) -> dict | list | str:
    p = ota(*args, timeout=120)
    if p.returncode != expect:
        raise ScenarioError(f"ota {' '.join(map(str, args))}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    try:
        return json.loads(p.stdout)
    except ValueError:
        return p.stdout + p.stderr


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
            shown = "\n".join(f"{x['seq']} {x['rtc']} {x['code']} {x['event']} {x['detail']}" for x in self.events())
            raise ScenarioError(f"relay not {'closed' if closed else 'open'}; the meter's events:\n{shown}\n"
                                f"{self.status()}") from e


def start_day(emu: Emulator, day: str) -> Supply:
    """Set the clock to 17:00 local on `day`, configure the supply, top up enough for 1.5 h of a 2 kW load."""
    s = Supply(emu)
    s.signed("meter", "clock", "--time", utc(day, "17:00"), "--json")
    s.signed("meter", "tariff", "--set", _settings_file(emu), "--json")
    s.load(KETTLE_A)
    return s


def _settings_file(emu: Emulator) -> Path:
    p = emu.state.parent / "supply-settings.json"
    p.write_text(json.dumps(SETTINGS))
    return p


def day_cycle(s: Supply, day: str, next_day: str) -> dict:
    """One day: 3000 of credit at 17:00 runs out about 18:30 inside the window; no cut until 08:00; the cut comes
    within 60 s of 08:00; a top-up closes the relay at once. Returns figures."""
    now = s.rtc()
    if now is not None and now < utc(day, "17:00"):
        s.run_until(utc(day, "17:00"))
    r = s.topup(3000 + max(0, -s.status()["credit"]["balance"]))
    assert r["output"], r
    s.run_until(utc(day, "21:00"))
    st = s.status()
    c = st["credit"]
    if not (c["balance"] < 0 and st["output"] and c["window"]):
        raise ScenarioError(f"21:00: the credit should be spent and the supply on inside the window: {st}")
    s.note(f"{day} 21:00 balance {c['balance']}, supply on inside the window")
    s.run_until(utc(next_day, "08:03"))
    st = s.status()
    if st["output"] or s.relay_closed():
        raise ScenarioError(f"08:03: the supply should be off: {st}")
    cut = [e for e in s.events() if e["code"] == 402][-1]
    after = cut["rtc"] - utc(next_day, "08:00")
    if not 0 <= after <= CUT_LATE_S:
        raise ScenarioError(f"the credit cut came {after} s after 08:00: {cut}")
    reading = s.ota("meter", "read", "--json")
    watts = reading["obis"]["1.0.1.7.0.255"]  # type: ignore[index]
    if abs(watts) > 5:
        raise ScenarioError(f"disconnected, the meter should measure no load, not {watts} W")
    s.note(f"{next_day} cut {after} s after 08:00 local, {watts:.1f} W measured with the relay open")
    return {"cut_after_s": after, "topup_s": s.topup_s[-1]}
