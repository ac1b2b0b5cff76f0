# Two commands do all the set-up: `make run` (Advocado with demo data on SQLite) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: run test lint bench clean

$(BIN)/advocado: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## Run Advocado on SQLite (./advocado.db) with demo data; log-in details are printed.
run: $(BIN)/advocado
	$(BIN)/advocado demo
	$(BIN)/advocado serve --host $(HOST) --port $(PORT)

## Lint, then the whole suite on SQLite and again on PostgreSQL.
test: $(BIN)/advocado
	bash scripts/test.sh

lint: $(BIN)/advocado
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(BIN)/advocado
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) advocado.db advocado.db-wal advocado.db-shm
