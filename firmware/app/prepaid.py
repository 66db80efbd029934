# The prepaid rules, evaluated at every reading and at every top-up: charge the energy, raise alerts, and move the
# relay through class 70's local triggers — disconnect (g) only when the meter knows the time, is outside every
# no-disconnection window and the balance is below the allowance; reconnect (h) as soon as a top-up clears the debt
# (in modes without h the state stays ready_for_reconnection and the consumer presses the button). A remote
# disconnect is the head-end's and is never undone here.
from app import credit, disconnect, events, registers

REASON = "credit"


class Prepaid:
    def __init__(self, store, control, log, conf):
        self.store = store  # CreditStore
        self.control = control  # DisconnectControl
        self.log = log  # EventLog
        self.tariff = conf["tariff"]
        self.windows = conf["windows"]
        self.allowance = conf["allowance"]
        self.thresholds = conf["thresholds"]
        self.emergency = conf["emergency"]
        self.clock_known = True
        self.window = False

    def tick(self, t, rebase=False):
        """One reading (app/tick.py): its local time (None while the time is unknown) starts days and months, the
        import register's growth is charged at its zone's rate at its RTC time."""
        local = t.local
        if local is not None:
            self.store.new_day(self.tariff, credit.day_number(local[0], local[1], local[2]), local[0] * 12 + local[1])
        self.store.charge_to(self.tariff, t.regs.total_mj(registers.IMPORT), t.zone, t.rtc or 0, rebase)
        for pct in self.store.ledger.alerts_due(self.thresholds):
            self.log.add(events.CREDIT_ALERT, "%d %%" % pct)
        known = local is not None
        if known != self.clock_known:
            self.clock_known = known
            if not known:
                self.log.add(events.CLOCK_UNKNOWN, "credit disconnection suspended")
        self.window = known and credit.in_window(self.windows, *local)
        self.decide()

    def cut_due(self):
        """True when credit must keep (or put) the supply off now."""
        return credit.must_disconnect(self.store.ledger.balance, self.allowance, self.clock_known, self.window)

    def rate(self, zone, now_s):
        """The energy rate (minor units per kWh) that applies now: a critical peak, the TOU zone, the month's slab
        or the flat rate."""
        t = self.tariff
        r = credit.energy_rate(t, zone, now_s)
        if r is not None or not t["slabs"]:
            return t["flat"] if r is None else r
        for upto, slab_rate in t["slabs"]:
            if upto is None or self.store.ledger.month_mj < upto:
                return slab_rate
        return 0

    def decide(self):
        led = self.store.ledger
        if self.cut_due():
            if self.control.state == disconnect.CONNECTED and self.control.apply(disconnect.LOCAL_DISCONNECT, REASON):
                self.log.add(events.CREDIT_EXHAUSTED, str(led.balance))
        elif led.balance >= -self.allowance and self.control.state == disconnect.READY and \
                self.control.reason == REASON:
            self.control.apply(disconnect.LOCAL_RECONNECT, "top-up")

    def topup(self, tid, amount):
        """A verified token's id and amount: None when applied (the relay follows at once), else the reason."""
        why = self.store.topup(tid, amount)
        if why is not None:
            self.log.add(events.TOKEN_REJECTED, why)
            return why
        self.log.add(events.TOPUP_ACCEPTED, "%d: %d" % (tid, amount))
        self.decide()
        return None

    def take_emergency(self):
        """The consumer's emergency credit, once until the next top-up, and only when it restores the supply: a debt
        deeper than it would use it up and leave the relay open, so it stays available. False when refused."""
        if self.store.ledger.balance + self.emergency < -self.allowance:
            return False
        if not self.store.ledger.take_emergency(self.emergency):
            return False
        self.store.save()
        self.log.add(events.EMERGENCY_CREDIT, str(self.emergency))
        self.decide()
        return True
