# The application's main loop: asyncio tasks for the heartbeat, the SMP console, metering, the network (SMP over
# NB-IoT, on a meter with a module and a head-end) and the DLMS port (on a board with uarts.optical); the supply
# (relay, credit, load limit) runs its rules at each metering reading.
import asyncio

from micropython import const

from app import console, heartbeat

_GROUP_NETWORK = const(67)  # app/network.py's group: status (0), head-end (1)
_OPTICAL_CHUNK = const(64)  # what the DLMS port's line task reads at a time
# Group 67's Network (app/network.py) is made at the group's first request, or at start when the meter may use its
# network (a board with a modem and a head-end stored: then its run() is a task); until then this holds (ctx, log) or,
# on a board with the DLMS port, (ctx, log, metering, supply).
# A meter without NB-IoT never loads the module (issue 17's heap). Module-level, with two plain lambdas, rather than
# closures: cells and closure objects cost the app's long-running heap about 0.3 KB VM more (issue 19).
_net = []  # type: list


def run(ctx):
    asyncio.run(_main(ctx))


async def _main(ctx):
    from app.meter_group import MeterGroup
    from app.metering import Metering
    from app.supply import Supply
    from app.supply_group import SupplyGroup

    # the console first: its decoder's 2 KB buffer is the app's largest single block, and found no room once metering
    # had placed its modules (an emulated locked ESP32 with its network up failed to start that way); then metering,
    # whose modules and buffers are the app's largest in all, while the heap is still nearly whole
    serve = console.ConsoleTask(ctx)
    ctx.reset_scheduler = serve.schedule_reset
    meter = Metering(ctx)
    _feed(ctx)
    beat = heartbeat.Heartbeat(ctx)
    MeterGroup(ctx, meter).register(ctx.server)
    supply = Supply(ctx, meter)  # reconciles the relay with its persisted state before the first reading
    meter.listeners.append(supply.on_reading)
    SupplyGroup(ctx, supply).register(ctx.server)
    # (the metering and the supply too on a board with the DLMS port's modules: the wrapper over the modem reads them)
    _net[:] = (ctx, supply.log, meter, supply) if "optical" in ctx.board["uarts"] else (ctx, supply.log)
    ctx.server.register(_GROUP_NETWORK, 0, lambda req: _get().status(req), write=False)
    ctx.server.register(_GROUP_NETWORK, 1, lambda req: _get().headend_cmd(req))
    net = None
    if ctx.board.get("modem") is not None:
        from loader import settings  # loaded already (the supply reads it): a local name, no global here

        # a head-end stored, whatever its value (`type` passes every one; Network checks it); a file that does not
        # parse or is not an object gives the default, None, as to every reader
        if settings.read({"headend": None}, {"headend": type})[0]["headend"] is not None:
            net = _get()
    _feed(ctx)
    import gc

    gc.collect()  # the start-up's garbage gone before the tasks' first allocations
    tasks = [beat.run(), serve.run(), meter.run()]
    if net is not None:
        tasks.append(net.run())
    if "optical" in ctx.board["uarts"]:  # the DLMS port: its code comes in for a session only (app/dlms_port.py)
        tasks.append(_optical(ctx, meter, supply))
    if ctx.test_boot:  # deferred for RAM: only a test boot runs the self-test, most boots never load it
        from app import selftest

        tasks.append(selftest.run(ctx, beat))
    await asyncio.gather(*tasks)


async def _optical(ctx, meter, supply):
    # The DLMS port's line (uarts.optical). Bytes before a flag (a probe's light, a bus's idle) are dropped; at a flag
    # a session starts (app/dlms_port.py serve) and holds the line until no client does, then its code leaves the
    # heap: a meter nobody reads this way keeps only this loop and its buffer.
    import machine

    u = ctx.board["uarts"]["optical"]
    uart = machine.UART(u["id"], baudrate=u["baud"], tx=u["tx"], rx=u["rx"], timeout=0)
    buf = bytearray(_OPTICAL_CHUNK)
    while True:
        await console._readable(uart)
        n = uart.readinto(buf)
        if n and buf.find(b"\x7e", 0, n) >= 0:
            await _dlms_session(ctx, meter, supply, uart, buf, n)


async def _dlms_session(ctx, meter, supply, uart, buf, n):
    from app import dlms_port  # a local of this frame only: nothing keeps the module once serve() has forgotten it

    await dlms_port.serve(ctx, meter, supply, uart, buf, n)


def _get():
    if len(_net) > 1:
        from app.network import Network

        _net[:] = [Network(*_net)]
    return _net[0]


def _feed(ctx):
    # a test boot's watchdog (loader/startup.py) runs from before the app's imports; each start-up step that reads
    # flash (registers, calibration, event log, credit record) feeds it, so only a step that hangs trips it
    if ctx.wdt is not None:
        ctx.wdt.feed()
