"""The prepaid rules (firmware/app/prepaid.py with the real credit record, class-70 control and event log on a temp
folder) under random sequences of time, load, top-ups in and out of order and replayed, clock loss and power cuts:
credit never disconnects inside a window or while the time is unknown; it always disconnects at the first reading
outside a window with the debt beyond the allowance; a clearing top-up reconnects at once; every accepted top-up
counts exactly once, and the balance is exactly top-ups minus the cost of the energy."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from host_tests.scratch_machine import ScratchMeterMachine

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "meterkit" / "mpy_compat", ROOT / "firmware" / "lib", ROOT / "firmware",
          ROOT / "host_tests" / "firmware"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from test_disconnect import RelayModel  # noqa: E402
from test_prepaid import tick_at  # noqa: E402

from app import credit, credit_store, disconnect, events, prepaid, relay  # noqa: E402

KWH = credit.MJ_PER_KWH
RATE = 800  # paise per kWh
CONF = {"tariff": credit.parse_tariff({"flat": RATE}),
        "windows": credit.parse_windows({"daily": [["18:00", "08:00"]], "weekdays": [6]}),
        "allowance": 2000, "thresholds": [30, 10, 0], "emergency": 5000}


class PrepaidMeter(ScratchMeterMachine):
    def __init__(self) -> None:
        super().__init__()
        self.hw = RelayModel()
        self.minute = 9 * 60  # device time in minutes since a Monday 00:00
        self.import_mj = 0
        self.clock = True
        self.accepted: set[int] = set()
        self.topped = 0
        self.boot()
        self.pp.store.topup(1, 20000)
        self.accepted.add(1)
        self.topped = 20000
        self.tick()

    def boot(self) -> None:
        store = credit_store.CreditStore()
        assert store.load() is None
        ctl = disconnect.DisconnectControl(relay.Relay(self.hw))
        ctl.load()
        ctl.reconcile()
        log = events.EventLog()
        log.load()
        self.pp = prepaid.Prepaid(store, ctl, log, CONF)


    def local(self):
        if not self.clock:
            return None
        day, minute = divmod(self.minute, 1440)
        return (2026, 11, 30 + day % 28, day % 7, minute)

    def tick(self) -> None:
        was = self.pp.control.state
        self.pp.tick(tick_at(self.minute * 60, self.local(), self.import_mj))
        if was == disconnect.CONNECTED and self.pp.control.state != disconnect.CONNECTED:
            assert self.clock and not self.pp.window, "credit cut the supply inside a window or with no clock"
        led = self.pp.store.ledger
        if self.clock and not self.pp.window and led.balance < -CONF["allowance"]:
            assert not self.hw.contact, "debt beyond the allowance, outside a window, still connected"

    @rule(minutes=st.integers(1, 600), kw=st.integers(0, 6))
    def use(self, minutes: int, kw: int) -> None:
        for _ in range(minutes // 30 + 1):  # a reading every 30 minutes of the span
            step = min(30, minutes)
            minutes -= step
            self.minute += step
            if self.hw.contact:
                self.import_mj += kw * 1000 * step * 60 * 1000
            self.tick()
            if minutes <= 0:
                break

    @rule(tid=st.integers(1, 80), amount=st.integers(1, 30000))
    def topup(self, tid: int, amount: int) -> None:
        fresh = tid not in self.accepted and tid > max(self.accepted) - 64
        why = self.pp.topup(tid, amount)
        assert (why is None) == fresh, (tid, why)
        if fresh:
            self.accepted.add(tid)
            self.topped += amount
            if self.pp.store.ledger.balance >= -CONF["allowance"]:
                assert self.hw.contact, "a clearing top-up did not reconnect at once"

    @rule()
    def emergency(self) -> None:
        if self.pp.take_emergency():
            self.topped += CONF["emergency"]

    @rule(known=st.booleans())
    def clock_state(self, known: bool) -> None:
        self.clock = known
        self.tick()

    @rule()
    def power_cut(self) -> None:
        self.pp.store.save()  # the credit task saves with the registers; a cut between saves is the next rule
        self.boot()
        self.tick()

    @rule()
    def power_cut_between_saves(self) -> None:
        """Energy charged since the last save is charged again from the registers after the boot; top-ups are
        saved when they are applied, so none is lost."""
        self.boot()
        self.tick()

    @invariant()
    def balance_is_top_ups_minus_the_cost(self) -> None:
        led = self.pp.store.ledger
        cost_num = RATE * self.pp.store.import_mj
        assert led.balance == self.topped - cost_num // KWH
        assert led.rem == cost_num % KWH


TestPrepaid = PrepaidMeter.TestCase
TestPrepaid.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
