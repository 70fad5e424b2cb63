#!/usr/bin/env bash
# Start the example project: a real Celery worker in the background and the
# Django development server in the foreground. Ctrl-C stops both.
#
# Needs only python3: by default the database is SQLite, the Celery broker is
# kombu's file-system transport and the cache is a file cache, all under
# example_project/var/. Safe to run again: nothing is installed, migrated or
# seeded twice.
#
# Environment variables:
#   PYTHON          interpreter that creates the virtualenv (default python3)
#   VENV            virtualenv, created if missing (default .venv at the repository root)
#   DEMO_ORDERS     orders to seed on the first run (default 5000; see seed_demo_data --reset)
#   DEMO_HOST       address runserver listens on (default 127.0.0.1; 0.0.0.0 for all)
#   DEMO_PORT       its port (default 8000)
#   DEMO_CONCURRENCY  worker processes (default 2)
#   EXAMPLE_VAR_DIR where the embedded state lives (default example_project/var)
#   DATABASE_URL, CELERY_BROKER_URL, REDIS_URL  use PostgreSQL, RabbitMQ and Redis
#                   instead (see example_project/config/settings.py), e.g.
#     DATABASE_URL=postgres://postgres@127.0.0.1:5432/reports_demo \
#     CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// \
#     REDIS_URL=redis://127.0.0.1:6379/0 make demo
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
DEMO_ORDERS=${DEMO_ORDERS:-5000}
DEMO_HOST=${DEMO_HOST:-127.0.0.1}
DEMO_PORT=${DEMO_PORT:-8000}
DEMO_CONCURRENCY=${DEMO_CONCURRENCY:-2}
EXAMPLE_VAR_DIR=${EXAMPLE_VAR_DIR:-$ROOT/example_project/var}
case "$EXAMPLE_VAR_DIR" in /*) ;; *) EXAMPLE_VAR_DIR="$ROOT/$EXAMPLE_VAR_DIR" ;; esac
export EXAMPLE_VAR_DIR
export DJANGO_SETTINGS_MODULE=config.settings
export PYTHONUNBUFFERED=1

say() { printf '\n==> %s\n' "$*"; }
# True while process $1 runs (a zombie awaiting its parent's wait does not count).
alive() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

# -- 1. virtualenv and dependencies --------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "Creating the virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# Reinstall only when pyproject.toml changed (or the install is missing).
STAMP="$VENV/.django-async-reports-example"
WANT="$("$PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$ROOT/pyproject.toml") $ROOT"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ] \
  || ! (cd / && "$PY" -c 'import django_async_reports, celery, requests' 2>/dev/null); then
  say "Installing django-async-reporting with its [example] extra into $VENV"
  PIP_LOG="$VENV/demo-pip-install.log"
  if ! { "$PY" -m pip install --upgrade pip && "$PY" -m pip install -e "$ROOT[example]"; } \
    >"$PIP_LOG" 2>&1; then
    tail -n 40 "$PIP_LOG" >&2
    echo "pip install failed; the whole log is in $PIP_LOG" >&2
    exit 1
  fi
  echo "$WANT" >"$STAMP"
fi

# -- 2. refuse to start twice on one port ------------------------------------------
if ! "$PY" - "$DEMO_HOST" "$DEMO_PORT" <<'EOF'; then
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
    except OSError as exc:
        sys.exit(f"Port {port} on {host} is busy ({exc.strerror}): is the demo already "
                 "running? Stop it, or choose another port with DEMO_PORT=8001.")
EOF
  exit 1
fi

cd "$ROOT/example_project"
mkdir -p "$EXAMPLE_VAR_DIR"
WORKER_LOG="$EXAMPLE_VAR_DIR/worker.log"
WORKER_PIDFILE="$EXAMPLE_VAR_DIR/worker.pid"

# -- 3. database, demo data, demo user ---------------------------------------------
say "Migrating the database"
"$PY" manage.py migrate --noinput
say "Seeding demo data ($DEMO_ORDERS orders on a fresh database)"
"$PY" manage.py seed_demo_data --orders "$DEMO_ORDERS"
TOKEN="$("$PY" manage.py demo_token)"

# -- 4. the Celery worker ----------------------------------------------------------
# A worker left behind by a demo that was killed would compete for messages.
if [ -f "$WORKER_PIDFILE" ]; then
  OLD_PID="$(cat "$WORKER_PIDFILE")"
  if alive "$OLD_PID" && ps -p "$OLD_PID" -o args= | grep -q "celery"; then
    say "Stopping the worker of an earlier run (pid $OLD_PID)"
    kill -TERM "$OLD_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do alive "$OLD_PID" || break; sleep 0.5; done
    kill -KILL "$OLD_PID" 2>/dev/null || true
  fi
  rm -f "$WORKER_PIDFILE"
fi

WORKER_PID=""
stop_worker() {
  trap - EXIT INT TERM
  if [ -n "$WORKER_PID" ] && alive "$WORKER_PID"; then
    say "Stopping the Celery worker (pid $WORKER_PID)"
    kill -TERM "$WORKER_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do alive "$WORKER_PID" || break; sleep 0.5; done
    kill -KILL "$WORKER_PID" 2>/dev/null || true
    wait "$WORKER_PID" 2>/dev/null || true
  fi
  rm -f "$WORKER_PIDFILE"
}
trap stop_worker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "Starting the Celery worker (log: $WORKER_LOG)"
: >"$WORKER_LOG"
"$VENV/bin/celery" -A config worker -Q reports,reports_high_priority \
  -c "$DEMO_CONCURRENCY" --loglevel INFO >>"$WORKER_LOG" 2>&1 &
WORKER_PID=$!
echo "$WORKER_PID" >"$WORKER_PIDFILE"
for _ in $(seq 1 120); do
  grep -q " ready\." "$WORKER_LOG" && break
  if ! alive "$WORKER_PID"; then
    echo "The Celery worker exited during startup; the end of its log:" >&2
    tail -n 40 "$WORKER_LOG" >&2
    exit 1
  fi
  sleep 0.5
done
grep -q " ready\." "$WORKER_LOG" || { echo "The worker is not ready after 60s; see $WORKER_LOG" >&2; exit 1; }

# -- 5. how to use it --------------------------------------------------------------
# Show where the services are, without the passwords of their URLs.
hide_password() { printf '%s' "$1" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#'; }
DB_SHOWN="$(hide_password "${DATABASE_URL:-SQLite in $EXAMPLE_VAR_DIR}")"
BROKER_SHOWN="$(hide_password "${CELERY_BROKER_URL:-file system, $EXAMPLE_VAR_DIR/broker}")"
CACHE_SHOWN="$(hide_password "${REDIS_URL:-files in $EXAMPLE_VAR_DIR/cache}")"
URL_HOST="$DEMO_HOST"
[ "$URL_HOST" = "0.0.0.0" ] && URL_HOST=localhost
BASE="http://$URL_HOST:$DEMO_PORT"
cat <<EOF

==> django-async-reports demo
    Reports API     $BASE/api/v1/reports/  (browsable after logging in at $BASE/api-auth/login/)
    Admin           $BASE/admin/  (user demo, password demo)
    API token       $TOKEN
    Database        $DB_SHOWN
    Broker          $BROKER_SHOWN
    Progress cache  $CACHE_SHOWN
    Worker log      $WORKER_LOG

  Report types:
    curl -s -H "Authorization: Bearer $TOKEN" $BASE/api/v1/reports/types/

  Request the seed's December sales report (copy the "id" of the answer):
    curl -s -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
      -d '{"report_type": "sales", "title": "December Sales Report", "priority": "high", "parameters": {"start_date": "2024-12-01", "end_date": "2024-12-31"}}' \\
      $BASE/api/v1/reports/

  Follow it, then download it:
    curl -s -H "Authorization: Bearer $TOKEN" $BASE/api/v1/reports/REPORT_ID/progress/
    curl -s -OJ -H "Authorization: Bearer $TOKEN" $BASE/api/v1/reports/REPORT_ID/download/

  Other types: inventory, customers, orders, analytics (its summary is in result_data):
    curl -s -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
      -d '{"report_type": "analytics", "parameters": {"start_date": "2024-10-01", "end_date": "2024-12-31", "group_by": "day"}}' \\
      $BASE/api/v1/reports/

  The seed's Python example, end to end (requests is installed in the virtualenv):
    DEMO_TOKEN=$TOKEN DEMO_URL=$BASE $VENV/bin/python $ROOT/example_project/client_example.py

  Press Ctrl-C to stop the web server and the worker.

EOF

# -- 6. the web server, in the foreground ------------------------------------------
"$PY" manage.py runserver "$DEMO_HOST:$DEMO_PORT"
