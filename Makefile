# The whole setup is two commands: `make run` and `make test` (README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
EVENTS_PORT ?= 8001
WEB_WORKERS ?= 2
# The demo desk (the Procfile's `demo` process, `simulate_desk`): DEMO=0 leaves it out; DEMO_RATE caps its requests
# a second.
DEMO ?= 1
DEMO_RATE ?= 4
# honcho starts every Procfile process unless given names: with DEMO=0, every name but `demo`.
PROCESSES = $(if $(filter 0,$(DEMO)),$(shell grep -oE '^[a-z]+' Procfile | grep -vx demo))

.PHONY: run test lint services stop bench venv env migrate format clean-var vendor

# `make run` names its settings: the entry points (nija/wsgi.py, asgi.py, celery.py) default to production.
# Debug stays off unless asked for: `DJANGO_DEBUG=1 make run`.
run migrate: export DJANGO_SETTINGS_MODULE := nija.settings.local

$(STAMP): requirements/base.txt requirements/production.txt requirements/local.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required ($(PYTHON))"; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/local.txt
	$(BIN)/pip check
	@touch $(STAMP)

venv: $(STAMP)

env: venv
	@$(BIN)/python scripts/ensure_env.py

services:
	@scripts/services.sh start postgres redis

stop:
	@scripts/services.sh stop

migrate: env services
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py sync_schedule
	@$(BIN)/python manage.py ensure_operator --url http://127.0.0.1:$(PORT)/admin/
	@[ -f var/demo-tokens.json ] || $(BIN)/python manage.py seed_demo --accounts 20 --positions 400 --tokens-out var/demo-tokens.json
	@echo "Demo bot and operator tokens: var/demo-tokens.json"
	@[ "$(DEMO)" = 0 ] && echo "Demo desk off (DEMO=0)" || echo "Demo desk on: simulate_desk drives the demo accounts at $(DEMO_RATE) req/s (DEMO=0 turns it off)"
	@echo "API http://127.0.0.1:$(PORT)/api/health   SSE http://127.0.0.1:$(EVENTS_PORT)   Ctrl-C stops everything"
	@# Prometheus multiprocess files: emptied before any process starts (every process of the run writes there).
	@rm -rf var/prometheus && mkdir -p var/prometheus
	PATH="$(CURDIR)/$(BIN):$$PATH" WEB_PORT=$(PORT) EVENTS_PORT=$(EVENTS_PORT) WEB_WORKERS=$(WEB_WORKERS) \
		DEMO_RATE=$(DEMO_RATE) PROMETHEUS_MULTIPROC_DIR="$(CURDIR)/var/prometheus" \
		$(BIN)/honcho start -f Procfile $(PROCESSES)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_SETTINGS_MODULE=nija.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

test: env
	@scripts/services.sh start postgres test-redis browser cli-tools
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: env
	@scripts/services.sh start postgres test-redis
	$(BIN)/pytest tests/bench -p no:randomly -s -q -o addopts="" $(PYTEST_ARGS)

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The operator page's browser libraries, pinned in package.json / package-lock.json, copied from the npm registry's
# packages into the page's static files. The copies are committed: running the project needs no npm (THIRD_PARTY.md).
VENDOR := monitoring/static/monitoring/vendor
vendor:
	npm ci --ignore-scripts --no-audit --no-fund
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/uplot
	cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE \
		$(VENDOR)/uplot/
