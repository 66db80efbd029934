"""The loader's "supply held off" record (loader/supply_hold.py): what the app's class-70 control writes into it,
which way a power cut between the two records errs, and recovery's use of it before the app starts."""
import fwtest
from app import disconnect as dc
from app import relay as rl
from loader import journal, recovery, store, supply_hold


class _Coils:
    """The board's latching relay as the HAL sees it: the coils move the contact, the feedback reads it."""

    def __init__(self, closed=True):
        self.contact = closed
        self.pulses = []

    def relay_pulse(self, connect, ms=100):
        self.pulses.append(connect)
        self.contact = connect
        return True

    def relay_closed(self):
        return self.contact


class _Ctx:
    def __init__(self, hal):
        self.hal = hal


class _Cut(Exception):
    pass


def _cut_at(path):
    """store.write_record loses power right before writing `path` (the other records are written); returns the
    original for the caller to put back."""
    real = store.write_record

    def write(p, kind, version, data):
        if p == path:
            raise _Cut()
        real(p, kind, version, data)

    store.write_record = write
    return real


def test_missing_means_not_held_and_damaged_means_held():
    def body():
        assert supply_hold.held() is False  # a new meter
        supply_hold.write(True)
        assert supply_hold.held() is True
        supply_hold.write(False)
        assert supply_hold.held() is False
        fwtest.write(supply_hold.PATH, b'{"kind": "supply-hold", "v": 1, "data": {"he')
        assert supply_hold.held() is True  # the relay is then left to the app
        store.write_record(supply_hold.PATH, "disconnect", 1, {"held": False})
        assert supply_hold.held() is True
        supply_hold.write(False)  # a damaged record is replaced
        assert supply_hold.held() is False
        store.write_record(supply_hold.PATH, supply_hold.RECORD, supply_hold.RECORD_VERSION, {"held": 0})
        assert supply_hold.held() is True  # only a false "held" is not held

    fwtest.in_workdir(body, "meter")


def test_a_newer_format_is_left_alone_and_reads_as_held():
    def body():
        store.write_record(supply_hold.PATH, supply_hold.RECORD, supply_hold.RECORD_VERSION + 1, {"held": False})
        before = store.read_bytes(supply_hold.PATH)
        assert supply_hold.held() is True
        supply_hold.write(False)  # no store.TooNew into the app's save
        assert store.read_bytes(supply_hold.PATH) == before

    fwtest.in_workdir(body, "meter")


def test_only_a_change_is_written():
    def body():
        supply_hold.write(True)
        real = _cut_at(supply_hold.PATH)
        try:
            supply_hold.write(True)  # the same: no write (a write here would raise _Cut)
            fwtest.raises(_Cut, supply_hold.write, False)
        finally:
            store.write_record = real

    fwtest.in_workdir(body, "meter")


def test_the_app_s_class_70_control_keeps_the_record():
    def body():
        coils = _Coils()
        c = dc.DisconnectControl(rl.Relay(coils, 80))
        c.load()
        c.reconcile()
        assert supply_hold.held() is False
        c.apply(dc.REMOTE_DISCONNECT)
        assert supply_hold.held() is True and coils.contact is False
        c.apply(dc.REMOTE_RECONNECT)  # mode 6: ready for reconnection, the supply still off
        assert c.state == dc.READY and supply_hold.held() is True
        c.apply(dc.MANUAL_RECONNECT)
        assert supply_hold.held() is False and coils.contact is True
        c.apply(dc.LOCAL_DISCONNECT)
        assert supply_hold.held() is True
        c.set_mode(0)  # always connected
        assert supply_hold.held() is False and coils.contact is True

    fwtest.in_workdir(body, "meter")


def test_a_record_missing_at_boot_is_written_by_the_app_s_reconciliation():
    def body():
        # an app from before the record held the supply off: its class-70 record alone is on the flash
        store.write_record(dc.STATE_FILE, dc.RECORD, dc.RECORD_VERSION, {"mode": 6, "state": dc.DISCONNECTED,
                                                                          "reason": "remote"})
        c = dc.DisconnectControl(rl.Relay(_Coils(False), 80))
        c.load()
        c.reconcile()
        assert supply_hold.held() is True

    fwtest.in_workdir(body, "meter")


def test_a_cut_between_the_two_records_errs_towards_held():
    def body():
        coils = _Coils()
        c = dc.DisconnectControl(rl.Relay(coils, 80))
        c.load()
        c.reconcile()
        real = _cut_at(dc.STATE_FILE)
        try:  # taking the supply off: the loader's record says held before the app's record says off
            fwtest.raises(_Cut, c.apply, dc.REMOTE_DISCONNECT)
        finally:
            store.write_record = real
        assert supply_hold.held() is True
        c = dc.DisconnectControl(rl.Relay(coils, 80))  # the boot after the cut: the app's record says connected
        c.load()
        c.reconcile()
        assert c.state == dc.CONNECTED and supply_hold.held() is False
        c.apply(dc.REMOTE_DISCONNECT)
        real = _cut_at(dc.STATE_FILE)
        try:  # giving it back: the loader's record says not held only after the app's record says connected
            fwtest.raises(_Cut, c.apply, dc.REMOTE_RECONNECT)
        finally:
            store.write_record = real
        assert supply_hold.held() is True

    fwtest.in_workdir(body, "meter")


def test_recovery_s_relay_is_closed_again_unless_the_app_holds_the_supply_off():
    def body():
        journal._sink[:] = []
        journal._pending[:] = []
        coils = _Coils(closed=False)  # recovery opened it
        store.write_json(recovery.OPENED, {"by": "recovery"})
        supply_hold.write(True)
        recovery.restore_relay(_Ctx(coils))
        assert coils.pulses == [] and not store.exists(recovery.OPENED)
        assert store.read_json(journal.EVENTS)[-1]["event"] == "relay-left-open"
        store.write_json(recovery.OPENED, {"by": "recovery"})
        supply_hold.write(False)
        # the app's own record is not the loader's business: whatever it says, the loader's record decides
        store.write_record(dc.STATE_FILE, dc.RECORD, dc.RECORD_VERSION, {"mode": 6, "state": 0, "reason": "x"})
        recovery.restore_relay(_Ctx(coils))
        assert coils.pulses == [True] and not store.exists(recovery.OPENED)
        assert store.read_json(journal.EVENTS)[-1]["event"] == "relay-closed"
        recovery.restore_relay(_Ctx(coils))  # nothing opened by recovery: nothing to do
        assert coils.pulses == [True]
        journal._pending[:] = []

    fwtest.in_workdir(body, "meter")
