"""SMP dispatch into every group a locked meter serves (the same meter, requests and invariants as
smp_dispatch_dev), whose trust store's one command key is a development key: a locked meter obeys none, so no input
can carry a signature it accepts, and no record a signed command guards may change (PROTECTED: mode, identity,
trust store, counter, slots and install request, calibration, supply settings, credit, relay state, clock,
head-end and calendar, used envelope ids). The refusals themselves (events, the update status's reason) may be
written. Input format, documented errors and the other invariants: see smp_dispatch_dev."""

from smp_dispatch_dev import ERRORS, MEM_BASE, MEM_PER_BYTE, MODULES, Meter, run_on  # noqa: F401

PROTECTED = ("meter/mode.json", "meter/trust.cbor", "meter/identity.json", "meter/counter.json", "meter/loaders.json",
             "meter/slots.json", "meter/update.json", "meter/calibration.json", "meter/supply.json",
             "meter/credit.json", "meter/disconnect.json", "meter/clock.json", "meter/config.json",
             "meter/command-ids.json", "meter/supply-hold.json")
METER = Meter("smp_dispatch_locked", "locked", "trust_dev_command.cbor", PROTECTED)


def setup():
    METER.setup()


def run(data):
    return run_on(METER, data)
