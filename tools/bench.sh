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
mkdir -p .run
: > "$STARTED"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    "$VPY" tools/devstack stop odoo-e2e >/dev/null 2>&1 || true
    "$VPY" tools/devstack stop --from "$STARTED" || rc=1
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$VPY" tools/devstack start --record "$STARTED"
"$VPY" tools/devstack test-prepare
# shellcheck disable=SC1091
source .run/test.env
env -u HOST -u PORT -u USER -u PASSWORD "${cmd[@]}"
