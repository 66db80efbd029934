# Recovery mode: the loader alone serves SMP on the console (OS and image groups) so a signed image can still be
# installed, with the same policy as ever, when no valid app exists or the button was held at boot. It records a
# "recovery" event, applies the configured relay policy (the loader does not meter: by default it opens the relay,
# so recovery never becomes free power), blinks the LED fast, and resets after a time limit so a meter never stays
# in recovery unattended (the next boot installs an image marked pending, or comes back here).
import time

from loader import journal, settings, store, supply_hold
from loader.console import Console
from loader.image_group import ImageGroup
from loader.os_group import OsGroup

_BLINK_MS = 125
OPENED = "meter/recovery-relay.json"  # recovery opened the relay: the loader closes it once a valid app runs


def restore_relay(ctx):
    """Undo what recovery did to the relay before the app starts (the app's own relay rules then apply)."""
    if not store.exists(OPENED):
        return
    conf, _ = settings.load()
    if supply_hold.held():  # the app's boot reconciliation keeps it open: closing it here would flick the power on
        journal.event("relay-left-open", "after recovery: the app holds the supply off")
    elif ctx.hal.relay_pulse(True, conf["relay_pulse_ms"]):
        journal.event("relay-closed", "after recovery")
    import os

    os.remove(OPENED)


def run(ctx, reason):
    conf, problem = settings.load()
    if problem:
        journal.event("config-invalid", problem)
    journal.event("recovery", reason)
    if conf["recovery_relay"] == settings.RELAY_DISCONNECT and ctx.hal.relay_closed() is not False:
        store.write_json(OPENED, {"by": "recovery"})  # first: the app closes it again after a cut here too
        if ctx.hal.relay_pulse(False, conf["relay_pulse_ms"]):
            journal.event("relay-open", "recovery")
    console = Console(ctx.server)
    OsGroup(ctx).register(ctx.server)
    ImageGroup(ctx).register(ctx.server)
    console.log("recovery: " + reason)
    start = time.ticks_ms()
    led = False
    last_blink = start
    limit_ms = conf["recovery_time_limit_s"] * 1000
    while time.ticks_diff(time.ticks_ms(), start) < limit_ms:
        if console.pending(_BLINK_MS):
            console.service()
        now = time.ticks_ms()
        if time.ticks_diff(now, last_blink) >= _BLINK_MS:
            led = not led
            ctx.hal.led(led)
            last_blink = now
    console.log("recovery: time limit, resetting")
    ctx.reset_now()
