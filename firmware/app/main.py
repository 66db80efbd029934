# The application's main loop: asyncio tasks for the heartbeat and the SMP console.
import asyncio

from app import console, heartbeat, selftest


def run(ctx):
    asyncio.run(_main(ctx))


async def _main(ctx):
    beat = heartbeat.Heartbeat(ctx)
    serve = console.ConsoleTask(ctx)
    ctx.reset_scheduler = serve.schedule_reset
    await asyncio.gather(beat.run(), serve.run(), selftest.run(ctx, beat))
