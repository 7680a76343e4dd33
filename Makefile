# The two commands: `make demo` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_HOME ?= .demo-exchange
# Where `make demo` serves: make demo HOST=0.0.0.0 PORT=8200
HOST ?= 127.0.0.1
PORT ?= 8000

# The official Delta Sharing client, in its own environment: it pins pandas < 3 and
# pyarrow <= 23, which the project's does not hold; tests run it as a consumer would.
CLIENTS := .venv-clients
DELTA_SHARING ?= delta-sharing==1.4.2

.PHONY: install clients demo test test-fast check system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## install: the virtual environment at .venv (the CLI is .venv/bin/entrepot)
install: $(STAMP)

$(CLIENTS)/.installed:
	$(PYTHON) -m venv $(CLIENTS)
	$(CLIENTS)/bin/python -m pip install --quiet '$(DELTA_SHARING)'
	touch $@

## clients: the official Delta Sharing client the release tests read with (.venv-clients)
clients: $(CLIENTS)/.installed

## demo: build the seeded demo exchange, run the scenario, then serve it on HOST:PORT
demo: install
	$(BIN)/entrepot demo --home $(DEMO_HOME) --fresh --host $(HOST) --port $(PORT)

## system-deps: Debian packages the tests need (libsodium, PostgreSQL, Java, Chromium)
system-deps:
	bash tools/system-deps.sh

## check: ruff (lint + format) and mypy
check: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

## test: everything the tests need, then the whole suite (slow tests included)
test: install clients system-deps check
	$(BIN)/python -m pytest -n 2 -m '' -p no:cacheprovider

## test-fast: the suite without tests marked slow
test-fast: install clients
	$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) $(CLIENTS) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
