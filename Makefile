# failover: `make run` starts the service on its embedded defaults; `make test` runs everything CI runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MYPY_CORE := failover/domain failover/clock.py failover/errors.py failover/privacy.py failover/anchors.py \
	failover/services failover/runtime.py failover/celery_app.py failover/tasks.py failover/engine/detection

.PHONY: run test lint bench lock audit clean

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

# Three pytest processes (a file stays in one; each process starts its own PostgreSQL, Redis and fakes), then
# the fault suite alone, whose timings should not share two cores with the rest.
test: lint
	$(BIN)/pytest -n 3 --dist loadfile -m "not faults"
	$(BIN)/pytest -m faults

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e ".[dev,bench]"
	@touch $@ $(VENV)/.dev-installed $(VENV)/.run-installed

# Not part of `make test`: under 20 minutes on 2 cores with the install (benchmarks.run keeps a 15-minute budget,
# the people benchmark about 60 s); writes benchmarks/results/ (BENCH_ARGS=--quick: a few minutes).
bench: $(VENV)/.bench-installed
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.people $(BENCH_ARGS)

# requirements.lock: every runtime dependency pinned with hashes (SECURITY.md, "Dependencies").
lock: $(VENV)/.dev-installed
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

# Not part of `make test`: needs a vulnerability database (OSV), which CI here cannot reach. Run before a release.
audit: $(VENV)/.dev-installed
	$(BIN)/pip-audit --require-hashes --disable-pip -r requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
