# The application's main loop: asyncio tasks for the heartbeat, the SMP console, metering and the network (SMP over
# NB-IoT, on a meter with a module and a head-end); the supply (relay, credit, load limit) runs its rules at each
# metering reading.
import asyncio

from app import console, heartbeat


def run(ctx):
    asyncio.run(_main(ctx))


async def _main(ctx):
    from app.meter_group import MeterGroup
    from app.metering import Metering
    from app.network import Network
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
    net = Network(ctx, supply.log)
    net.register(ctx.server)
    _feed(ctx)
    tasks = [beat.run(), serve.run(), meter.run(), net.run()]
    if ctx.test_boot:  # deferred for RAM: only a test boot runs the self-test, most boots never load it
        from app import selftest

        tasks.append(selftest.run(ctx, beat))
    await asyncio.gather(*tasks)


def _feed(ctx):
    # a test boot's watchdog (loader/startup.py) runs from before the app's imports; each start-up step that reads
    # flash (registers, calibration, event log, credit record) feeds it, so only a step that hangs trips it
    if ctx.wdt is not None:
        ctx.wdt.feed()
