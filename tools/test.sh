#!/usr/bin/env bash
# `make test`: install, start the services, prepare a fresh Odoo test database, run pytest
# once over lib workers addons tests (not tests/bench), always stop what was started.
# With arguments (`make test-faults`: tests/faults) pytest runs only those paths.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VPY=.venv/bin/python
STARTED=.run/test-services.started

"$PY" tools/devstack install

# shellcheck source=tools/stack_session.sh
source tools/stack_session.sh
export QSB_SERVICES_STARTED_BY=make-test

args=(-rs --ignore=tests/bench)
paths=("$@")
if [ ${#paths[@]} = 0 ]; then
    for d in lib workers tests; do
        [ -d "$d" ] && paths+=("$d")
    done
    [ "$QSB_ODOO_AVAILABLE" = 1 ] && ls addons/*/__manifest__.py >/dev/null 2>&1 && paths+=(addons)
fi
if [ "$QSB_ODOO_AVAILABLE" = 1 ]; then
    args+=(-p pytest_odoo --odoo-database "$QSB_TEST_DB" --odoo-config "$QSB_ODOO_CONF")
else
    echo "devstack: ODOO NOT AVAILABLE: addons/*/tests are not collected ($QSB_ODOO_UNAVAILABLE_REASON)"
fi

# pytest-odoo turns HOST/PORT/USER/PASSWORD (Odoo docker image variables) into db options:
# keep the shell's USER etc. out of it, the config file says how to reach PostgreSQL.
rc=0
env -u HOST -u PORT -u USER -u PASSWORD "$VPY" -m pytest "${args[@]}" "${paths[@]}" || rc=$?
if [ "$rc" = 5 ]; then
    echo "make test: pytest collected no test at all: treating as a failure" >&2
    rc=1
fi
exit "$rc"
