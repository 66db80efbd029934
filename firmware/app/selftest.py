# The app's self-test after an update: during a test boot it confirms the new slot once the heartbeat has run a few
# beats and the SMP dispatcher answers an echo; if that has not happened in time, it resets, which reverts the
# update. Outside a test boot it does nothing.
import asyncio
import time

from loader import journal, smp, update

BEATS_NEEDED = 3
CONFIRM_TIMEOUT_MS = 120000


def _smp_answers(server):
    import cbor

    body = cbor.dumps({"d": "self-test"})
    rsp = server.handle(smp.header(1, smp.OP_WRITE, len(body), smp.GROUP_OS, 0, 0) + body)
    return rsp is not None and cbor.loads(rsp[8:]) == {"r": "self-test"}


async def run(ctx, heartbeat):
    if not ctx.test_boot:
        return
    deadline = time.ticks_add(time.ticks_ms(), CONFIRM_TIMEOUT_MS)
    while heartbeat.beats < BEATS_NEEDED or not _smp_answers(ctx.server):
        if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
            journal.event("self-test-failed", "slot %s" % ctx.slot)
            ctx.reset_now("self-test not passed in %d s" % (CONFIRM_TIMEOUT_MS // 1000))
        await asyncio.sleep_ms(250)
    if ctx.test_boot:
        update.confirm(ctx.slot)
        ctx.test_boot = False
