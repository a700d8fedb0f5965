#!/bin/sh
# Install steps of the workers image (compose/workers/Dockerfile), also run by
# tests/deploy/test_images.py in a fresh virtualenv to prove they are enough.
#
#   install.sh SRC
#
# SRC is a copy of the repository (at least requirements.txt, lib/ and workers/). It installs
# the core package (lib/) and the workers (workers/) with the dependencies they declare,
# pinned by requirements.txt, into the interpreter $PYTHON (default: python3).
set -eu

SRC=${1:?usage: install.sh SRC (a copy of the repository)}
PYTHON=${PYTHON:-python3}

# requirements.txt is used as constraints only: pinned versions, but nothing the two
# packages do not declare.
"$PYTHON" -m pip install --disable-pip-version-check \
    --constraint "$SRC/requirements.txt" "$SRC/lib" "$SRC/workers"
