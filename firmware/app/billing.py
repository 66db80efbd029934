# IS 15959's billing reset (docs/dlms.md "The monthly billing reset"): the monthly one, at local 00:00 of the billing
# day, and the one on demand (a signed meter.bill, SMP 66/10). A billing period ends: the billing profile takes its
# row (app/load_profile.py billing), the maximum demand restarts and the next period begins, saved at once (event
# 425). On the heap for one reset only (app/metering.py and app/supply_group.py import it and forget it after, with
# app/load_profile.py, which it imports for the row).
from micropython import const

from app import load_profile

_DAY = const(86400)


def billing_date(day, billing_day):
    """The local day (days since 1970, as `day`) the billing period in force began: the latest `billing_day` (1-28)
    of a month that is not after `day`."""
    import time

    from loader import wallclock

    dom = time.gmtime(day * _DAY - wallclock.PORT_EPOCH_S)[2]
    if dom >= billing_day:
        return day - dom + billing_day
    last = time.gmtime((day - dom) * _DAY - wallclock.PORT_EPOCH_S)[2]  # the day count of the month before
    return day - dom - last + billing_day


def bill(m, day, tz_s):
    """IS 15959's monthly billing reset for app/metering.py's task `m`, looked at on each new local `day` (here, not
    in the resident metering module: its code is on the heap once a day only). Once the billing period in the
    registers (their "bill": [its start, RTC s; import and apparent mWh then]) has ended, at local 00:00 of the
    calendar's billing day (`billing_day`, 1-28: the 1st unless a signed meter.calendar set another), the billing
    profile takes the period's row, stamped with its end (BILLING: the energy registers, the maximum demand and its
    time, the average power factor), then the maximum demand restarts and the next period begins, saved at once
    (event 425). A meter off across several billing dates bills them as one period, at its first reading after, as
    does a billing day moved to one between the period's start and today (stamped with that date); one without
    "bill" (new, or updated from an app without billing) begins its first period now, with no row. A power cut
    between the row and the save runs the reset again at the next start, the row not again (billing). A row the
    flash refuses is lost and said (event 419); the reset goes on."""
    start = billing_date(day, m.cfg.get("billing_day", 1)) * _DAY - tz_s  # the billing day, 00:00 local
    b = open_period(m)
    if b is None:
        m.regs.extra["bill"] = _begin(m, start)  # (a damaged value too: a period begins, none is billed)
    elif b[0] < start:  # it has ended (else it goes on: this month's period, or a clock set back since)
        _close(m, start, b, "billed to")


def bill_now(m, rtc):
    """IS 15959's billing reset on demand (an MD reset: a signed meter.bill, app/supply_group.py) at RTC `rtc`: the
    billing period in force ends now, as at a billing date (a row stamped `rtc`, the maximum demand restarts, saved
    at once, event 425 "reset at T: ..."); the monthly reset goes on at the next billing date. A meter with no period
    (new, or its "bill" damaged) restarts its maximum demand and begins a period now, billing nothing (event 425
    "reset at T: no period"). {billed: rtc or None, pf, md_w: the period's}; None when the clock is before the
    period's start (set back since): nothing changes."""
    b = open_period(m)
    if b is None:
        from app import events

        md = int(m.regs.md_w)
        m.regs.md_w = 0.0
        m.regs.md_at = None
        m.regs.extra["bill"] = _begin(m, rtc)
        _save(m)
        m.note(events.BILLING_RESET, "reset at %d: no period" % rtc)
        return {"billed": None, "pf": None, "md_w": md}
    if b[0] >= rtc:
        return None
    pf, md = _close(m, rtc, b, "reset at")
    return {"billed": rtc, "pf": pf, "md_w": md}


def bill_command(group, req, rc_not_allowed):
    """SMP 66/10 (app/supply_group.py `group`): the billing period in force ends now (bill_now: its row, the maximum
    demand restarts, event 425), on a signed meter.bill. Refused with `rc_not_allowed` before the envelope is spent
    while the clock is not set or is before the period's start."""
    from app import events
    from loader import wallclock

    rtc = wallclock.rtc_now()
    m = group.s.m
    b = open_period(m)
    if rtc is None or (b is not None and b[0] >= rtc):
        raise group._error(events.COMMAND_REFUSED, "bill: clock not set" if rtc is None else
                           "bill: clock before the billing period's start", rc_not_allowed)
    group._authorise(req, "meter.bill", {})
    return bill_now(m, rtc)


def open_period(m):
    """The registers' open billing period [its start, RTC s; import and apparent mWh then], None when there is none
    or it is damaged."""
    from app import registers
    from loader import strict

    b = m.regs.extra.get("bill")
    if type(b) is list and len(b) == 3 and strict.is_int(b[0], 0, 0xFFFFFFFF) \
            and strict.is_int(b[1], 0, registers.VALUE_MAX) and strict.is_int(b[2], 0, registers.VALUE_MAX):
        return b
    return None


def _begin(m, start):
    from app import registers

    return [start, m.regs.mwh(registers.IMPORT), m.regs.mwh(registers.APPARENT)]


def _save(m):
    try:
        m.save()
    except OSError:  # saved at the next persist interval; a restart before then runs the reset again, not the row
        pass  # (raised out of here it would reach app/metering.py _profile, which dates a row, not a task)


def _close(m, start, b, what):
    """The period `b` ends at `start`: its row (billing), the maximum demand restarts, the next period begins,
    saved; event 425 `what` ("billed to", "reset at"). (The period's average power factor, thousandths; its maximum
    demand, W.)"""
    from app import events, registers

    regs = m.regs
    imp = regs.mwh(registers.IMPORT)
    app = regs.mwh(registers.APPARENT)
    d_imp = imp - b[1]
    d_app = app - b[2]
    pf = min(1000, d_imp * 1000 // d_app) if d_app > 0 and d_imp >= 0 else 0
    md = int(regs.md_w)
    try:
        load_profile.billing((start, pf, imp) + tuple(regs.mwh(registers.ZONE_FIRST + k) for k in range(8)) + (
            app, regs.mwh(registers.EXPORT), md, regs.md_at or 0))
    except OSError as e:
        m.note(events.PROFILE_ROW_LOST, "billing at %d: %s" % (start, e))
    regs.md_w = 0.0
    regs.md_at = None
    regs.extra["bill"] = [start, imp, app]
    _save(m)
    m.note(events.BILLING_RESET, "%s %d: pf %d/1000, md %d W" % (what, start, pf, md))  # (48 characters at most)
    return pf, md
