from __future__ import annotations

import os
import signal

import pytest
from hypothesis import settings

from host_tests.emu import Emulator

# Property tests draw the same examples on every run of the suite (a gate that turns red on a newly drawn example
# blocks whatever change happens to run then); `make explore` draws new ones (METERKIT_HYPOTHESIS=explore) to search.
settings.register_profile("suite", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("METERKIT_HYPOTHESIS", "suite"))

# A suite started in the background of a non-interactive shell (`make test > log &`, nohup) inherits SIGINT
# ignored, and Python keeps an ignored SIGINT ignored in every process it starts: each `ota` a test stops with
# Ctrl-C (a `--watch`, a push the field engineer gives up on) then ran on until killed, and those tests failed on
# that host only. The tests' Ctrl-C is the user's, at a terminal: this process takes SIGINT again (a handler is
# reset to the default action in the programs it starts).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The emulated meters' compiled firmware (meterkit/mpy.py Cache) goes to a folder of this run's own, shared by its
# workers (set before they start, so they inherit it), not to the user's cache: a run starts cold, as CI does.
_RUN_CACHE: list[str] = []


def pytest_configure(config):
    if not hasattr(config, "workerinput") and "METERKIT_MPY_CACHE" not in os.environ:
        import tempfile

        _RUN_CACHE.append(tempfile.mkdtemp(prefix="meterkit-mpy-"))
        os.environ["METERKIT_MPY_CACHE"] = _RUN_CACHE[0]


def pytest_unconfigure(config):
    if _RUN_CACHE:
        import shutil

        shutil.rmtree(_RUN_CACHE.pop(), ignore_errors=True)
        os.environ.pop("METERKIT_MPY_CACHE", None)


BOARDS = ["esp32_devkitc", "rpi_pico"]
SWEEPS = os.environ.get("METERKIT_SWEEPS") == "1"  # `make sweeps`: the cases the default run samples out

# The files that take longest (`pytest --durations`, 2026-12-06: e2e/test_update.py alone ~550 s of one worker),
# handed to the workers first: with `--dist loadfile` a file runs whole on one worker, and a long one started last
# kept the run going for minutes on one worker after the others had finished. Only the order changes.
LONGEST_FIRST = ("e2e/test_update.py", "e2e/test_metering.py", "e2e/test_console_attack.py",
                 "unit/test_power_cut_sweep.py", "emulator/test_push_over_nbiot_e2e.py", "docs/test_doc_commands.py",
                 "e2e/test_upload.py", "e2e/test_locked.py", "e2e/test_record_replay.py",
                 "emulator/test_modem_driver_e2e.py", "emulator/test_modem_link_e2e.py", "e2e/test_dlms_optical.py",
                 "e2e/test_supply.py", "fuzz/test_targets.py", "fuzz/test_attack.py", "e2e/test_deterministic_time.py")


def sweep_only(why: str) -> tuple[pytest.MarkDecorator, pytest.MarkDecorator]:
    """The marks of a case (pytest.param(..., marks=)) the default run leaves to `make sweeps` (METERKIT_SWEEPS=1
    pytest -m sweep): `why` says what it costs."""
    return pytest.mark.sweep, pytest.mark.skipif(not SWEEPS, reason=f"{why}: in `make sweeps`")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}

    def key(item) -> int:
        path = item.path.as_posix()
        return next((r for name, r in rank.items() if path.endswith("host_tests/" + name)), len(rank))

    items.sort(key=key)  # stable: within a file, and among the rest, the collection's order
CONSOLE_TAIL = 4000  # characters of each emulated meter's console transcript shown with a failed test


@pytest.fixture
def start_emulator(request, tmp_path):
    """Start meter-emu for a board in a fresh state folder; every emulator started is stopped at teardown. A failed
    test shows the end of each meter's console transcript (STATE/console.log): a traceback or a prompt there says why
    the meter stopped answering, which a timeout on the host side cannot."""
    started: list[Emulator] = []
    request.node.meterkit_emulators = started

    def start(board: str = "esp32_devkitc", speed: str = "1", state_name: str = "meter", **kw) -> Emulator:
        emu = Emulator(tmp_path / state_name, board=board, speed=speed, **kw)
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when == "call":
        for emu in getattr(item, "meterkit_emulators", ()):
            log = emu.state / "console.log"
            try:
                text = log.read_text(errors="replace")
            except OSError as e:
                text = f"(no console transcript: {e})"
            report.sections.append((f"meter console {emu.state.name} ({emu.board}), last {CONSOLE_TAIL} characters",
                                    text[-CONSOLE_TAIL:]))
    return report
