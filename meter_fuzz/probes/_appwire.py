"""What app/main.py's _main does to wire group 67 and the network, for the probes that build a meter without
running _main (its event loop never returns). _main keeps these lines inline: a function of its own would cost the
app's long-running heap (issue 19). Kept in step by host_tests/fuzz/test_targets.py's check of main.py's source."""

from app import main

GROUP_NETWORK = 67

# the lines of app/main.py this mirrors, checked against its source
MIRRORS = (
    "_GROUP_NETWORK = const(67)",  # a private const: the VM compiles it away, so the probes hold their own
    '_net[:] = (ctx, supply.log, meter, supply) if "optical" in ctx.board["uarts"] else (ctx, supply.log)',
    "ctx.server.register(_GROUP_NETWORK, 0, lambda req: _get().status(req), write=False)",
    "ctx.server.register(_GROUP_NETWORK, 1, lambda req: _get().headend_cmd(req))",
    'if settings.read({"headend": None}, {"headend": type})[0]["headend"] is not None:',
)


def network(ctx, log, metering=None, supply=None):
    """Register group 67 as the app does; return the app's Network when the meter would start it (a board with a
    modem and a stored head-end), else None. With the metering and the supply, on a board with the DLMS port, its
    link would serve DLMS through the wrapper too (no probe gives them: group 67's handlers do not use them)."""
    from loader import settings

    main._net[:] = (ctx, log, metering, supply) if supply is not None and "optical" in ctx.board["uarts"] else (ctx, log)
    ctx.server.register(GROUP_NETWORK, 0, lambda req: main._get().status(req), write=False)
    ctx.server.register(GROUP_NETWORK, 1, lambda req: main._get().headend_cmd(req))
    if ctx.board.get("modem") is not None:
        if settings.read({"headend": None}, {"headend": type})[0]["headend"] is not None:
            return main._get()
    return None


def fresh_ram():
    """What a reset clears and a probe building a meter must clear too: the loader's journal sink and its events
    waiting for one (module state that otherwise carries from one input, or one test, to the next)."""
    from loader import journal

    journal._sink[:] = []
    journal._pending[:] = []
    main._net[:] = []
