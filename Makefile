# contactd — developer entry points. `make serve` and `make test` are the two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# the browser pages' only dependency (socket.io-client), fetched with npm at install time
WEB_STAMP := web_client/node_modules/.installed

.PHONY: serve test install system-deps system-deps-test lint format typecheck pytest bench check-config clean

$(STAMP): pyproject.toml
	@scripts/install-system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing contactd and its dev tools into $(VENV)"
	@$(BIN)/pip install --quiet --upgrade pip
	@$(BIN)/pip install --quiet --progress-bar off -e '.[dev]'
	@touch $(STAMP)

$(WEB_STAMP): web_client/package.json web_client/package-lock.json
	@scripts/install-system-deps.sh
	@echo "==> installing the web client's socket.io-client into web_client/node_modules"
	@npm ci --prefix web_client --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

install: $(STAMP) $(WEB_STAMP)

system-deps:
	@scripts/install-system-deps.sh

## Also Debian's chromium, for the real-browser tests in tests/browser.
system-deps-test:
	@scripts/install-system-deps.sh --test

## Set up and start the server with embedded defaults (SQLite + a private redis-server).
serve: install system-deps
	@$(BIN)/contactd seed-demo
	@$(BIN)/contactd serve

## The whole test suite: lint, format check, type check, tests.
test: install system-deps-test lint typecheck pytest

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache web_client/node_modules test-artifacts
