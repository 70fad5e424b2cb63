#!/usr/bin/env bash
# The release as users get it: build the sdist and the wheel, check their metadata
# with twine, check what the wheel ships, then install the wheel in a clean
# virtualenv exactly as docs/tutorial.md says and run the whole tutorial with it
# (tests/e2e/test_tutorial_e2e.py with ASYNC_REPORTS_TUTORIAL_WHEEL), against the
# real PostgreSQL, RabbitMQ and Redis. Usage: scripts/check_release.sh [DIST_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
DIST=${1:-$(mktemp -d)}
mkdir -p "$DIST"
rm -f "$DIST"/django_async_reporting-*

"$PY" -m pip install --quiet -e ".[release,test]"
# The wheel is built from the sdist, as PyPI users' pip would build it.
"$PY" -m build --outdir "$DIST" .
"$PY" -m twine check --strict "$DIST"/*
"$PY" scripts/check_wheel.py "$DIST"

WHEEL=$(ls "$DIST"/django_async_reporting-*.whl)
echo "release: running the tutorial with $WHEEL installed in a clean virtualenv"
ASYNC_REPORTS_TUTORIAL_WHEEL="$WHEEL" "$PY" -m pytest tests/e2e/test_tutorial_e2e.py
echo "release: $DIST is ready to publish"
