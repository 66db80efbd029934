# The application's main loop: asyncio tasks for the heartbeat, the SMP console, metering and the network (SMP over
# NB-IoT, on a meter with a module and a head-end); the supply (relay, credit, load limit) runs its rules at each
# metering reading.
import asyncio

from micropython import const

from app import console, heartbeat
from loader import settings, store

GROUP_NETWORK = const(67)  # app/network.py's group: status (0), head-end (1)


def run(ctx):
    asyncio.run(_main(ctx))


async def _main(ctx):
    from app.meter_group import MeterGroup
    from app.metering import Metering
    from app.supply import Supply
    from app.supply_group import SupplyGroup

    meter = Metering(ctx)  # first: its modules and buffers are the app's largest, placed while the heap is whole
    _feed(ctx)
    beat = heartbeat.Heartbeat(ctx)
    serve = console.ConsoleTask(ctx)
    ctx.reset_scheduler = serve.schedule_reset
    MeterGroup(ctx, meter).register(ctx.server)
    supply = Supply(ctx, meter)  # reconciles the relay with its persisted state before the first reading
    meter.listeners.append(supply.on_reading)
    SupplyGroup(ctx, supply).register(ctx.server)
    net = _network(ctx, supply.log)
    _feed(ctx)
    tasks = [beat.run(), serve.run(), meter.run()]
    if net is not None:
        tasks.append(net.run())
    if ctx.test_boot:  # deferred for RAM: only a test boot runs the self-test, most boots never load it
        from app import selftest

        tasks.append(selftest.run(ctx, beat))
    await asyncio.gather(*tasks)


def _network(ctx, log):
    """SMP group 67 (app/network.py), loaded at the group's first request, or now when the meter may use its network
    (a board with a modem and a head-end stored: then its Network, whose run() is a task). A meter without NB-IoT
    never holds the module (issue 17's heap)."""
    box = []  # type: list

    def get():
        if not box:
            from app.network import Network

            box.append(Network(ctx, log))
        return box[0]

    ctx.server.register(GROUP_NETWORK, 0, lambda req: get().status(req), write=False)
    ctx.server.register(GROUP_NETWORK, 1, lambda req: get().headend_cmd(req))
    if ctx.board.get("modem") is None:
        return None
    try:
        raw = store.read_json(settings.PATH, {})
    except ValueError:
        return None  # the file does not parse: every reader runs on its defaults (no head-end)
    return get() if type(raw) is dict and raw.get("headend") is not None else None


def _feed(ctx):
    # a test boot's watchdog (loader/startup.py) runs from before the app's imports; each start-up step that reads
    # flash (registers, calibration, event log, credit record) feeds it, so only a step that hangs trips it
    if ctx.wdt is not None:
        ctx.wdt.feed()
