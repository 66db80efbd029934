"""The fuzz tests run probes in the pytest process; a probe that builds a meter attaches module state (the loader
journal's event sink) that must not reach the next test file in this worker (the power-cut sweep counted its
writes as the update's)."""

import pytest


@pytest.fixture(autouse=True)
def _no_probe_state_left():
    yield
    from meter_fuzz import paths

    paths.firmware_on_path()
    import _appwire  # noqa: PLC0415  (on the path once the firmware is)
    import fuzzcore  # noqa: PLC0415

    _appwire.fresh_ram()
    fuzzcore.release_kept()  # the firmware's own tests in this worker forget what a probe kept
