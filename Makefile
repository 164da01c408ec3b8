# atlantis: `make demo` runs the offline demo, `make test` the tests; both build .venv/ first if missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Real data and model files, when the ../shared folder sits beside the checkout (override freely).
SHARED_DIR ?= $(abspath ../shared)
ifneq ($(wildcard $(SHARED_DIR)/data),)
export ATLANTIS_DATA_DIR ?= $(SHARED_DIR)/data
export ATLANTIS_MODELS_DIR ?= $(SHARED_DIR)/models
endif
export PYTHONUNBUFFERED := 1

.PHONY: help install demo test test-full lint format inspect report bench clean

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch first and pinned: an unpinned torch would pull the CUDA build.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv/ with torch 2.13.0, the framework and dev tools

demo: $(STAMP)  ## the offline demo: synthetic data, tiny pair, CPU, a few minutes
	$(PY) run.py experiment=demo

test: $(STAMP)  ## the default test run (tests needing ../shared skip without it)
	$(PY) -m pytest -m "not slow" -q

test-full: $(STAMP)  ## every test, slow ones included
	$(PY) -m pytest -q

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

inspect: $(STAMP)  ## print a few examples token by token with roles (ARGS="model=tiny model.kind=causal")
	$(PY) -m atlantis.data.inspect_cli $(ARGS)

clean:  ## remove outputs and caches (keeps .venv/)
	rm -rf outputs .cache .pytest_cache .ruff_cache
