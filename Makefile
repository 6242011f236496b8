# Two commands set up everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: setup demo test lint test-embedded test-service bench docs clean stop

# A virtualenv with the exact pinned versions (requirements.lock, from pyproject.toml).
$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

# The dbt profile reads every setting from PG* variables; it holds no secret.
profiles.yml: profiles.example.yml
	cp -n profiles.example.yml profiles.yml || true
	touch profiles.yml

setup: $(VENV)/.installed profiles.yml

## demo: embedded PostgreSQL (unless PG* point elsewhere), sample data, dbt build, validation.
demo: setup
	$(BIN)/python -m validation demo

## test: quality gates, then the whole suite on embedded PostgreSQL 18 and on the 15 service.
## The two suites run side by side (each is mostly dbt's single-threaded Python, so two cores
## take both), their lines prefixed; the target fails when either suite fails.
test: setup lint
	@set -o pipefail; \
	  ( $(BIN)/pytest --pg embedded 2>&1 | sed -u 's/^/[pg18] /' ) & embedded=$$!; \
	  ( $(BIN)/pytest --pg service -m db 2>&1 | sed -u 's/^/[pg15] /' ) & service=$$!; \
	  wait $$embedded; embedded_exit=$$?; wait $$service; service_exit=$$?; \
	  echo "make test: embedded PostgreSQL 18 suite exit $$embedded_exit," \
	    "PostgreSQL 15 service suite exit $$service_exit"; \
	  [ $$embedded_exit -eq 0 ] && [ $$service_exit -eq 0 ]

lint: setup
	$(BIN)/ruff check validation tests
	$(BIN)/ruff format --check validation tests
	$(BIN)/dbt parse --warn-error --quiet
	$(BIN)/sqlfluff lint models tests/dbt analyses --disable-progress-bar --nocolor

test-embedded: setup
	$(BIN)/pytest --pg embedded

test-service: setup
	$(BIN)/pytest --pg service -m db

## bench: build cost and query latency at scales 1, 10, 100 (about 12 minutes), then four
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
