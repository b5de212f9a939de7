# Everything runs from a project-local virtualenv (.venv), created on first use. Each extra is
# installed again only when pyproject.toml changes (a stamp file inside .venv records it).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
BENCH_ARGS ?=
DEMO_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help test lint typecheck unit unit-fast demo bench clean
.PRECIOUS: $(VENV)/.installed-%

help:
	@echo "make demo       run the demo app, monitored, at http://127.0.0.1:8000 (/metrics live)"
	@echo "make test       lint, typecheck and the whole test suite (fails if any fails)"
	@echo "make lint       ruff check and ruff format --check"
	@echo "make typecheck  mypy (strict on src/)"
	@echo "make unit       pytest (PYTEST_ARGS='-k name' to select)"
	@echo "make unit-fast  the unit tests without the slow ones (real servers, subprocesses): ~1 min"
	@echo "make bench      benchmarks/run.py (BENCH_ARGS='...' to pass options)"
	@echo "make clean      remove caches and build output (keeps .venv)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$*]'
	@touch $@

# Runs the three checks even when one fails, then fails if any did.
test: $(VENV)/.installed-dev
	@failed=""; \
	$(MAKE) --no-print-directory lint || failed="$$failed lint"; \
	$(MAKE) --no-print-directory typecheck || failed="$$failed typecheck"; \
	$(MAKE) --no-print-directory unit || failed="$$failed unit"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: lint, typecheck and unit passed"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest $(PYTEST_ARGS)

# The tests marked slow (real servers, subprocesses, Prometheus, Chromium, gunicorn) left out.
unit-fast: $(VENV)/.installed-dev
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

demo: $(VENV)/.installed-demo
	$(BIN)/python examples/demo_app.py $(DEMO_ARGS)

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
