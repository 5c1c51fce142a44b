# failover: `make run` starts the service on its embedded defaults; `make test` runs everything CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MYPY_CORE := failover/domain failover/clock.py failover/errors.py failover/privacy.py

.PHONY: run test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/failover up

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check failover tests benchmarks
	$(BIN)/ruff format --check failover tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy --strict $(MYPY_CORE)

test: lint
	$(BIN)/pytest

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e ".[dev,bench]"
	@touch $@ $(VENV)/.dev-installed $(VENV)/.run-installed

# Not part of `make test`: 10-15 minutes on 2 cores; writes benchmarks/results/ (BENCH_ARGS=--quick: about a minute).
bench: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
