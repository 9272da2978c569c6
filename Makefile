# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
STAMP_RUN := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { echo "error: could not create a virtualenv; install python3-venv (Debian/Ubuntu) and retry" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m workbench.launcher $(BIN)/workbench
	$(BIN)/python -m compileall -q src/workbench >/dev/null
	touch $@

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m workbench.launcher $(BIN)/workbench
	$(BIN)/python -m compileall -q src/workbench >/dev/null
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)

## Install and open workbench on the offline demo (a fake model server, a scripted CLI, five sessions).
demo: $(STAMP_RUN)
	$(BIN)/workbench demo

## Install everything and run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -n 4 --dist loadgroup --durations=25 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy --strict src/workbench/protocol src/workbench/core
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
