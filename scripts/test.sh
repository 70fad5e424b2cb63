#!/usr/bin/env bash
# Create the virtualenv if needed, install the package with its test extras and
# run the whole suite. The services (PostgreSQL, Redis, RabbitMQ on 127.0.0.1)
# must be running: the tests fail, never skip, without them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".[test,example]"
exec "$VENV/bin/python" -m pytest "$@"
