from test_disconnect import RelayModel

import fwtest
from app import credit, credit_store, disconnect, dsp, events, prepaid, registers, relay, tick

KWH = credit.MJ_PER_KWH
CONF = {"tariff": credit.parse_tariff({"flat": 1000}),
        "windows": credit.parse_windows({"daily": [["18:00", "08:00"]]}),
        "allowance": 500, "thresholds": [30, 10, 0], "emergency": 3000}


def tick_at(now_s, local, import_mj, zone=1):
    """A reading's tick (app/tick.py) at RTC `now_s`, local time `local` (or None), import register `import_mj`."""
    regs = registers.Registers()
    regs.wh[registers.IMPORT], regs.mj[registers.IMPORT] = divmod(import_mj, registers.MJ_PER_WH)
    t = tick.Tick(dsp.Reading(), regs)
    t.rtc = now_s
    t.local = local
    t.zone = zone
    return t


def _meter():
    """A relay, event log, class-70 control, credit record and prepaid rules in the current (fresh) folder."""
    hw = RelayModel()
    log = events.EventLog()
    log.load()
    ctl = disconnect.DisconnectControl(relay.Relay(hw))
    ctl.load()
    store = credit_store.CreditStore()
    store.load()
    return hw, log, ctl, store, prepaid.Prepaid(store, ctl, log, CONF)


def test_credit_runs_out_at_night_cut_at_the_window_end_top_up_reconnects():
    def body():
        hw, log, ctl, store, pp = _meter()
        assert pp.topup(1, 10000) is None
        pp.tick(tick_at(0, (2026, 11, 30, 0, 17 * 60), 0))
        pp.tick(tick_at(3600, (2026, 11, 30, 0, 22 * 60), 12 * KWH))  # 12 kWh: 2000 paise of debt, inside the window
        assert store.ledger.balance == -2000 and hw.contact and ctl.state == disconnect.CONNECTED
        codes = [e[1] for e in log.ring]
        assert codes.count(events.CREDIT_ALERT) == 3
        pp.tick(tick_at(7200, (2026, 12, 1, 1, 7 * 60 + 59), 12 * KWH))
        assert hw.contact
        pp.tick(tick_at(7260, (2026, 12, 1, 1, 8 * 60), 12 * KWH))  # the window ends: cut at the first reading
        assert not hw.contact and ctl.state == disconnect.READY and log.ring[-1][1] == events.CREDIT_EXHAUSTED
        assert pp.topup(2, 1000) is None and not hw.contact  # -1000: still beyond the allowance
        assert pp.topup(2, 1000) == "token-replayed" and log.ring[-1][1] == events.TOKEN_REJECTED
        assert pp.topup(3, 600) is None and hw.contact  # -400: within the allowance, reconnected at once
        assert pp.take_emergency() and not pp.take_emergency() and store.ledger.balance == 2600
        # the clock is lost: credit never disconnects until it is set again, and says so
        pp.tick(tick_at(7300, None, 20 * KWH))
        assert store.ledger.balance < -500 and hw.contact and log.ring[-1][1] == events.CLOCK_UNKNOWN
        pp.tick(tick_at(7400, (2026, 12, 1, 1, 9 * 60), 20 * KWH))
        assert not hw.contact

    fwtest.in_workdir(body, "meter")


def test_emergency_credit_is_kept_when_it_cannot_restore_the_supply():
    def body():
        hw, log, ctl, store, pp = _meter()
        assert pp.topup(1, 1000) is None
        pp.tick(tick_at(0, (2026, 11, 30, 0, 12 * 60), 0))
        pp.tick(tick_at(3600, (2026, 11, 30, 0, 13 * 60), 5 * KWH))  # -4000: cut (noon, outside the window)
        assert not hw.contact and store.ledger.balance == -4000
        # 3000 of emergency credit would leave -1000, beyond the 500 allowance: refused, still available
        assert not pp.take_emergency() and store.ledger.emergency == 0 and store.ledger.balance == -4000
        assert pp.topup(2, 1000) is None and not hw.contact  # -3000: now the emergency credit restores the supply
        assert pp.take_emergency() and hw.contact and store.ledger.balance == 0
        assert events.EMERGENCY_CREDIT in [e[1] for e in log.ring[-3:]]

    fwtest.in_workdir(body, "meter")
