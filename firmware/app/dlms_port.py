# The DLMS/COSEM port (board key uarts.optical: an optical probe head or an RS-485 transceiver, IEC 62056-46 HDLC),
# a task of the app. It waits for the line and loads the DLMS layers (app/hdlc.py, cosem.py, dlms_objects.py) only at
# the first flag byte: a meter nobody reads this way never pays their RAM (issue 17's heap); once loaded they stay
# until the next reset. Frames are answered as they complete: the HDLC server address is 1 (the management logical
# device, one-byte form), the public client's association (client SAP 16) reads the meter's objects, read-only.
import time

import machine
from micropython import const

from app.console import _readable

_CHUNK = const(64)
_SERVER = const(1)


class OpticalPort:
    def __init__(self, ctx, metering, supply):
        u = ctx.board["uarts"]["optical"]
        self.uart = machine.UART(u["id"], baudrate=u["baud"], tx=u["tx"], rx=u["rx"], timeout=0)
        self.ctx = ctx
        self.metering = metering
        self.supply = supply
        self.buf = bytearray(_CHUNK)
        self.deframer = None  # the DLMS layers, loaded at the first flag
        self.noise = 0  # bytes before the first flag (a probe's light, a bus's idle): counted, nothing loaded
        self.faults = 0  # exceptions out of the DLMS layers (each drops the line's state)

    def _load(self):
        from app import cosem, dlms_objects, hdlc

        m = self.metering
        objects = dlms_objects.Objects(m.tick, self.supply.control,
                                       dlms_objects.logical_device_name(self.ctx.meter_id),
                                       lambda: m.cfg["tz_offset_min"])
        assoc = cosem.Association(objects.get)
        link = hdlc.Link(_SERVER, 1, assoc.apdu)
        link.on_disconnect = assoc.release
        uart = self.uart

        def answer(f):
            r = link.receive(f, time.ticks_ms())
            if r is not None:
                uart.write(r)

        d = hdlc.Deframer()
        d.on_frame = answer
        self.deframer = d
        return d

    async def run(self):
        buf = self.buf
        uart = self.uart
        while True:
            await _readable(uart)
            n = uart.readinto(buf)
            if not n:
                continue
            try:
                d = self.deframer
                if d is None:
                    if buf.find(b"\x7e", 0, n) < 0:
                        self.noise += n
                        continue
                    d = self._load()
                d.feed(buf, n)
            except Exception:  # noqa: BLE001 - a fault here (a MemoryError, a bug) must not end metering's app:
                self.faults += 1  # the line's state is dropped, the client starts again with SNRM
                self.deframer = None
