# Quick start: `make demo` (set up and run the demo) and `make test` (set up and run the whole test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STUBS := .cache/stubs

.PHONY: setup demo test stubs bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

stubs: $(STUBS)/esp32/.installed $(STUBS)/rp2/.installed

$(STUBS)/%/.installed:
	$(PY) -m pip install --quiet --no-deps --target $(STUBS)/$* 'micropython-$*-stubs==1.29.*' 'micropython-stdlib-stubs==1.29.*'
	touch $@

demo: setup
	$(PY) -m emulator.demo

test: setup stubs
	$(PY) -m pytest

bench: setup
	$(PY) -m host_tests.bench.run
	$(PY) -m host_tests.bench.image_verify

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .hypothesis
