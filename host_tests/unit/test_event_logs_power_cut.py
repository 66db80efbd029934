"""The event ring and IS 15959's event logs (firmware/app/events.py, app/event_logs.py) over a real littlefs with a
power cut before a flash operation (host_tests/lfs_meter.py's NOR flash, plain and torn): after power returns and
the meter boots, no log is taken for damaged, every event whose add had returned is in its category's log, and the
category's next event writes the missed ones into its file. Every 3rd operation of the scenario in this suite, every
one with METERKIT_SWEEPS=1 (`make sweeps`)."""

from __future__ import annotations

import importlib
import os

import pytest

from host_tests import lfs_meter as L
from host_tests.lfs_meter import CutFlash, PowerCut, Volume  # first: it puts the firmware on sys.path

from app import events  # noqa: E402  isort: skip
import loader  # noqa: E402  isort: skip
from loader import store  # noqa: E402  isort: skip

BS, BC = 4096, 64
# a day of a meter's events: power, clock, cover, relay and this kit's own (refusals, alerts) between them
SCRIPT = (101, 102, 151, 405, 405, 401, 301, 402, 404, 302, 251, 408, 410, 209, 1, 51, 201, 301, 302, 251, 101, 102)
NEXT = (1, 51, 101, 151, 201, 251, 301)  # one more of each category after the boot


@pytest.fixture(autouse=True)
def _host_os_back(monkeypatch):
    # the app brings app/event_logs.py in for each add and read and forgets it after; kept here, so that the one
    # module object bound to the littlefs volume is the one every add imports
    real = loader.forget
    monkeypatch.setattr(loader, "forget", lambda name: None if name == "app.event_logs" else real(name))
    yield
    L.unbind()
    for m in (store, importlib.import_module("app.event_logs"), events):
        m.__dict__.pop("open", None)
    for m in (store, importlib.import_module("app.event_logs")):
        m.os = os


def _category(code: int) -> int | None:
    return importlib.import_module("app.event_logs").category(code)


def _bind(vol: Volume) -> None:
    # the module object the app's next `from app import event_logs` finds (another test in this process may have
    # let the one imported above go: the app forgets it after each use)
    logs = importlib.import_module("app.event_logs")
    for m in (store, logs):
        m.os = vol
        m.open = vol.open
    events.open = vol.open


def _log(now: list[int]) -> events.EventLog:
    log = events.EventLog(clock=lambda: now[0], logs=events.LOGS, ticks_ms=lambda: now[0] * 1000)
    log.load()
    return log


def _run(cut_at: int | None, torn: int = 0) -> tuple[CutFlash, list[tuple[int, int]], int]:
    """The script with a cut before flash operation `cut_at` (None: none); the flash, the (seq, code) of every add
    that returned, and how many operations the run made."""
    flash = CutFlash(BS * BC)
    vol = Volume(flash, BS, BC, fresh=True)
    vol.mkdir("meter")
    _bind(vol)
    now = [1_800_000_000]
    done: list[tuple[int, int]] = []
    log = _log(now)
    flash.cut_at = None if cut_at is None else flash.ops + cut_at
    flash.torn = torn
    try:
        for code in SCRIPT:
            now[0] += 60
            done.append((log.add(code, "x"), code))
            log.flush_due()
    except PowerCut:
        pass
    return flash, done, flash.ops


def _boot(flash: CutFlash) -> events.EventLog:
    flash.dead = False
    flash.cut_at = None
    vol = Volume(flash, BS, BC)
    _bind(vol)
    store.cleanup("meter")
    now = [1_900_000_000]
    log = _log(now)
    log.add(events.POWER_RESTORE, "power on")
    return log


def _check(flash: CutFlash, done: list[tuple[int, int]], where: str) -> None:
    log = _boot(flash)
    assert events.LOG_LOST not in [e[1] for e in log.ring], where
    for k in range(7):
        got = [e[0] for e in log.compartments("entries", k)]
        assert got == sorted(set(got)), (where, k, got)
        want = [seq for seq, code in done if _category(code) == k]
        assert set(want) <= set(got), (where, k, want, got)
    for code in NEXT:  # each category's next event writes what its file missed
        log.add(code, "after")
    in_ring = {k: [e[0] for e in log.after(-1) if _category(e[1]) == k] for k in range(7)}
    log._clear()  # the files alone: what a DLMS reader gets once the ring has turned over
    for k in range(7):
        in_file = [e[0] for e in log.compartments("entries", k)]
        assert in_file[-len(in_ring[k]):] == in_ring[k], (where, k, in_file, in_ring[k])
        assert {seq for seq, code in done if _category(code) == k} <= set(in_file), (where, k)


def _points() -> list[int]:
    _, _, ops = _run(None)
    step = 1 if os.environ.get("METERKIT_SWEEPS") == "1" else 3
    return list(range(1, ops + 1, step))


def test_the_script_without_a_cut_keeps_every_event_in_its_log():
    flash, done, ops = _run(None)
    assert len(done) == len(SCRIPT) and ops > 50
    _check(flash, done, "no cut")


def test_a_cut_before_any_flash_operation_loses_no_event_whose_add_returned():
    points = _points()
    assert len(points) > 30
    for n in points:
        flash, done, _ = _run(n)
        _check(flash, done, f"cut before operation {n}")


def test_torn_writes_sampled():
    for n in _points()[::4]:
        for torn in (1, 7, 64):
            flash, done, _ = _run(n, torn)
            _check(flash, done, f"torn {torn} at operation {n}")
