import sys


def test_asyncio_still_offers_the_readable_wait_the_console_uses():
    # app/console.py waits for console input with asyncio.core._io_queue.queue_read (no public API does this without
    # reading); MicroPython's asyncio only: on CPython this checks nothing, the [vm] run is the one that matters
    if sys.implementation.name != "micropython":
        return
    import asyncio

    assert callable(asyncio.core._io_queue.queue_read)

    from app import console

    f = open("/dev/zero", "rb")  # a pollable stream that always has input waiting
    try:
        async def probe():
            await console._readable(f)  # returns once readable, as in the console task
            return f.read(1)

        assert asyncio.run(asyncio.wait_for(probe(), 5)) == b"\x00"
    finally:
        f.close()
