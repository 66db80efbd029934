# Recovery mode: the loader alone serves SMP on the console (OS group now; the image group arrives with OTA) so a
# signed image can still be installed when no valid app exists or the button was held at boot. It blinks the LED
# fast, and resets after a time limit so a meter never stays in recovery unattended.
import time

from loader.console import Console
from loader.image_group import ImageGroup
from loader.os_group import OsGroup

TIME_LIMIT_S = 600
_BLINK_MS = 125


def run(ctx, reason):
    console = Console(ctx.server)
    OsGroup(ctx).register(ctx.server)
    ImageGroup(ctx).register(ctx.server)
    console.log("recovery: " + reason)
    start = time.ticks_ms()
    led = False
    last_blink = start
    while time.ticks_diff(time.ticks_ms(), start) < TIME_LIMIT_S * 1000:
        if console.pending(_BLINK_MS):
            console.service()
        now = time.ticks_ms()
        if time.ticks_diff(now, last_blink) >= _BLINK_MS:
            led = not led
            ctx.hal.led(led)
            last_blink = now
    console.log("recovery: time limit, resetting")
    ctx.reset_now()
