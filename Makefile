# Every target sets up what it needs: a fresh clone needs only `make gameday` or `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test lint typecheck pytest serve smoke gameday migrate clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the project with its dev tools

lint: setup ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup ## mypy (strict)
	$(BIN)/mypy

pytest: setup ## the test suite against real PostgreSQL and Redis
	$(BIN)/pytest

test: lint typecheck pytest ## everything CI runs

serve: setup ## the API on 127.0.0.1:8000 (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)
	$(BIN)/python scripts/serve.py

smoke: setup ## start the embedded stack, smoke-test it, stop
	$(BIN)/python scripts/serve.py --smoke --port 0

gameday: smoke ## the game day: stack + conformance + drills + report (drills arrive with the chaos harness)

migrate: setup ## python -m alembic upgrade head against DATABASE_URL
	$(BIN)/python -m alembic upgrade head

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
