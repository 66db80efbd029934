# What the loader hands to the application (and uses itself in recovery mode): the board, its hardware, the meter's
# identity and mode, the SMP server the console feeds, and the planned-reset hook.
import time

import machine

import loader
from loader import mode as mode_file
from loader import smp, store, update, wallclock
from loader.hal import Hal

IDENTITY = "meter/identity.json"


class Context:
    def __init__(self):
        from loader import board

        self.board = board.load()
        loader.forget("loader.board")  # read once: the dict stays here, the module's code leaves the heap
        self.hal = Hal(self.board)
        self.mode = mode_file.current()
        mode_file.apply(self.mode)  # main.py starts with Ctrl-C off; a development meter gets it back here
        try:
            ident = store.read_json(IDENTITY, {})
        except ValueError:
            ident = {}
        uid = machine.unique_id()
        mid = ident.get("meter_id") if isinstance(ident, dict) else None
        # a damaged identity falls back to the chip's id: envelopes for the provisioned id are then refused, visibly
        self.meter_id = mid if type(mid) is str and mid else "".join("%02x" % b for b in uid)
        self.server = smp.Server()
        self.started_ms = time.ticks_ms()
        self.uptime = wallclock.Uptime()  # (for an uptime, not started_ms: ticks wrap)
        self.refusals = [None, 0, ""]  # the burst of refused commands in the update journal (journal.event)
        self.refused = ""  # why the last state change of groups 0 and 1 was refused (the update status reports it)
        self.slot = None
        self.slot_path = None
        self.test_boot = False
        self.loader_test = False  # this boot runs a newly installed loader (see loader/loaders.py)
        self.wdt = None  # armed during a test boot; the app's heartbeat feeds it
        self.facts = None  # {slot: (version, hash, bootable)}: loader/update.py slots_facts
        self.app_version = None
        self.before_reset = []  # callables run before a planned reset, so the app can persist its state
        self.reset_scheduler = None  # set by the app: schedules a reset after the reply has gone out

    def request_reset(self, force=False):
        if self.reset_scheduler is not None:
            self.reset_scheduler(force)
        else:
            self.server.after_reply = self.reset_now

    def reset_now(self, why="reset requested before confirm"):
        """Reset the board. On a test boot `why` (a text or an exception) is recorded first: the rollback at the next
        boot reports it (loader/update.py test_failed)."""
        if self.test_boot:
            try:
                update.test_failed(why)
            except Exception:  # nothing may stand in the way of the reset
                pass
        for fn in self.before_reset:
            try:
                fn()
            except Exception as e:  # a failing hook must not prevent the reset
                import sys

                sys.print_exception(e)
        machine.reset()
