# quicksol event bus: local stack, tests and checks. Everything runs on 127.0.0.1 with its
# data under .run/ (ports: docs/architecture.md). `make help` lists the targets.

PYTHON ?= python3
VPY := .venv/bin/python
DEVSTACK := $(VPY) tools/devstack
PY_SOURCES = $(wildcard lib workers addons tools tests conftest.py)

.PHONY: help install run stop test test-faults bench lint worker health compose-config clean

help:
	@echo "make run             PostgreSQL, RabbitMQ, Redis, Odoo (demo db), workers, beat, Flower; Ctrl-C stops"
	@echo "make test            fresh test database, every test (not benchmarks), services stopped after"
	@echo "make test-faults     the fault matrix only (tests/faults): faults injected, every event reconciled"
	@echo "make bench           benchmarks in tests/bench"
	@echo "make lint            ruff check, ruff format --check, pylint-odoo on addons"
	@echo "make worker QUEUE=q  one Celery worker for queue q in the foreground"
	@echo "make health          health of the running stack: broker, Redis, Odoo, every worker"
	@echo "make compose-config  validate compose/docker-compose.yml (and the TLS override)"
	@echo "make stop            stop everything devstack started"
	@echo "make install         system packages (Debian) and .venv only"
	@echo "make clean           stop, then remove .run (databases, broker data, logs)"

install:
	$(PYTHON) tools/devstack install

run: install
	$(DEVSTACK) run

stop:
	@if [ -x $(VPY) ]; then $(DEVSTACK) stop; else $(PYTHON) tools/devstack stop; fi

test:
	bash tools/test.sh

test-faults:
	bash tools/test.sh tests/faults

bench: install
	bash tools/bench.sh

lint: install
	bash tools/lint.sh

worker: install
	@test -n "$(QUEUE)" || { echo "usage: make worker QUEUE=<queue> (e.g. commission_events)"; exit 2; }
	$(DEVSTACK) worker $(QUEUE)

health:
	@$(DEVSTACK) health

compose-config: install
	@env_file=compose/.env; [ -f $$env_file ] || env_file=compose/.env.example; \
	docker-compose --env-file $$env_file -f compose/docker-compose.yml config -q && \
	docker-compose --env-file $$env_file -f compose/docker-compose.yml -f compose/docker-compose.tls.yml config -q && \
	echo "compose/docker-compose.yml (and docker-compose.tls.yml): valid with $$env_file"

clean: stop
	rm -rf .run
