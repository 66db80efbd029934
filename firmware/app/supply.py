# The supply: what decides whether the consumer's load is connected. It owns the event log, the latching relay, the
# class-70 disconnect control, the prepaid credit and the load limit, and runs their rules at every metering reading
# (once a second): charge the energy, raise credit alerts, cut or restore for credit (never inside a
# no-disconnection window or while the time is unknown), trip and restore for the load limit, take the consumer's
# button press and supervise the relay. Remote commands arrive through app/supply_group.py (SMP group 66). Every
# change of the class-70 state goes through DisconnectControl's own methods (apply for the triggers), which persist it
# before the relay moves.
import time

from micropython import const

from app import clock, disconnect, events, load_limit, prepaid, relay, supply_settings
from app.credit_store import CreditStore
from loader import journal, settings, strict, wallclock

_RELAY_CHECK_READINGS = const(60)  # relay supervision once a minute
_AVERAGE_S = const(900)  # the recent consumption rate the time-left prediction uses: a 15-minute average
_COVER_HOLD_MS = const(60000)  # cover openings write at most one event (251) in this long; it counts the others
_HEALTHY_READINGS = const(10)  # loader/starts.py: after this many readings a start counts as healthy
LIMIT_REASON = "load limit"
BUTTON_REASON = "button"
REMOTE_REASON = "remote"
CAUSES = {1: "power on", 2: "hard reset", 3: "watchdog", 4: "deep sleep", 5: "soft reset"}


def _cause():
    try:
        import machine

        return CAUSES.get(machine.reset_cause(), "reset")
    except (ImportError, AttributeError):  # a port (or CPython) without it
        return "reset"


class Supply:
    def __init__(self, ctx, metering, set_rtc=clock.set_rtc):
        self.ctx = ctx
        self.m = metering
        self.log = events.EventLog(clock=wallclock.rtc_now, logs=events.LOGS)
        self.log.tick = metering.tick
        self.log.load()
        cause = _cause()
        if cause == "power on":
            # no power-fail interrupt on these boards: the failure is dated by the last register save before it
            # (at most persist_interval_s earlier), the restoration by the boot
            at = metering.regs.extra.get("at")
            if strict.is_int(at, 0, clock.TIME_MAX):  # a later one is damage (and beyond an event's 64-bit time)
                self.log.add(events.POWER_FAIL, "last saved reading", at)
            else:
                self.log.add(events.POWER_FAIL, "time unknown")
        self.log.add(events.POWER_RESTORE, cause)
        metering.attach(self.log)  # metering's start-up events (settings, registers) after the power events
        s, problem = supply_settings.load()
        if problem:
            self.log.add(events.SETTINGS_INVALID, problem)
        loader_conf, _ = settings.load()
        self.relay = relay.Relay(ctx.hal, loader_conf["relay_pulse_ms"], self.log.add)
        self.control = disconnect.DisconnectControl(self.relay, s["control_mode"])
        self.control.load(s["control_mode"])  # the settings' mode wins over the stored one
        self.control.reconcile()
        self.clock = clock.Clock(set_rtc=set_rtc)
        self.store = CreditStore()
        damaged = self.store.load()
        if damaged:
            self.log.add(events.CREDIT_RECORD_DAMAGED, damaged)
        self.settings = s
        self.limit = load_limit.LoadLimit(s["limit_p"])
        self.prepaid = self._prepaid(s)
        # registers that came back empty (both copies lost) restart the credit's energy mark from their total
        self.rebase = metering.persist.status == "lost"
        self.readings = 0
        self.avg_w = None
        self.presses = 0
        self.pressed = False
        self.last_refusal = ""
        ctx.hal.on_button(self._irq)
        self.cover = ctx.hal.cover_open()  # None: the board has no cover switch
        self.cover_tripped = False
        self.openings = 0  # since the boot
        self.cover_unlogged = 0
        self.cover_logged_ms = None
        if self.cover:
            self.openings = 1
            self.log.add(events.COVER_OPEN, "open at power-up")
        ctx.hal.on_cover(self._cover_irq)
        journal.attach(self._update_event)
        metering.on_save.append(self.save)  # the credit record is saved with the registers (and before a reset)

    def _prepaid(self, s):
        if s["tariff_p"] is None:
            return None
        conf = {"tariff": s["tariff_p"], "windows": s["windows_p"], "allowance": s["allowance"],
                "thresholds": s["thresholds"], "emergency": s["emergency"]}
        return prepaid.Prepaid(self.store, self.control, self.log, conf)

    def _irq(self, pin):
        self.pressed = True  # no allocation here: the press is taken at the next reading

    def _update_event(self, kind, detail):
        code = events.UPDATE_CODES.get(kind)
        if code is not None:
            self.log.add(code, detail)

    def _cover_irq(self, pin):
        self.cover_tripped = True

    # -- every reading -------------------------------------------------------------------------------------------
    def on_reading(self, tick):
        """The supply's rules for one reading (a metering listener; app/tick.py). Reads no clock of its own."""
        self.log.flush_due()
        p = tick.reading.p
        self.avg_w = p if self.avg_w is None else self.avg_w + (p - self.avg_w) / _AVERAGE_S
        if self.pressed:
            self.pressed = False
            self.press()
        if self.prepaid is not None:
            self.prepaid.tick(tick, self.rebase)
            self.rebase = False
        act = self.limit.update(tick.uptime_s, p)
        if act is not None:
            self._limit(act, p)
        if self.cover is not None:
            self._watch_cover(tick.ms)
        self.readings += 1
        if self.readings == _HEALTHY_READINGS:
            from loader import starts

            starts.healthy()  # the settings carried the app through its first readings (loader/starts.py)
            starts.forget()
        if self.readings % _RELAY_CHECK_READINGS == 0:
            self.relay.check()

    def _watch_cover(self, now_ms):
        """An opening since the last reading (its interrupt, or the level) counts once. Someone toggling the switch
        cannot push other events out of the ring: one event a minute at most, naming the openings it stands for."""
        was = self.cover
        self.cover = self.ctx.hal.cover_open()
        if self.cover_tripped or (self.cover and not was):
            self.cover_tripped = False
            self.openings += 1
            self.cover_unlogged += 1
        n = self.cover_unlogged
        if n and (self.cover_logged_ms is None or time.ticks_diff(now_ms, self.cover_logged_ms) >= _COVER_HOLD_MS):
            self.log.add(events.COVER_OPEN, "cover opened" if n == 1 else "cover opened %d times" % n)
            self.cover_unlogged = 0
            self.cover_logged_ms = now_ms

    def _limit(self, act, watts):
        c = self.control
        if act == load_limit.RESTORE:
            if c.state != disconnect.READY or c.reason != LIMIT_REASON:
                return
            if self.prepaid is not None and self.prepaid.cut_due():
                # the lockout is over but credit is not: credit now holds the supply off (the relay stays open)
                c.apply(disconnect.LOCAL_DISCONNECT, prepaid.REASON, hand_over=True)
            else:
                c.apply(disconnect.LOCAL_RECONNECT, "lockout over")
            return
        self.log.add(events.LOAD_LIMIT_TRIP, "%d W%s" % (watts, ", locked" if act == load_limit.LOCKED else ""))
        c.apply(disconnect.LOCAL_DISCONNECT, LIMIT_REASON)

    def press(self):
        """The consumer's button: emergency credit while the balance is spent; otherwise a manual reconnect (e) from
        ready_for_reconnection, or a manual disconnect (f) where the mode allows it. Credit and the load limit
        keep what they hold off: a press cannot override them. Returns what it did."""
        self.presses += 1
        c = self.control
        pp = self.prepaid
        if pp is not None and c.state != disconnect.DISCONNECTED and self.store.ledger.balance <= 0 and \
                pp.take_emergency():
            return "emergency"
        if c.state == disconnect.READY and c.reason not in (prepaid.REASON, LIMIT_REASON):
            if pp is not None and pp.cut_due():
                return None  # no credit: reconnecting would only be undone at the next reading
            return c.apply(disconnect.MANUAL_RECONNECT, BUTTON_REASON)
        if c.state == disconnect.CONNECTED:
            return c.apply(disconnect.MANUAL_DISCONNECT, BUTTON_REASON)
        return None

    def save(self):
        if self.prepaid is not None:
            self.store.save()

    # -- remote commands (authorised by the caller) ------------------------------------------------------------
    def remote(self, action):
        """"disconnect" or "reconnect" from the head-end; the class-70 letter or None when the mode refuses it."""
        if action == "disconnect":
            return self.control.apply(disconnect.REMOTE_DISCONNECT, REMOTE_REASON)
        self.limit.remote_reconnect()
        return self.control.apply(disconnect.REMOTE_RECONNECT, REMOTE_REASON)

    def configure(self, raw, detail=""):
        """New settings from the head-end, checked whole first (SettingsError names the bad field). A trip of the
        load limit in progress carries over (its lockout still restores the supply, its count still locks it): a new
        limit's settings must not leave the supply off with nothing to bring it back. `detail` goes before the event's
        own ("dlms: " for a DLMS SET)."""
        s = supply_settings.save(raw)
        self.settings = s
        old = self.limit
        new = self.limit = load_limit.LoadLimit(s["limit_p"])
        new.over_since, new.tripped_at, new.trips, new.last_trip, new.locked = (
            old.over_since, old.tripped_at, old.trips, old.last_trip, old.locked)
        self.prepaid = self._prepaid(s)
        self.log.add(events.SETTINGS_CHANGED, "%smode %d, %s" % (detail, s["control_mode"], "prepaid" if self.prepaid
                                                                  else "no credit"))
        if s["control_mode"] != self.control.mode:
            self.control.set_mode(s["control_mode"])
        if self.prepaid is not None:
            self.prepaid.decide()

    def set_clock(self, t):
        drift = self.clock.set(t)
        self.log.add(events.CLOCK_SET, "unknown before" if drift is None else "drift %+d s" % drift)
        return drift

    def refused(self, code, why):
        self.last_refusal = why
        self.log.add(code, why)

    # -- reading ------------------------------------------------------------------------------------------------
    def status(self):
        pp = self.prepaid
        led = self.store.ledger
        c = self.control
        lim = self.limit
        rtc = wallclock.rtc_now()
        credit_state = None
        if pp is not None:
            from app import credit

            rate = pp.rate(self.m.tick.zone, rtc or 0)
            credit_state = {
                "balance": led.balance, "allowance": pp.allowance, "emergency_taken": led.emergency,
                "emergency_available": 0 if led.emergency else pp.emergency, "last_topup": led.topup,
                "rate": rate, "avg_w": self.avg_w,
                "time_left_s": credit.seconds_left(led.balance, pp.allowance, int(self.avg_w or 0), rate),
                "window": pp.window, "record": "damaged" if self.store.problem else "ok",
                "top_tid": self.store.tokens.top, "month_wh": led.month_mj // 3600000,
            }
        return {
            "mode": c.mode, "state": c.state, "output": c.output, "reason": c.reason,
            "relay": self.relay.status(), "clock_known": rtc is not None, "rtc": rtc, "clock": self.clock.rec,
            "credit": credit_state,
            "load_limit": {"threshold_w": lim.conf["threshold_w"], "trips": lim.trips, "locked": lim.locked,
                           "tripped": lim.tripped_at is not None},
            "events_seq": self.log.seq, "presses": self.presses, "last_refusal": self.last_refusal,
            "cover": None if self.cover is None else {"open": self.cover, "openings": self.openings},
        }
