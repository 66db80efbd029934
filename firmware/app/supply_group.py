# SMP group 66, "supply": the disconnect control, prepaid credit, load limit, clock and event log
# (docs/smp-groups.md). Reading is open; every change needs a signed command envelope (command-role key, bound to
# this meter; a development meter also obeys the development keys). A refusal answers with a group code and leaves
# its reason in status "last_refusal" and in the event log.
#   0 status    read   relay, class-70 state, credit, time left, window, load limit, clock
#   1 relay     write  {action: disconnect|reconnect, envelope}          signed "supply.relay" {action}
#   2 topup     write  {token}                                            token: signed "credit.topup" {tid, amount}
#   3 settings  read: the settings; write {settings, envelope}          signed "supply.config" {settings}
#   4 clock     write  {time, envelope}                                   signed "clock.set" {time}
#   5 events    read   {since?, limit?} -> {events: [[seq, code, rtc, detail]], seq}
#   6 emergency write  {envelope}                                         signed "credit.emergency" {}
#   7 credit reset write {balance, top_tid, envelope}                     signed "credit.reset" {balance, top_tid}
#   8 calendar  read: tz offset and TOU tables; write {calendar, envelope}  signed "meter.calendar" {calendar}
#   9 reader    read: whether the DLMS meter reader's secret is set; write {sha256, envelope}
#                                                                         signed "dlms.reader" {sha256: 32 or 0 bytes}
#  10 bill      write  {envelope}: the billing reset on demand (MD reset)  signed "meter.bill" {}
#  11 dlms keys read: whether the DLMS utility association's keys are set; write {ek, ak, envelope} (console only)
#                                                                         signed "dlms.keys" {ek, ak: 16 or 0 bytes}
from micropython import const

from app import events, meter_settings, supply_settings
from loader import commands, smp, strict

GROUP_SUPPLY = const(66)
_CMD_STATUS = const(0)
_CMD_RELAY = const(1)
_CMD_TOPUP = const(2)
_CMD_SETTINGS = const(3)
_CMD_CLOCK = const(4)
_CMD_EVENTS = const(5)
_CMD_EMERGENCY = const(6)
_CMD_CREDIT_RESET = const(7)
_CMD_CALENDAR = const(8)
_CMD_READER = const(9)
_CMD_BILL = const(10)
_CMD_KEYS = const(11)
# group return codes for SMP v2 clients
RC_NOT_AUTHORISED = const(1)  # the envelope was refused: the reason is in status last_refusal
RC_TOKEN_REFUSED = const(2)  # a top-up token was refused (replayed, too old, bad amount, record damaged ...)
RC_BAD_SETTINGS = const(3)  # the settings were refused: the first bad field is in last_refusal
RC_NO_CREDIT = const(4)  # no credit to give: no tariff configured, or a debt deeper than the emergency credit
RC_BAD_REQUEST = const(5)  # a malformed request (unknown action, bad time)
RC_NOT_ALLOWED = const(6)  # the control mode allows no such transition now, or emergency credit is spent
EVENTS_PER_READ = const(16)  # about 60 bytes each: a read stays well inside the 2048-byte buffer
TOPUP = "credit.topup"


class SupplyGroup:
    def __init__(self, ctx, supply):
        self.ctx = ctx
        self.s = supply

    def register(self, server):
        server.register(GROUP_SUPPLY, _CMD_STATUS, lambda req: self.s.status(), write=False)
        server.register(GROUP_SUPPLY, _CMD_RELAY, self.relay, read=False)
        server.register(GROUP_SUPPLY, _CMD_TOPUP, self.topup, read=False)
        server.register(GROUP_SUPPLY, _CMD_SETTINGS, self.settings)
        server.register(GROUP_SUPPLY, _CMD_CLOCK, self.clock, read=False)
        server.register(GROUP_SUPPLY, _CMD_EVENTS, self.events, write=False)
        server.register(GROUP_SUPPLY, _CMD_EMERGENCY, self.emergency, read=False)
        server.register(GROUP_SUPPLY, _CMD_CREDIT_RESET, self.credit_reset, read=False)
        server.register(GROUP_SUPPLY, _CMD_CALENDAR, self.calendar)
        server.register(GROUP_SUPPLY, _CMD_READER, self.reader)
        server.register(GROUP_SUPPLY, _CMD_BILL, self.bill, read=False)
        server.register(GROUP_SUPPLY, _CMD_KEYS, self.keys)

    def _authorise(self, req, cmd, args):
        try:
            commands.authorise(self.ctx, req, cmd, args, logged=False)  # its refusal is the supply's event 408
        except commands.Refused as e:
            self.s.refused(events.COMMAND_REFUSED, "%s: %s" % (cmd, e.reason))
            raise smp.SmpError(smp.EACCESSDENIED, RC_NOT_AUTHORISED) from None

    def _error(self, code, why, rc):
        """Record a refusal (status last_refusal and an event) and return the SMP error to raise."""
        self.s.refused(code, why)
        return smp.SmpError(smp.EINVAL, rc)

    def relay(self, req):
        action = req.get("action")
        if action not in ("disconnect", "reconnect"):
            raise self._error(events.COMMAND_REFUSED, "relay: bad action", RC_BAD_REQUEST)
        self._authorise(req, "supply.relay", {"action": action})
        letter = self.s.remote(action)
        if letter is None:
            raise self._error(events.COMMAND_REFUSED, "relay: mode %d allows no %s now" % (self.s.control.mode, action),
                       RC_NOT_ALLOWED)
        c = self.s.control
        return {"transition": letter, "state": c.state, "output": c.output}

    def topup(self, req):
        s = self.s
        pp = s.prepaid
        if pp is None:
            raise self._error(events.TOKEN_REJECTED, "no-tariff", RC_NO_CREDIT)
        try:
            body = commands.open_token(self.ctx, req.get("token"), TOPUP)
        except commands.Refused as e:
            raise self._error(events.TOKEN_REJECTED, e.reason, RC_TOKEN_REFUSED) from None
        args = body.get("args", {})
        tid = args.get("tid")
        amount = args.get("amount")
        why = pp.topup(tid, amount)  # spends the token and credits in one write; logs 404 or 405
        if why is not None:
            s.last_refusal = why
            raise smp.SmpError(smp.EINVAL, RC_TOKEN_REFUSED)
        c = s.control
        return {"tid": tid, "amount": amount, "balance": s.store.ledger.balance, "state": c.state,
                "output": c.output}

    def settings(self, req):
        if "settings" not in req or self.ctx.server.op != smp.OP_WRITE:  # a read (SMP: a read changes nothing)
            raw = dict(self.s.settings)
            for k in ("tariff_p", "windows_p", "limit_p"):
                raw.pop(k, None)
            return {"settings": raw}
        new = req.get("settings")
        self._authorise(req, "supply.config", {"settings": new})
        try:
            self.s.configure(new)
        except supply_settings.SettingsError as e:
            raise self._error(events.SETTINGS_INVALID, str(e), RC_BAD_SETTINGS) from None
        return {"settings": new}

    def clock(self, req):
        t = req.get("time")
        self._authorise(req, "clock.set", {"time": t})
        try:
            drift = self.s.set_clock(t)
        except ValueError:
            raise self._error(events.COMMAND_REFUSED, "clock.set: bad-time", RC_BAD_REQUEST) from None
        return {"time": t, "drift_s": drift, "clock": self.s.clock.rec}

    def events(self, req):
        since = req.get("since", 0)
        limit = req.get("limit", EVENTS_PER_READ)
        k = req.get("log")
        if not strict.is_int(since) or not strict.is_int(limit, 1) or not (k is None or strict.is_int(k, 0, 6)):
            raise smp.SmpError(smp.EINVAL, RC_BAD_REQUEST)
        log = self.s.log
        if k is None:
            return {"events": log.since(since, min(limit, EVENTS_PER_READ)), "seq": log.seq}
        # one IS 15959 category's compartment (app/event_logs.py): `seq` its newest event's number, `total` how many
        # it has logged, `depth` how many it keeps
        rows, total, depth = log.compartments("read", k)
        return {"log": k, "events": [list(e) for e in rows if e[0] > since][: min(limit, EVENTS_PER_READ)],
                "seq": rows[-1][0] if rows else 0, "total": total, "depth": depth}

    def emergency(self, req):
        self._authorise(req, "credit.emergency", {})
        pp = self.s.prepaid
        if pp is None:
            raise self._error(events.COMMAND_REFUSED, "emergency: no-tariff", RC_NO_CREDIT)
        if not pp.take_emergency():
            if self.s.store.ledger.emergency:
                raise self._error(events.COMMAND_REFUSED, "emergency: already taken", RC_NOT_ALLOWED)
            raise self._error(events.COMMAND_REFUSED, "emergency: debt beyond it", RC_NO_CREDIT)
        return {"balance": self.s.store.ledger.balance}

    def credit_reset(self, req):
        """The head-end's repair of a damaged credit record (event 412): its balance and the last token id it issued.
        A healthy record is reset only with a signed `force`; checked before the envelope is spent."""
        balance = req.get("balance")
        top = req.get("top_tid")
        force = req.get("force", False)
        if not strict.is_int(balance, -supply_settings.AMOUNT_MAX, supply_settings.AMOUNT_MAX) \
                or not strict.is_int(top, 0) or type(force) is not bool:
            raise self._error(events.COMMAND_REFUSED, "credit.reset: bad arguments", RC_BAD_REQUEST)
        st = self.s.store
        if st.problem is None and not force:
            raise self._error(events.COMMAND_REFUSED, "credit.reset: the credit record is not damaged", RC_NOT_ALLOWED)
        args = {"balance": balance, "top_tid": top}
        if "force" in req:
            args["force"] = force
        self._authorise(req, "credit.reset", args)
        old = st.reset(balance, top)
        self.s.log.add(events.CREDIT_RESET, "%d -> %d, tokens to %d spent%s" % (
            old, balance, st.tokens.top, ", forced" if force else ""))
        if self.s.prepaid is not None:
            self.s.prepaid.decide()
        return {"balance": balance, "top_tid": st.tokens.top}

    def calendar(self, req):
        """The metering calendar the tariff's TOU rates follow: the local time offset and the TOU zone tables. A
        change is checked whole, saved in meter/config.json in one write and used from the next reading on."""
        m = self.s.m
        if "calendar" in req and self.ctx.server.op == smp.OP_WRITE:  # a read changes nothing
            new = req.get("calendar")
            self._authorise(req, "meter.calendar", {"calendar": new})
            why = meter_settings.check_calendar(new)
            if why is None:
                try:
                    meter_settings.save_calendar(new)
                except ValueError as e:
                    why = str(e)
            if why is not None:
                raise self._error(events.SETTINGS_INVALID, "calendar: " + why, RC_BAD_SETTINGS)
            m.set_calendar(new)
            self.s.log.add(events.SETTINGS_CHANGED, "calendar")
        return {"calendar": {k: m.cfg[k] for k in meter_settings.CALENDAR}}

    def bill(self, req):
        """IS 15959's billing reset on demand, an MD reset (app/billing.py bill_command: its code on the heap for the
        one request)."""
        import loader
        from app import billing

        try:
            return billing.bill_command(self, req, RC_NOT_ALLOWED)
        finally:
            loader.forget("app.billing")
            loader.forget("app.load_profile")

    def keys(self, req):
        """The DLMS utility-settings association's keys (app/dlms_hls.py command: its code on the heap for the one
        request): whether they are set; a signed write over the console sets or clears them."""
        import loader
        from app import dlms_hls

        try:
            return dlms_hls.command(self, req, RC_BAD_REQUEST, RC_NOT_ALLOWED)
        finally:
            loader.forget("app.dlms_hls")

    def reader(self, req):
        """The DLMS meter reader's secret (app/dlms_secret.py): whether one is set; a signed write stores the digest
        of a new one (its SHA-256 salted with the meter id), or clears it (sha256 empty: no meter reader
        association). Either way the guessing count starts again, and a DLMS session in progress ends (a reader
        associated with the old secret connects again)."""
        import loader
        from app import dlms_secret  # (the handler's body too: none of it stays on the app's heap)

        try:
            return dlms_secret.command(self, req, RC_BAD_REQUEST)
        finally:
            loader.forget("app.dlms_secret")
