#!/usr/bin/env bash
# `make bench`: runs the benchmarks in tests/bench (tests/bench/run.py, else pytest -s on it)
# with the services started (and stopped after) like `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python

if [ -f tests/bench/run.py ]; then
    cmd=("$VPY" tests/bench/run.py)
elif compgen -G "tests/bench/*.py" >/dev/null || compgen -G "tests/bench/**/*.py" >/dev/null; then
    cmd=("$VPY" -m pytest tests/bench -s -p no:cacheprovider)
else
    echo "make bench: no benchmark yet (tests/bench is empty or missing): nothing to run"
    exit 0
fi

# OCA peers of the benchmarks (auditlog, queue_job): pinned, without their `odoo` dependency.
"$VPY" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-bench.txt

STARTED=.run/bench-services.started
# shellcheck source=tools/stack_session.sh
source tools/stack_session.sh
env -u HOST -u PORT -u USER -u PASSWORD "${cmd[@]}"
