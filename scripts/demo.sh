#!/usr/bin/env bash
# Start the example project: a real Celery worker and `celery beat` (which
# sends the report schedules' tick) in the background, and the Django
# development server in the foreground. Ctrl-C stops all three.
#
# Needs only python3: by default the database is SQLite, the Celery broker is
# kombu's file-system transport and the cache is a file cache, all under
# example_project/var/. Safe to run again: nothing is installed, migrated or
# seeded twice.
#
# Environment variables:
#   PYTHON          interpreter that creates the virtualenv (default python3)
#   VENV            virtualenv, created if missing (default .venv at the repository root)
#   DEMO_ORDERS     orders to seed on the first run (default 5000; see seed_demo_data --reset),
#                   from 2024-01-01 to the day of that run
#   DEMO_HOST       address runserver listens on (default 127.0.0.1; 0.0.0.0 for all)
#   DEMO_PORT       its port (default 8000)
#   DEMO_CONCURRENCY  worker processes (default 2)
#   EXAMPLE_VAR_DIR where the embedded state lives (default example_project/var)
#   SITE_URL        put before the links in report e-mails (default: the server's address)
#   EMAIL_HOST, EMAIL_PORT  send report e-mails to this SMTP server instead of printing
#                   them in the worker's log (more in example_project/config/settings.py)
#   SCHEDULE_TICK_INTERVAL  seconds between two ticks of the scheduler (default 60)
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
BEAT_LOG="$EXAMPLE_VAR_DIR/beat.log"
BEAT_PIDFILE="$EXAMPLE_VAR_DIR/beat.pid"
URL_HOST="$DEMO_HOST"
[ "$URL_HOST" = "0.0.0.0" ] && URL_HOST=localhost
BASE="http://$URL_HOST:$DEMO_PORT"
# Links in the e-mails the worker sends point at this server.
export SITE_URL="${SITE_URL:-$BASE}"

# -- 3. database, demo data, demo user ---------------------------------------------
say "Migrating the database"
"$PY" manage.py migrate --noinput
say "Seeding demo data ($DEMO_ORDERS orders on a fresh database)"
# Up to today, so that the schedules' "last week" and "last month" find orders.
"$PY" manage.py seed_demo_data --orders "$DEMO_ORDERS" --end-date "$(date -u +%Y-%m-%d)"
TOKEN="$("$PY" manage.py demo_token)"
say "Creating the demo user's report schedules (one per frequency)"
"$PY" manage.py seed_demo_schedules

# -- 4. the Celery worker and celery beat --------------------------------------------
# stop_pid PID NAME: TERM (a warm shutdown), KILL after 20 s.
stop_pid() {
  local pid="$1" name="$2"
  if [ -n "$pid" ] && alive "$pid"; then
    say "Stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do alive "$pid" || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
# A worker or beat left behind by a demo that was killed would compete for
# messages (or send every tick twice).
for pidfile in "$WORKER_PIDFILE" "$BEAT_PIDFILE"; do
  if [ -f "$pidfile" ]; then
    OLD_PID="$(cat "$pidfile")"
    if alive "$OLD_PID" && ps -p "$OLD_PID" -o args= | grep -q "celery"; then
      stop_pid "$OLD_PID" "the $(basename "$pidfile" .pid) of an earlier run"
    fi
    rm -f "$pidfile"
  fi
done

WORKER_PID=""
BEAT_PID=""
stop_background() {
  trap - EXIT INT TERM
  # Ctrl-C may have closed the terminal's pipe (`make demo | tee demo.log`):
  # a message that cannot be written must not cut the clean-up short.
  trap '' PIPE
  set +e
  # Beat first: it would otherwise send ticks that no worker takes.
  stop_pid "$BEAT_PID" "celery beat"
  rm -f "$BEAT_PIDFILE"
  stop_pid "$WORKER_PID" "the Celery worker"
  rm -f "$WORKER_PIDFILE"
}
trap stop_background EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for_log PID LOG PATTERN NAME: wait until LOG shows PATTERN (60 s at most).
wait_for_log() {
  for _ in $(seq 1 120); do
    grep -q "$3" "$2" && return 0
    if ! alive "$1"; then
      echo "$4 exited during startup; the end of its log:" >&2
      tail -n 40 "$2" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "$4 is not ready after 60s; see $2" >&2
  exit 1
}

say "Starting the Celery worker (log: $WORKER_LOG)"
: >"$WORKER_LOG"
"$VENV/bin/celery" -A config worker -Q reports,reports_high_priority \
  -c "$DEMO_CONCURRENCY" --loglevel INFO >>"$WORKER_LOG" 2>&1 &
WORKER_PID=$!
echo "$WORKER_PID" >"$WORKER_PIDFILE"
wait_for_log "$WORKER_PID" "$WORKER_LOG" " ready\." "The Celery worker"

# Beat sends one task, the schedules' tick, every SCHEDULE_TICK_INTERVAL
# seconds; the worker runs it and starts the schedules that are due. Its entry
# lives in the database (django-celery-beat's DatabaseScheduler).
say "Starting celery beat (log: $BEAT_LOG)"
: >"$BEAT_LOG"
"$VENV/bin/celery" -A config beat --loglevel INFO >>"$BEAT_LOG" 2>&1 &
BEAT_PID=$!
echo "$BEAT_PID" >"$BEAT_PIDFILE"
wait_for_log "$BEAT_PID" "$BEAT_LOG" "beat: Starting" "celery beat"

# -- 5. how to use it --------------------------------------------------------------
# Show where the services are, without the passwords of their URLs.
hide_password() { printf '%s' "$1" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#'; }
DB_SHOWN="$(hide_password "${DATABASE_URL:-SQLite in $EXAMPLE_VAR_DIR}")"
BROKER_SHOWN="$(hide_password "${CELERY_BROKER_URL:-file system, $EXAMPLE_VAR_DIR/broker}")"
CACHE_SHOWN="$(hide_password "${REDIS_URL:-files in $EXAMPLE_VAR_DIR/cache}")"
if [ -n "${EMAIL_HOST:-}" ]; then
  MAIL_SHOWN="SMTP $EMAIL_HOST:${EMAIL_PORT:-25}"
else
  MAIL_SHOWN="printed in the worker log (set EMAIL_HOST and EMAIL_PORT for SMTP)"
fi
SCHEDULES="$BASE/api/v1/reports/schedules"
AUTH="-H \"Authorization: Bearer $TOKEN\""
cat <<EOF

==> django-async-reports demo
    My reports      $BASE/reports/  (sign in as demo / demo)
    Reports API     $BASE/api/v1/reports/  (browsable after logging in at $BASE/api-auth/login/)
    Admin           $BASE/admin/  (user demo, password demo)
    API token       $TOKEN
    Database        $DB_SHOWN
    Broker          $BROKER_SHOWN
    Progress cache  $CACHE_SHOWN
    Worker log      $WORKER_LOG
    Beat log        $BEAT_LOG  (a tick every ${SCHEDULE_TICK_INTERVAL:-60}s)
    E-mails         $MAIL_SHOWN

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

  Schedules: the demo user has one per frequency (daily, weekly, monthly, and a
  custom "*/5 * * * *" one that beat runs every five minutes). List them:
    curl -s $AUTH $SCHEDULES/

  Create the seed's weekly schedule (copy the "id" of the answer):
    curl -s -X POST $AUTH -H "Content-Type: application/json" \\
      -d '{"report_type": "sales", "title": "Weekly Sales Report", "frequency": "weekly", "parameters": {"start_date": "{{last_week_start}}", "end_date": "{{last_week_end}}"}, "send_email": true, "email_recipients": ["manager@example.com"]}' \\
      $SCHEDULES/

  Run it now (the report is generated and mailed at once), list its runs, see it,
  disable or enable it (an empty body flips it; {"enabled": false} sets it):
    curl -s -X POST $AUTH $SCHEDULES/SCHEDULE_ID/run-now/
    curl -s $AUTH $SCHEDULES/SCHEDULE_ID/executions/
    curl -s $AUTH $SCHEDULES/SCHEDULE_ID/
    curl -s -X POST $AUTH $SCHEDULES/SCHEDULE_ID/toggle/

  Change it (PATCH), or delete it:
    curl -s -X PATCH $AUTH -H "Content-Type: application/json" \\
      -d '{"time_of_day": "09:00", "timezone": "Europe/Paris"}' $SCHEDULES/SCHEDULE_ID/
    curl -s -X DELETE $AUTH $SCHEDULES/SCHEDULE_ID/

  Press Ctrl-C to stop the web server, the worker and beat.

EOF

# -- 6. the web server, in the foreground ------------------------------------------
"$PY" manage.py runserver "$DEMO_HOST:$DEMO_PORT"
