# Two commands set up everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: setup demo test test-suites lint test-embedded test-service bench docs clean stop

# A virtualenv with the exact pinned versions (requirements.lock, from pyproject.toml),
# installed by uv (pinned here): the same packages as pip would install, in about 13 s where
# pip took 30 s of CPU -- time every fresh clone, CI's included, spends before its first test.
# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (CI, most containers) Python would
# otherwise compile dbt from source in every process: `dbt --version` took 2.6 s, 1.5 s with it.
# Then the project itself, editable and without dependencies (they are the lock's): its
# console script .venv/bin/sprint59 (pyproject.toml) runs from any directory, and
# `.venv/bin/python -m validation` too; the package stays this checkout's validation/, so the
# command finds the dbt project beside it.  Building it needs setuptools, which uv fetches
# from PyPI like the lock's packages (install time only).
UV_VERSION := 0.13.9
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -e .
	touch $@

# The dbt profile reads every setting from PG* variables; it holds no secret.
profiles.yml: profiles.example.yml
	cp -n profiles.example.yml profiles.yml || true
	touch profiles.yml

setup: $(VENV)/.installed profiles.yml

## demo: embedded PostgreSQL (unless PG* point elsewhere), sample data, dbt build, validation.
demo: setup
	$(BIN)/python -m validation demo

## test: the quality gates and the whole suite on embedded PostgreSQL 18 and on the 15 service,
## all three side by side (lines prefixed [lint], [pg18], [pg15]); fails when any of them fails.
test: setup test-suites

## test-suites: the two suites and the quality gates at once (each suite is mostly dbt's
## single-threaded Python, so two cores take both, and the gates fill the gaps); each suite
## writes JUnit XML for CI under reports/ (junit-pg18.xml, junit-pg15.xml).
PYTEST ?= $(BIN)/pytest
REPORTS ?= reports
GATES ?= $(MAKE) --no-print-directory lint
test-suites:
	@mkdir -p $(REPORTS); set -o pipefail; \
	  ( $(GATES) 2>&1 | sed -u 's/^/[lint] /' ) & gates=$$!; \
	  ( $(PYTEST) --pg embedded --junitxml=$(REPORTS)/junit-pg18.xml 2>&1 | sed -u 's/^/[pg18] /' ) & embedded=$$!; \
	  ( $(PYTEST) --pg service -m db --junitxml=$(REPORTS)/junit-pg15.xml 2>&1 | sed -u 's/^/[pg15] /' ) & service=$$!; \
	  wait $$gates; gates_exit=$$?; \
	  wait $$embedded; embedded_exit=$$?; wait $$service; service_exit=$$?; \
	  echo "make test: quality gates exit $$gates_exit," \
	    "embedded PostgreSQL 18 suite exit $$embedded_exit," \
	    "PostgreSQL 15 service suite exit $$service_exit" \
	    "(JUnit XML: $(REPORTS)/junit-pg18.xml, $(REPORTS)/junit-pg15.xml)"; \
	  [ $$gates_exit -eq 0 ] && [ $$embedded_exit -eq 0 ] && [ $$service_exit -eq 0 ]

## lint: ruff, dbt parse --warn-error, sqlfluff (dbt templater).  dbt's files go to target/lint/,
## so the commands that read target/ never see a half-written manifest while `make test` lints.
LINT_TARGET := $(CURDIR)/target/lint
lint: setup
	$(BIN)/ruff check validation tests
	$(BIN)/ruff format --check validation tests
	DBT_TARGET_PATH=$(LINT_TARGET) $(BIN)/dbt parse --warn-error --quiet
	DBT_TARGET_PATH=$(LINT_TARGET) $(BIN)/sqlfluff lint models tests/dbt analyses macros \
	  --disable-progress-bar --nocolor

test-embedded: setup
	$(PYTEST) --pg embedded --junitxml=$(REPORTS)/junit-pg18.xml

test-service: setup
	$(PYTEST) --pg service -m db --junitxml=$(REPORTS)/junit-pg15.xml

## bench: build cost and query latency at scales 1, 10, 100, and the history (about 17 minutes), then four
## environments in one call against four calls (about 3 minutes); writes docs/
bench: setup
	$(BIN)/python -m validation bench
	$(BIN)/python -m validation bench-environments

## docs: generate the dbt docs (models, columns, lineage) and serve them on http://localhost:8080
docs: setup
	@if [ -z "$$PGHOST$$PGPORT$$PGDATABASE" ]; then eval "$$($(BIN)/python -m validation db env)"; fi; \
	  $(BIN)/dbt docs generate && $(BIN)/dbt docs serve --port 8080 --no-browser

stop: setup
	$(BIN)/python -m validation db stop

clean:
	rm -rf target logs reports .pytest_cache .ruff_cache
