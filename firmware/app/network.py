# The meter on its NB-IoT network (docs/firmware-engineer.md "The network"), and the handlers of SMP group 67
# "network" (registered by app/main.py, which loads this module only when it is needed):
#   0 status   read   the head-end, the link's state and counters
#   1 headend  read: {headend}; write {headend, envelope}   signed "meter.headend" {headend}
# A meter talks to one head-end: a BC660K "UDP" socket sends only to the address it was opened to. The head-end is
# `headend` in meter/config.json ({ip, port, uplink_s}, with dlms_port too for DLMS, or null), set by the signed
# command and used from the next boot; the file's one rule applies (loader/settings.py: a bad value is the default, null, plus event 411). The
# link (app/network_link.py: the driver app/modem*.py, SMP over UDP, the uplink, the link's events) is imported and
# started only on a board with a modem (board key `modem`) and a head-end; a meter without them does not even load
# this module, unless group 67 is asked. With dlms_port, a board with the DLMS port's modules (uarts.optical) also
# serves DLMS/COSEM through the IEC 62056-47 UDP wrapper on its port 4059 to the head-end's dlms_port
# (app/dlms_wrapper.py WrapperPort: the same associations, objects and security as the optical port). Serving SMP
# over UDP shares the console's server, so the same groups, signed envelopes and refusal limits apply. The optional uplink (every uplink_s while the link is up)
# keeps the operator's NAT mapping open and tells the head-end where the meter is (docs/smp-groups.md "uplink").
from micropython import const

from app import events
from loader import commands, settings, smp, store, strict

RC_NOT_AUTHORISED = const(1)  # the envelope was refused (the reason is in supply status last_refusal and an event)
RC_BAD_HEADEND = const(2)  # the head-end is not {ip, port, uplink_s[, dlms_port]} with a numeric address (the reply
# names it)
HEADEND = "headend"
UPLINK_MIN_S = const(20)  # an uplink more often than this would cost the module's power for nothing
UPLINK_MAX_S = const(86400)
_ADDRESS_CHARS = "0123456789abcdefABCDEF.:"
_ADDRESS_MAX = const(45)


def check_headend(v):
    """The problem with a head-end value (None or {ip, port, uplink_s[, dlms_port]}), or None when it is good."""
    if v is None:
        return None
    if type(v) is not dict or len(v) != 3 + ("dlms_port" in v) or "ip" not in v or "port" not in v or \
            "uplink_s" not in v:
        return "not {ip, port, uplink_s[, dlms_port]}"
    ip = v["ip"]
    if type(ip) is not str or not 0 < len(ip) <= _ADDRESS_MAX or any(c not in _ADDRESS_CHARS for c in ip):
        return "ip is not a numeric address"
    if not strict.is_int(v["port"], 1, 65535):
        return "port is not 1..65535"
    u = v["uplink_s"]
    if not (strict.is_int(u, 0, 0) or strict.is_int(u, UPLINK_MIN_S, UPLINK_MAX_S)):
        return "uplink_s is not 0 or %d..%d" % (UPLINK_MIN_S, UPLINK_MAX_S)
    if "dlms_port" in v and not strict.is_int(v["dlms_port"], 1, 65535):
        return "dlms_port is not 1..65535"
    return None


class Network:
    """The head-end setting, the modem when one is started, and group 67. `run()` is the app's task."""

    def __init__(self, ctx, log, metering=None, supply=None):
        self.ctx = ctx
        self.log = log  # the app's EventLog
        self.dlms = None if supply is None else (metering, supply)  # what a DLMS session reads and operates
        cfg, why = settings.read({HEADEND: None}, {HEADEND: lambda v: check_headend(v) is None})
        if why is not None:
            log.add(events.SETTINGS_INVALID, HEADEND + ": " + why)
        self.headend = cfg[HEADEND]
        self.saved = self.headend  # what the next boot uses
        self.link = None  # app/network_link.Link once started
        self.last_refusal = ""  # why the last head-end change was refused

    # -- group 67 ------------------------------------------------------------------------------------------------------
    def status(self, req=None):
        out = {HEADEND: self.headend, "next_boot": self.saved, "fitted": self.ctx.board.get("modem") is not None,
               "link": "none", "uplinks": 0, "quieted": 0, "last_refusal": self.last_refusal}
        if self.link is not None:
            self.link.status_into(out)
        return out

    def headend_cmd(self, req):
        if HEADEND in req and self.ctx.server.op == smp.OP_WRITE:  # a read changes nothing
            new = req.get(HEADEND)
            try:
                commands.authorise(self.ctx, req, "meter.headend", {HEADEND: new}, logged=False)
            except commands.Refused as e:
                self.last_refusal = "meter.headend: " + e.reason
                self.log.add(events.COMMAND_REFUSED, self.last_refusal)
                raise smp.SmpError(smp.EACCESSDENIED, RC_NOT_AUTHORISED) from None
            why = check_headend(new)
            if why is not None:
                self.last_refusal = HEADEND + ": " + why
                self.log.add(events.SETTINGS_INVALID, self.last_refusal)
                raise smp.SmpError(smp.EINVAL, RC_BAD_HEADEND)
            try:
                raw = store.read_json(settings.PATH, {})
            except ValueError:
                raw = {}  # unreadable: every reader already runs on its defaults
            if type(raw) is not dict:
                raw = {}
            raw[HEADEND] = new
            store.write_json(settings.PATH, raw)
            self.saved = new
            self.log.add(events.SETTINGS_CHANGED, HEADEND)
        return {HEADEND: self.saved, "now": self.headend}

    # -- the link --------------------------------------------------------------------------------------------------------
    async def run(self):
        """Serve SMP over UDP to the head-end, forever (app/network_link.py); returns at once without a modem or a
        head-end."""
        if self.headend is None or self.ctx.board.get("modem") is None:
            return
        try:
            from app.network_link import Link  # deferred: only a meter with a module and a head-end holds the link
        except Exception as e:  # noqa: BLE001 - out of memory at the import: the network alone stops, never the app
            self.log.add(events.LINK_LOST, "network stopped: %s" % repr(e))
            return
        self.link = Link(self.ctx, self.log, self.headend, self.dlms)
        await self.link.run()
