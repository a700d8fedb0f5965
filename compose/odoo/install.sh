#!/bin/sh
# Install steps of the Odoo image (compose/odoo/Dockerfile), also run by
# tests/deploy/test_images.py in a fresh virtualenv to prove they are enough.
#
#   install.sh SRC
#
# SRC is a copy of the repository (at least requirements.txt, lib/ and addons/). It installs
# the core package quicksol_bus (lib/) and its dependencies, pinned by requirements.txt, into
# the interpreter $PYTHON (default: python3, the one Odoo runs on), and copies the addons,
# without the test_* fixtures, into $ADDONS_DEST (default: /opt/quicksol/addons, which the
# Dockerfile puts on the image's addons path). Nothing else: what Odoo needs on top of its own
# packages is exactly this.
set -eu

SRC=${1:?usage: install.sh SRC (a copy of the repository)}
PYTHON=${PYTHON:-python3}
ADDONS_DEST=${ADDONS_DEST:-/opt/quicksol/addons}

# requirements.txt is used as constraints only: the versions are pinned, but only what
# lib/pyproject.toml declares (kombu, celery and theirs) is installed.
"$PYTHON" -m pip install --disable-pip-version-check \
    --constraint "$SRC/requirements.txt" "$SRC/lib"

mkdir -p "$ADDONS_DEST"
for addon in "$SRC"/addons/*/; do
    name=$(basename "$addon")
    case "$name" in
        test_*) continue ;;  # test fixtures are never deployed
    esac
    [ -f "$addon/__manifest__.py" ] || continue
    rm -rf "${ADDONS_DEST:?}/$name"
    cp -R "$addon" "$ADDONS_DEST/$name"
done
find "$ADDONS_DEST" -name __pycache__ -type d -prune -exec rm -rf {} +
