# Sourced by tools/test.sh and tools/bench.sh: start the services (recording which ones this
# run started), prepare a fresh test database, load its environment, and stop exactly those
# services when the script exits, whatever the reason.
# Needs: VPY (the venv's python) and STARTED (the record file) set by the caller.

mkdir -p .run
: > "$STARTED"
stack_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    "$VPY" tools/devstack stop odoo-e2e >/dev/null 2>&1 || true
    "$VPY" tools/devstack stop --from "$STARTED" || rc=1
    exit "$rc"
}
trap stack_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$VPY" tools/devstack start --record "$STARTED"
"$VPY" tools/devstack test-prepare
# shellcheck disable=SC1091
source .run/test.env
