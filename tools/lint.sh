#!/usr/bin/env bash
# `make lint`: ruff (check + format --check) on all our Python, pylint-odoo on the addons.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

targets=()
for p in lib workers addons tools tests conftest.py; do
    [ -e "$p" ] && targets+=("$p")
done
rc=0
echo "+ ruff check ${targets[*]}"
"$BIN/ruff" check "${targets[@]}" || rc=1
echo "+ ruff format --check ${targets[*]}"
"$BIN/ruff" format --check "${targets[@]}" || rc=1

addons=()
for manifest in addons/*/__manifest__.py; do
    [ -f "$manifest" ] && addons+=("$(dirname "$manifest")")
done
if [ ${#addons[@]} -gt 0 ]; then
    echo "+ pylint --rcfile=.pylintrc ${addons[*]}"
    "$BIN/python" -m pylint --rcfile=.pylintrc --disable=missing-readme "${addons[@]}" || rc=1
else
    echo "lint: no addon in addons/ yet, pylint-odoo skipped"
fi
exit "$rc"
