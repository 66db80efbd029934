# The console task: waits for console input through asyncio, hands it to the loader's SMP console, and performs
# planned resets once the reply has left.
import asyncio
import sys

from loader.console import Console
from loader.image_group import ImageGroup
from loader.os_group import OsGroup

RESET_DELAY_MS = 250


class ConsoleTask:
    def __init__(self, ctx):
        self.ctx = ctx
        self.console = Console(ctx.server)
        OsGroup(ctx).register(ctx.server)
        ImageGroup(ctx).register(ctx.server)

    async def run(self):
        stream = sys.stdin.buffer
        while True:
            await _readable(stream)
            self.console.service()

    def schedule_reset(self, force=False):
        asyncio.create_task(self._reset())

    async def _reset(self):
        await asyncio.sleep_ms(RESET_DELAY_MS)
        self.ctx.reset_now()


async def _readable(stream):
    # asyncio's own wait for a readable stream, as StreamReader.read uses before reading. Private, on purpose:
    # MicroPython's asyncio (1.29) has no public "wait until readable" — StreamReader would read the byte itself,
    # which the loader's console must do (loader/console.py: one byte at a time into its preallocated chunk) — and the
    # name has not changed since the uasyncio rewrite (v1.13). host_tests/firmware/test_app_console.py fails, on the
    # VM the boards' version runs, if it goes.
    yield asyncio.core._io_queue.queue_read(stream)  # type: ignore[attr-defined]  # not in the stubs
