# Prepaid credit on the meter: the balance in integer minor currency units (paise), deductions computed from the
# energy registers at the tariff's rate with the fractional remainder carried (never truncated), alert thresholds,
# a negative-balance allowance, emergency credit and no-disconnection windows. Pure logic; the credit task persists
# the ledger together with the register snapshot it was computed from (docs/relay-and-credit.md).
from loader import strict

MJ_PER_KWH = 3600000000
TIME_MAX = 4102444800  # 2100-01-01: the last moment a schedule may name
INT_MAX = 1 << 62  # ledger values stay well inside what CBOR and the ports' integers carry


class TariffError(ValueError):
    pass


def _rate(v, what):
    if not strict.is_int(v, 0, 1000000):
        raise TariffError("bad rate for " + what)
    return v


def parse_tariff(obj):
    """A tariff from its configuration, or TariffError naming the first bad field. Rates are minor units per kWh.
    {"flat": 650} | {"slabs": [[100, 450], [200, 650], [null, 800]]} (kWh per month, upper bound of each slab)
    plus optional "tou": {"zone": rate}, "cpp": [[start_s, end_s, rate]], "fixed_daily": minor units per day."""
    if not isinstance(obj, dict):
        raise TariffError("tariff is not an object")
    for k in obj:
        if k not in ("flat", "slabs", "tou", "cpp", "fixed_daily"):
            raise TariffError("unknown tariff field " + str(k))
    flat = _rate(obj["flat"], "flat") if "flat" in obj else None
    table = []
    rates = {}
    peaks = []
    slabs = obj.get("slabs", [])
    if not isinstance(slabs, list):
        raise TariffError("slabs is not a list")
    last = 0
    for k, s in enumerate(slabs):
        if not isinstance(s, list) or len(s) != 2:
            raise TariffError("bad slab")
        upto = s[0]
        if upto is None:
            if k != len(slabs) - 1:
                raise TariffError("only the last slab may be open")
        elif not strict.is_int(upto, last + 1, 1000000000):
            raise TariffError("slab bounds must rise")
        else:
            last = upto
        table.append((None if upto is None else upto * MJ_PER_KWH, _rate(s[1], "slab")))
    if flat is None and not table:
        raise TariffError("tariff has neither flat nor slabs")
    if table and table[-1][0] is not None:
        raise TariffError("the last slab must be open (null)")
    tou = obj.get("tou", {})
    if not isinstance(tou, dict):
        raise TariffError("tou is not an object")
    for z, r in tou.items():
        if z not in ("1", "2", "3", "4", "5", "6", "7", "8"):
            raise TariffError("bad tou zone " + str(z))
        rates[int(z)] = _rate(r, "tou zone " + z)
    cpp = obj.get("cpp", [])
    if not isinstance(cpp, list):
        raise TariffError("cpp is not a list")
    for e in cpp:
        if type(e) is not list or len(e) != 3 or not all(strict.is_int(x, 0, TIME_MAX) for x in e) or e[0] >= e[1]:
            raise TariffError("bad cpp event")
        peaks.append((e[0], e[1], _rate(e[2], "cpp")))
    return {"flat": flat, "slabs": table, "tou": rates, "cpp": peaks,
            "fixed_daily": _rate(obj.get("fixed_daily", 0), "fixed_daily")}


def energy_rate(t, zone, now_s):
    """The rate that applies now, before slabs: a critical-peak event, else the TOU zone's rate; None: use slabs
    or flat."""
    for start, end, rate in t["cpp"]:
        if start <= now_s < end:
            return rate
    return t["tou"].get(zone)


class Ledger:
    """The balance and what it was computed from. Every field is an int, so the record persists exactly."""

    def __init__(self):
        self.balance = 0  # minor units; negative inside the allowance or with emergency credit taken
        self.rem = 0  # carried remainder of deductions, in minor-unit·mJ per kWh (0 <= rem < MJ_PER_KWH)
        self.month_mj = 0  # energy this billing month, for slabs
        self.topup = 0  # the last top-up's amount: alert thresholds are fractions of it
        self.emergency = 0  # emergency credit granted and not yet repaid by a top-up
        self.alerted = 0  # bit k: threshold k raised since the last top-up

    def charge(self, t, mj, zone, now_s):
        """Deduct `mj` of imported energy; returns the minor units deducted this time."""
        before = self.balance
        rate = energy_rate(t, zone, now_s)
        if rate is not None or not t["slabs"]:
            self._deduct(t["flat"] if rate is None else rate, mj)
        else:
            used = self.month_mj
            left = mj
            for upto, r in t["slabs"]:  # split the energy where it crosses a slab boundary
                if upto is not None and used >= upto:
                    continue
                part = left if upto is None else min(left, upto - used)
                self._deduct(r, part)
                used += part
                left -= part
                if not left:
                    break
        self.month_mj += mj
        return before - self.balance

    def _deduct(self, rate, mj):
        d, self.rem = divmod(rate * mj + self.rem, MJ_PER_KWH)
        self.balance -= d

    def daily_charge(self, t):
        self.balance -= t["fixed_daily"]

    def credit(self, amount):
        """A top-up: repays emergency credit first (it was already in the balance) and re-arms the alerts."""
        self.balance += amount
        self.topup = amount
        self.emergency = 0
        self.alerted = 0

    def take_emergency(self, amount):
        """Emergency credit, once until the next top-up; False when already taken."""
        if self.emergency:
            return False
        self.emergency = amount
        self.balance += amount
        return True

    def new_month(self):
        self.month_mj = 0

    def alerts_due(self, thresholds_pct):
        """Thresholds (percent of the last top-up, e.g. [30, 10, 0]) newly crossed; each is raised once."""
        due = []
        for k, pct in enumerate(thresholds_pct):
            if not self.alerted & (1 << k) and self.balance * 100 <= pct * self.topup:
                self.alerted |= 1 << k
                due.append(pct)
        return due

    def record(self):
        return [self.balance, self.rem, self.month_mj, self.topup, self.emergency, self.alerted]

    def restore(self, rec):
        if type(rec) is not list or len(rec) != 6 or not all(strict.is_int(x, -INT_MAX, INT_MAX) for x in rec):
            raise ValueError("bad ledger record")
        if not 0 <= rec[1] < MJ_PER_KWH:
            raise ValueError("bad ledger remainder")
        self.balance, self.rem, self.month_mj, self.topup, self.emergency, self.alerted = rec


def seconds_left(balance, allowance, watts, rate):
    """Predicted seconds until the balance reaches the allowance at `watts` and `rate`; None when not falling."""
    if watts <= 0 or rate <= 0:
        return None
    left = balance + allowance
    if left <= 0:
        return 0
    return left * MJ_PER_KWH // (rate * watts * 1000)


def parse_windows(obj):
    """No-disconnection windows: {"daily": [["18:00", "08:00"]], "weekdays": [6], "holidays": ["2026-12-25"]}
    (weekdays 0 Monday .. 6 Sunday). Returns the parsed form or raises ValueError naming the bad field."""
    if not isinstance(obj, dict):
        raise ValueError("windows is not an object")
    daily = []
    weekdays = []
    holidays = []
    for k in obj:
        if k not in ("daily", "weekdays", "holidays"):
            raise ValueError("unknown windows field " + str(k))
        if type(obj[k]) is not list:
            raise ValueError("windows " + k + " is not a list")
    for span in obj.get("daily", []):
        if not isinstance(span, list) or len(span) != 2:
            raise ValueError("bad daily window")
        a, b = _minutes(span[0]), _minutes(span[1])
        if a is None or b is None or a == b:
            raise ValueError("bad daily window")
        daily.append((a, b))
    for d in obj.get("weekdays", []):
        if not strict.is_int(d, 0, 6):  # 6.0 and True are not weekdays
            raise ValueError("bad weekday")
        weekdays.append(d)
    for h in obj.get("holidays", []):
        if not isinstance(h, str) or len(h) != 10 or h[4] != "-" or h[7] != "-" or not (h[:4] + h[5:7] + h[8:]).isdigit():
            raise ValueError("bad holiday date")
        holidays.append((int(h[:4]), int(h[5:7]), int(h[8:])))
    return {"daily": daily, "weekdays": weekdays, "holidays": holidays}


def _minutes(s):
    if not isinstance(s, str) or len(s) != 5 or s[2] != ":" or not (s[:2] + s[3:]).isdigit():
        return None
    h, m = int(s[:2]), int(s[3:])
    return h * 60 + m if h < 24 and m < 60 else None


def in_window(w, year, month, day, weekday, minute):
    """True inside a no-disconnection window at local time (year, month, day, weekday 0 Monday, minute of day)."""
    if weekday in w["weekdays"] or (year, month, day) in w["holidays"]:
        return True
    for a, b in w["daily"]:
        if (a <= minute < b) if a < b else (minute >= a or minute < b):  # a window may span midnight
            return True
    return False


def day_number(year, month, day):
    """Days since 1970-01-01 of a calendar date (proleptic Gregorian; pure arithmetic, the same on every port)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def must_disconnect(balance, allowance, time_known, window):
    """Credit decides the relay only when the meter knows the time and is outside every window."""
    return time_known and not window and balance < -allowance
