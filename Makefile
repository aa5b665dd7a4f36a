# contactd — developer entry points. `make serve` and `make test` are the two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: serve test install system-deps lint format typecheck pytest bench check-config clean

$(STAMP): pyproject.toml
	@scripts/install-system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing contactd and its dev tools into $(VENV)"
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet --progress-bar off -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

system-deps:
	@scripts/install-system-deps.sh

## Set up and start the server with embedded defaults (SQLite + a private redis-server).
serve: install system-deps
	@$(BIN)/contactd seed-demo
	@$(BIN)/contactd serve

## The whole test suite: lint, format check, type check, tests.
test: install system-deps lint typecheck pytest

lint:
	@echo "==> ruff check / ruff format --check"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

format:
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

typecheck:
	@echo "==> mypy (strict on contactd/)"
	@$(BIN)/mypy contactd

pytest:
	@echo "==> pytest"
	@$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: install system-deps
	@$(BIN)/python scripts/bench_dispatch.py

check-config: install
	@$(BIN)/contactd check-config

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
