#!/bin/sh
# The install steps of the Harmony image, in one place: the Dockerfile runs this script,
# and tests/test_deployment_files.py runs it too, in a clean venv, so the image's steps
# are exercised on machines without a Docker engine.
#
#   docker/install.sh VENV WHEEL [PIP ARGUMENTS...]
#
# Makes a venv at VENV and installs the project WHEEL (or a source folder) into it with
# its dependencies from the package index, never the dev extras. Nothing else is built:
# the compiled web assets are inside the wheel (harmony_matrix/_data/web), and the
# translations are compiled from the .po files in memory when first used (i18n.py), so
# there are no .mo files to make.
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 VENV WHEEL [PIP ARGUMENTS...]" >&2
    exit 2
fi
venv=$1
wheel=$2
shift 2

PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv "$venv"
# Extra arguments go to pip: the Dockerfile adds --no-cache-dir (an image layer has no
# use for pip's downloads); the test leaves pip's cache on.
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet "$@" "$wheel"
# The entry point answers, or the install failed.
"$venv/bin/harmony" --version
