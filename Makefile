# Quick start: `make demo` (set up and run the demo) and `make test` (set up and run the whole test suite).
# The newest Python the kit supports (pyproject: 3.11-3.13) that this machine has: pyenv's builds first (pyenv's
# shims refuse a version that is not selected), else python3. `make test` on CI thus runs on 3.13; the oldest, 3.11,
# is held by ruff's and mypy's target version (host_tests/unit/test_typecheck.py).
PYTHON ?= $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.1[123].*/bin/python3))),python3)
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV ?= .venv
PY := $(VENV)/bin/python
STUBS := .cache/stubs

.PHONY: setup demo test stubs bench bench-demo bench-supply bench-udp bench-fuzz bench-dlms sweeps explore lint clean

$(VENV)/.installed-$(PYVER): pyproject.toml
	@echo "setting up $(VENV) with $(PYTHON) (Python $(PYVER))"
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed-$(PYVER)

stubs: $(STUBS)/esp32/.installed $(STUBS)/rp2/.installed

$(STUBS)/%/.installed:
	$(PY) -m pip install --quiet --no-deps --target $(STUBS)/$* 'micropython-$*-stubs==1.29.*' 'micropython-stdlib-stubs==1.29.*'
	touch $@

demo: setup
	$(PY) -m emulator.demo

test: setup stubs
	$(PY) -m pytest -n 3 --dist loadfile

bench: setup
	$(PY) -m host_tests.bench.run
	$(PY) -m host_tests.bench.image_verify
	$(PY) -m host_tests.bench.ota_push
	$(PY) -m host_tests.bench.metering
	$(PY) -m host_tests.bench.clock

# The README demo 10 times beside one CPU hog: how reliably it runs on a busy host (about 15 min)
bench-demo: setup
	$(PY) -m host_tests.bench.demo_runs --runs 10 --hogs 1

# The prepaid month on both BL0942 boards and five hours on both ADC boards (about 1.5 h on 2 cores), then what
# a flood of refused commands costs the flash (1 min) and what IS 15959's event logs cost it over 15 years (10 s)
bench-supply: setup
	$(PY) -m host_tests.bench.supply
	$(PY) -m host_tests.bench.refusal_flood
	$(PY) -m host_tests.bench.event_log_wear
	$(PY) -m host_tests.bench.event_log_wear --board rpi_pico
	$(PY) -m host_tests.bench.load_profile_wear
	$(PY) -m host_tests.bench.load_profile_wear --board rpi_pico

# The DLMS server: what a session holds of the heap (optical and through the wrapper), and a day of block load profile
# read by the meter reader over HDLC (bytes, frames and line time at 9600 baud) and through the UDP wrapper over the
# emulator's link model on nb2-good, nb1-good and nb1-edge (virtual time against the link's minimum) (about a minute)
bench-dlms: setup
	$(PY) -m host_tests.bench.dlms_ram
	$(PY) -m host_tests.bench.dlms_day_read
	$(PY) -m host_tests.bench.dlms_wrapper_read --seeds 7
	$(PY) -m host_tests.bench.dlms_wrapper_heap --board esp32_devkitc
	$(PY) -m host_tests.bench.dlms_wrapper_heap --board rpi_pico

# Pushes over SMP over UDP into an emulated meter's NB-IoT module at --speed 1, through nb2-good, nb1-good and nb1-edge,
# with ota and with smpmgr (about 1.5 h on 2 cores: nb1-edge's 2 kbit/s alone takes most of it)
bench-udp: setup
	$(PY) -m host_tests.bench.udp_push

# A recorded meter-fuzz campaign: 5 min of coverage-guided fuzzing per target, the VM's mutation loop, coverage
# (docs/security-testing.md; about 1.5 h for every target)
bench-fuzz: setup
	$(PY) -m host_tests.bench.fuzz_campaign --time 300 --vm-runs 100000 --json fuzz-bench/campaign.json

# Exhaustive reports (about 55 min on 2 cores): every power-cut point on CPython over littlefs (an update; the event
# logs' 236), every 3rd in the VM,
# a Ctrl-C at 200 moments of the boot of a locked meter per board and mode file, and 40 Ctrl-Cs into a running
# development app per board (the VM must never die of one); then the tests the default run samples out (-m sweep:
# nb1-edge's push, the ADC board's record/replay, the Pico's garbage mode file, a third VM power-cut point)
sweeps: setup
	$(PY) -m host_tests.bench.power_cut_sweep
	METERKIT_SWEEPS=1 $(PY) -m pytest -q host_tests/unit/test_event_logs_power_cut.py
	$(PY) -m host_tests.bench.power_cut_vm --stride 3
	$(PY) -m host_tests.bench.console_attack
	$(PY) -m host_tests.bench.break_in
	METERKIT_SWEEPS=1 $(PY) -m pytest -q -n 3 -m sweep host_tests

# The property tests (hypothesis) with new random examples each run, where the suite draws the same ones every time:
# a search, not a gate (about 5 min; run it a few times, report what it finds as a defect)
explore: setup
	METERKIT_HYPOTHESIS=explore $(PY) -m pytest -q -n 3 host_tests/unit host_tests/emulator/test_link_props.py

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .hypothesis
