# Two commands for a newcomer: `make run` and `make test`. Everything else builds on them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test test-topology faults lint bench check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Development mode unless a real Twilio auth token is configured.
run: $(STAMP)
	@if [ -z "$$TWILIO_AUTH_TOKEN" ]; then export IVR_DEV=1; fi; \
	exec $(BIN)/ivr serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Sentinel and Cluster redis-servers started on loopback; not part of `make test`.
test-topology: $(STAMP)
	$(BIN)/python -m pytest -m topology -q $(PYTEST_ARGS)

# Fault scenarios against the real server under load; figures in var/faults.txt.
faults: $(STAMP)
	$(BIN)/python -m pytest -m faults -q $(PYTEST_ARGS)
	FUZZ_REQUESTS=10000 $(BIN)/python -m pytest -q tests/voice/test_hostile.py

lint: $(STAMP)
	$(BIN)/ruff check ivr routing tests bench
	$(BIN)/ruff format --check ivr routing tests bench
	$(BIN)/mypy

check: $(STAMP)
	$(BIN)/ivr check

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
