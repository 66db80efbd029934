# The prepaid state in one power-fail-safe record (meter/credit.json, replaced by write-then-rename): the ledger,
# the token window and the import-energy register total the balance was last charged up to. A top-up changes the
# balance and marks its token in the same write, so a power cut can neither lose it nor let it count twice; energy
# used across a cut is charged at the next reading from the registers, which never decrease. The record also keeps
# when the last top-up was applied and the balance right after it (IS 15959's prepaid data: app/dlms_supply.py), in
# the same write as the top-up; a record from before this field reads as no top-up known.
from app import clock, credit, tokens
from loader import store, strict, wallclock

PATH = "meter/credit.json"
RECORD = "credit"
RECORD_VERSION = 1

E_AMOUNT = "bad-amount"
E_DAMAGED = "credit-record-damaged"
DAYS_MAX = 62  # fixed daily charges for at most this many days at once (a clock set far ahead must not empty it)


class CreditStore:
    def __init__(self, path=PATH):
        self.path = path
        self.ledger = credit.Ledger()
        self.tokens = tokens.TokenWindow()
        self.import_mj = None  # the register total charged up to; None: not yet (the first reading sets it)
        self.day = None  # the local day (days since 1970) fixed charges were last taken for
        self.month = None  # its month (year * 12 + month): the slabs restart when it changes
        self.last = None  # [RTC s (None: the clock was unknown), the balance after] of the last top-up; None: none
        self.problem = None
        self.newer = False  # the record is a newer app's (this one was rolled back to): left as it is until a reset

    def load(self):
        """Read the record; a damaged one is refused whole rather than half used: problem is set, the balance stays
        0 and top-ups are refused (the spent-token window is lost, so old tokens could be replayed) until the head-end
        sets the balance and the token window again (reset)."""
        try:
            _, data = store.read_record(self.path, RECORD, RECORD_VERSION, None)
            if data is not None:
                led = credit.Ledger()
                led.restore(data["ledger"])
                win = tokens.TokenWindow()
                win.restore(data["tokens"])
                mj = data["import_mj"]
                if mj is not None and not strict.is_int(mj, 0, credit.INT_MAX):
                    raise ValueError("bad import_mj")
                day, month = data.get("day"), data.get("month")
                if not all(v is None or strict.is_int(v, 0, 1 << 30) for v in (day, month)):
                    raise ValueError("bad calendar")
                last = data.get("last")
                if last is not None and not (type(last) is list and len(last) == 2 and (
                        last[0] is None or strict.is_int(last[0], 0, clock.TIME_MAX)) and strict.is_int(
                        last[1], -credit.INT_MAX, credit.INT_MAX)):
                    raise ValueError("bad last top-up")
                self.ledger, self.tokens, self.import_mj, self.day, self.month = led, win, mj, day, month
                self.last = last
        except store.TooNew as e:  # (a ValueError: first)
            self.problem = str(e)
            self.newer = True
        except (ValueError, KeyError, TypeError) as e:
            self.problem = str(e)
        return self.problem

    def save(self, replace_newer=False):
        """Write the record. A newer app's record (problem set at load) is left as it is: this app's charges stay in
        RAM and its top-ups are refused, until the head-end's reset replaces it (`replace_newer`)."""
        if self.newer and not replace_newer:
            return
        try:
            store.write_record(self.path, RECORD, RECORD_VERSION,
                               {"ledger": self.ledger.record(), "tokens": self.tokens.record(),
                                "import_mj": self.import_mj, "day": self.day, "month": self.month,
                                "last": self.last},
                               replace_newer=replace_newer)
        except store.TooNew:  # a record that failed to load for another fault but whose head names a newer format
            self.newer = True
            return
        self.newer = False

    def topup(self, tid, amount):
        """Apply a verified top-up token; None when applied, else why not (nothing changes then)."""
        if self.problem is not None:
            return E_DAMAGED
        why = self.tokens.check(tid)
        if why is not None:
            return why
        if not strict.is_int(amount, 1, 100000000):
            return E_AMOUNT
        self.ledger.credit(amount)
        self.tokens.mark(tid)
        self.last = [wallclock.rtc_now(), self.ledger.balance]
        self.save()
        return None

    def reset(self, balance, top_tid):
        """The head-end's signed reset (after a damaged record, or forced): its balance, and every tid up to
        `top_tid` spent. The token window never moves back: a tid this record shows accepted stays spent whatever
        `top_tid` says. Returns the balance before."""
        old = self.ledger.balance
        self.tokens.spend_up_to(top_tid)
        self.ledger = credit.Ledger()
        self.ledger.balance = balance
        self.last = None  # (the ledger's last top-up amount starts again at 0 too)
        self.problem = None
        self.save(replace_newer=True)
        return old

    def new_day(self, tariff, day, month):
        """The local calendar says `day` of `month`: take the fixed daily charge for each day begun since the last
        one (at most DAYS_MAX) and restart the slabs in a new month. Returns the minor units charged. A clock or
        calendar set back leaves the mark where it is: the days up to it were charged already, and moving it back
        would charge them again when they come (a time zone change across midnight, a clock that ran ahead); only
        a step back of more than DAYS_MAX days (a clock that had been set years ahead) moves it."""
        if day == self.day or (self.day is not None and 0 < self.day - day <= DAYS_MAX):
            return 0
        charged = 0
        if self.day is not None and day > self.day:
            before = self.ledger.balance
            for _ in range(min(day - self.day, DAYS_MAX)):
                self.ledger.daily_charge(tariff)
            charged = before - self.ledger.balance
            if month != self.month:
                self.ledger.new_month()
        self.day, self.month = day, month
        self.save()
        return charged

    def charge_to(self, tariff, import_mj, zone, now_s, rebase=False):
        """Charge the energy imported since the last charge (register total `import_mj`); returns minor units.
        A total below the mark means the registers came back one interval behind after a power cut: that energy
        was paid already, so nothing is charged until they pass the mark again. `rebase`: the registers were lost
        or are new (an event was raised); charging starts again from their total."""
        if self.import_mj is None or rebase:
            self.import_mj = import_mj
            self.save()  # at once: a cut before the next save must not move the mark to a later total (free energy)
            return 0
        if import_mj <= self.import_mj:
            return 0
        used = import_mj - self.import_mj
        self.import_mj = import_mj
        return self.ledger.charge(tariff, used, zone, now_s) if used else 0
