# SMP OS management group (0): echo, reset, MCUmgr parameters, OS/application info.
import sys

from micropython import const

from loader import smp, strict

_CMD_ECHO = const(0)
_CMD_RESET = const(5)
_CMD_PARAMS = const(6)
_CMD_INFO = const(7)
_ERR_INFO_FORMAT = const(2)  # OS group rc for an unknown info format character
INFO_ALL = "snrvbmpio"
RESET_MIN_UPTIME_MS = const(30000)
CMD_NAME_RESET = "os.reset"
# Request buffers the console offers a host (buf_count): a USB CDC console is flow controlled (MicroPython's rp2
# port leaves what its 512-byte stdin ring cannot take in TinyUSB, whose endpoint then holds the host back), so a
# second request waits whole while the first is served; a UART console is not (the ESP32 port's 260-byte stdin ring
# drops what it cannot take), so one request at a time. Another transport (SMP over UDP, app/modem_smp.py) hands the
# server its own figures with each request (smp.Server.bufs).
CONSOLE_USB = "usb"
_BUFS_FLOW_CONTROLLED = const(2)


class OsGroup:
    """`ctx` supplies: board (dict), meter_id, app_version (None in recovery), request_reset(force)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def register(self, server):
        self._server = server
        server.register(smp.GROUP_OS, _CMD_ECHO, self.echo)
        server.register(smp.GROUP_OS, _CMD_RESET, self.reset, read=False)
        server.register(smp.GROUP_OS, _CMD_PARAMS, self.params, write=False)
        server.register(smp.GROUP_OS, _CMD_INFO, self.info, write=False)

    def echo(self, req):
        d = req.get("d")
        if not isinstance(d, str):
            raise smp.SmpError(smp.EINVAL)
        return {"r": d}

    def reset(self, req):
        """Locked meters refuse a reset (EBUSY) in their first RESET_MIN_UPTIME_MS, so no one can keep a meter
        rebooting (or in its boot window) over the console; a signed "os.reset" envelope lifts the limit."""
        force = req.get("force", 0)
        if not strict.is_int(force):
            raise smp.SmpError(smp.EINVAL)
        from loader import mode

        if self.ctx.mode != mode.DEVELOPMENT:
            up = self.ctx.uptime.ms()
            if "envelope" in req:
                from loader import commands

                try:
                    commands.authorise(self.ctx, req, CMD_NAME_RESET, {})
                except commands.Refused as e:
                    self.ctx.refused = e.reason  # the update status says why (ota names it)
                    raise smp.SmpError(smp.EACCESSDENIED) from None
                self.ctx.refused = ""
            elif 0 <= up < RESET_MIN_UPTIME_MS:
                raise smp.SmpError(smp.EBUSY)
        self.ctx.request_reset(bool(force))
        return {}

    def params(self, req):
        """The buffers of the transport this request came through: the console's, or those the transport named."""
        bufs = self._server.bufs
        if bufs is not None:
            return {"buf_size": bufs[0], "buf_count": bufs[1]}
        console = self.ctx.board.get("uarts", {}).get("console", {})
        return {"buf_size": smp.BUF_SIZE,
                "buf_count": _BUFS_FLOW_CONTROLLED if console.get("id") == CONSOLE_USB else 1}

    def _field(self, ch):
        b = self.ctx.board
        impl = sys.implementation
        if ch == "s":
            return "MicroPython"
        if ch == "n":
            return self.ctx.meter_id
        if ch == "r":
            return "%d.%d.%d" % impl.version[:3]
        if ch == "v":
            v = self.ctx.app_version
            return ("app-" + v) if type(v) is str and v else "recovery"
        if ch == "b":
            mpy = getattr(impl, "_mpy", 0)
            return "mpy%d.%d" % (mpy & 0xFF, (mpy >> 8) & 3)
        if ch == "m":
            return b.get("name", b["id"])
        if ch == "p":
            return b["mcu"]["arch"]
        if ch == "i":
            return b["id"]
        if ch == "o":
            return "meterkit"
        return None

    def info(self, req):
        fmt = req.get("format", "s")
        if not isinstance(fmt, str):
            raise smp.SmpError(smp.EINVAL)
        if "a" in fmt:
            fmt = INFO_ALL
        out = []
        for ch in fmt:
            v = self._field(ch)
            if v is None:
                raise smp.SmpError(smp.EINVAL, _ERR_INFO_FORMAT)
            out.append(v)
        return {"output": " ".join(out)}
