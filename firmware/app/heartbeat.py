# The heartbeat: blinks the LED once a second and counts beats, showing the main loop is alive.
import asyncio
import time

PERIOD_MS = 1000


class Heartbeat:
    def __init__(self, ctx):
        self.ctx = ctx
        self.beats = 0
        self.started = time.ticks_ms()

    async def run(self):
        led = False
        while True:
            led = not led
            self.ctx.hal.led(led)
            if self.ctx.wdt is not None:
                self.ctx.wdt.feed()
            self.beats += 1
            await asyncio.sleep_ms(PERIOD_MS)
