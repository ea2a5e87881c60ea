# Corral: `make run` serves the panel on embedded defaults; `make test` runs
# every check and test (PostgreSQL from DATABASE_URL, default the local server).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/corral

.PHONY: install run test lint format bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	bin/run-panel

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} CORRAL_FAST_PASSWORD_HASHER=1 \
		$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: install
	$(PY) bench/run.py
