# The two commands: `make demo` (set up, run the example pipelines on embedded SQLite) and
# `make test` (set up, start PostgreSQL if needed, run the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench console clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/headwater demo

test: $(STAMP)
	bash scripts/ensure-services.sh
	bash scripts/ensure-browser.sh
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check headwater flows tasks blocks console tests bench api
	$(BIN)/mypy
	$(BIN)/lint-imports

console: $(STAMP)
	$(BIN)/headwater console

bench: $(STAMP)
	$(BIN)/python bench/etl.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
