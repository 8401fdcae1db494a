# workflow_api — every command a person (or CI) runs. `make help` lists them.
SHELL := /bin/bash
PYTHON_BIN ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Test defaults: the local PostgreSQL and RabbitMQ (override with env vars).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/workflow_api
TEST_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//
PYTEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install browser run test check lint typecheck migrate seed web worker beat relay bench bench-intake bench-api clean

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36mmake %-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON_BIN) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned requirements

migrate: $(STAMP) ## Apply database migrations (DATABASE_URL, default SQLite under var/)
	$(MANAGE) migrate --noinput

seed: migrate ## Demo data: tenant, admin user, roles and members (idempotent)
	$(MANAGE) seed_demo --base-url http://$(HOST):$(PORT)

run: seed ## Set up and run the service on SQLite with in-process Celery
	$(MANAGE) runserver $(HOST):$(PORT)

browser: ## Debian's Chromium + chromedriver for the browser test (apt-get, as root, if missing)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; \
	else \
		echo "The browser test needs Chromium: sudo apt-get install chromium chromium-driver (or run make browser as root)"; \
	fi

test: $(STAMP) browser ## Run the whole test suite (PostgreSQL + RabbitMQ by default)
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" \
	CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)}" \
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy
	$(VENV)/bin/mypy .

check: lint typecheck ## ruff, mypy, missing migrations, Django's checks
	$(MANAGE) makemigrations --check --dry-run
	$(MANAGE) check
	$(MANAGE) spectacular --validate --fail-on-warn --file /dev/null

web: migrate ## Serve the API and admin with gunicorn (JSON logs, workflow_api/gunicorn_conf.py)
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(VENV)/bin/gunicorn --config python:workflow_api.gunicorn_conf workflow_api.wsgi:application \
		--bind $(HOST):$(PORT) --workers $${WEB_CONCURRENCY:-2}

worker: $(STAMP) ## Celery worker consuming the contract's inbound queues
	$(VENV)/bin/celery -A workflow_api worker --loglevel=INFO --concurrency=$${WORKER_CONCURRENCY:-2}

beat: $(STAMP) ## Celery beat (schedules the outbox relay)
	$(VENV)/bin/celery -A workflow_api beat --loglevel=INFO --schedule=var/celerybeat-schedule

relay: $(STAMP) ## Publish the outbox continuously (alternative to the beat schedule)
	$(MANAGE) outbox_relay --forever

bench-intake: $(STAMP) ## Tickets/s from RabbitMQ to committed tasks, beside a plain psycopg loop
	$(PY) benchmarks/bench_intake.py $(BENCH_ARGS)

bench-api: $(STAMP) ## p50/p95 of the task list endpoints on 100k tasks, beside raw SQL
	$(PY) benchmarks/bench_api.py $(BENCH_ARGS)

bench: $(STAMP) ## Run every benchmark under benchmarks/
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var/*.sqlite3 var/static
