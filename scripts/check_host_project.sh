#!/usr/bin/env bash
# Prove that a fresh `django-admin startproject` host can use the package as
# released: build a wheel of this checkout, install it (non-editable) in a new
# virtualenv with the latest Django, register generators through the public API
# (`from django_async_reports import ReportGenerator, register`), then drive the
# reports API over HTTP (scripts/check_host_project.py) against a real Celery
# worker on RabbitMQ, PostgreSQL and the Redis cache.
#
# Everything lives in a temporary folder; a throw-away PostgreSQL database, a
# RabbitMQ vhost (so the default queue names `reports` and
# `reports_high_priority` are used without touching anyone else's) and a Redis
# key prefix are removed on exit, as are the processes started here.
#
# Usage: scripts/check_host_project.sh
# Environment (all optional):
#   PYTHON        interpreter of the host virtualenv (default: pyenv's 3.12.1)
#   DJANGO_SPEC   Django requirement (default: "Django>=6,<7", the latest 6.x)
#   SOURCE        "worktree" (default: tracked + untracked, non-ignored files)
#                 or "head" (git archive HEAD) - what the wheel is built from
#   PGHOST PGUSER PostgreSQL (default 127.0.0.1, postgres; trust auth)
#   AMQP_HOST AMQP_USER AMQP_PASSWORD   RabbitMQ (default 127.0.0.1 guest guest)
#   RABBIT_VHOST  use this existing vhost instead of creating one ("/" to share)
#   REDIS_HOST REDIS_PORT REDIS_DB      Redis (default 127.0.0.1 6379 14)
#   OVERRIDE_DJANGO=6.1.3  force this Django with --no-deps after the normal install
#                 (to try a version the dependencies' pins exclude)
#   KEEP_WORKDIR=1  keep the temporary folder (it is kept anyway on failure)
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-/root/.pyenv/versions/3.12.1/bin/python}
DJANGO_SPEC=${DJANGO_SPEC:-Django>=6,<7}
# WITH_BEAT=0 installs the package without its beat extra and leaves
# django_celery_beat out of INSTALLED_APPS (django-celery-beat 2.9.0 caps
# Django below 6.1): DJANGO_SPEC="Django>=6.1,<6.2" WITH_BEAT=0.
WITH_BEAT=${WITH_BEAT:-1}
if [ "$WITH_BEAT" = 1 ]; then EXTRAS="beat,redis,postgres"; else EXTRAS="redis,postgres"; fi
SOURCE=${SOURCE:-worktree}
export PGHOST=${PGHOST:-127.0.0.1}
export PGUSER=${PGUSER:-postgres}
AMQP_HOST=${AMQP_HOST:-127.0.0.1}
AMQP_USER=${AMQP_USER:-guest}
AMQP_PASSWORD=${AMQP_PASSWORD:-guest}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_DB=${REDIS_DB:-14}

TAG="hostproj_check_$$"
DB_NAME="$TAG"
REDIS_PREFIX="$TAG"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hostproj-check.XXXXXX")
START=$(date +%s.%N)
PIDS=()
CREATED_DB=0
CREATED_VHOST=0
VHOST=${RABBIT_VHOST:-}

elapsed() { awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN { printf "%7.2f", n - s }'; }
say() { printf '[check +%ss] %s\n' "$(elapsed)" "$*"; }
step() { printf '\n[check +%ss] ==== %s\n' "$(elapsed)" "$*"; STEP_START=$(date +%s.%N); }
step_done() { say "     done in $(awk -v s="$STEP_START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - s }')s"; }
run() { say "\$ $*"; "$@"; }
# pip, without the local mirror's "Location ... is ignored" noise (its status is kept).
pip_run() { say "\$ $*"; "$@" 2>&1 | { grep -v 'is neither a file nor a directory' || true; }; }
die() { say "FAILED: $*"; exit 1; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  echo
  say "==== cleanup (exit status $rc)"
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      say "stopping process group $pid"
      kill -TERM -- "-$pid" 2>/dev/null
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  if [ "$rc" -ne 0 ]; then
    for f in "$WORK/worker.log" "$WORK/server.log"; do
      [ -f "$f" ] && { say "---- last lines of $f"; tail -n 60 "$f"; }
    done
  fi
  if [ "$CREATED_DB" = 1 ]; then
    say "\$ dropdb --if-exists --force $DB_NAME"
    dropdb --if-exists --force "$DB_NAME"
  fi
  if [ "$CREATED_VHOST" = 1 ]; then
    say "\$ rabbitmqctl delete_vhost $VHOST"
    rabbitmqctl -q delete_vhost "$VHOST" >/dev/null
  fi
  say "deleting Redis keys $REDIS_PREFIX* in db $REDIS_DB"
  redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" --scan --pattern "$REDIS_PREFIX*" \
    | xargs -r -n 500 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" del >/dev/null
  if [ "$rc" -eq 0 ] && [ "${KEEP_WORKDIR:-0}" != 1 ]; then
    rm -rf "$WORK"
    say "removed $WORK"
  else
    say "kept $WORK (logs: worker.log, server.log)"
  fi
  if [ "$rc" -eq 0 ]; then say "RESULT: PASS"; else say "RESULT: FAIL"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start "$@" in its own process group (so cleanup can stop it with its children).
start_bg() {
  local log=$1; shift
  say "\$ $* > $log 2>&1 &"
  setsid "$@" >"$log" 2>&1 &
  PIDS+=("$!")
  LAST_PID=$!
}

wait_for_log() {  # pid file pattern timeout
  local pid=$1 file=$2 pattern=$3 timeout=$4 i
  for i in $(seq 1 $((timeout * 5))); do
    kill -0 "$pid" 2>/dev/null || die "process $pid exited; see $file"
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.2
  done
  die "'$pattern' not in $file after ${timeout}s"
}

say "work dir: $WORK"
say "repo: $REPO (HEAD $(git -C "$REPO" rev-parse --short HEAD), source: $SOURCE)"
if [ "$SOURCE" = worktree ]; then
  dirty=$(git -C "$REPO" status --porcelain | wc -l)
  say "the working tree has $dirty changed/untracked path(s); they are part of the wheel"
fi

step "0. services"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] >= (3, 10); print(sys.version)' | sed 's/^/    python: /'
psql -qAtc 'select version()' postgres | sed 's/^/    /' || die "PostgreSQL not reachable at $PGHOST"
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping | grep -q PONG || die "Redis not reachable"
"$PYTHON" - "$AMQP_HOST" <<'EOF' || die "RabbitMQ not reachable on $AMQP_HOST:5672"
import socket, sys
socket.create_connection((sys.argv[1], 5672), timeout=5).close()
EOF
say "PostgreSQL, Redis and RabbitMQ answer"
step_done

step "1. build the wheel (outside the repo)"
mkdir -p "$WORK/src" "$WORK/dist"
if [ "$SOURCE" = head ]; then
  git -C "$REPO" archive HEAD | tar -x -C "$WORK/src"
else
  # Copy what git would see (tracked + untracked, minus .gitignore'd): building
  # in place would leave build/ and *.egg-info/ in the repo.
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
    | rsync -a --from0 --files-from=- --ignore-missing-args ./ "$WORK/src/")
fi
run "$PYTHON" -m venv "$WORK/build-venv"
pip_run "$WORK/build-venv/bin/python" -m pip install --quiet build
say "\$ $WORK/build-venv/bin/python -m build --wheel --outdir $WORK/dist $WORK/src  (log: build.log)"
"$WORK/build-venv/bin/python" -m build --wheel --outdir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 \
  || { tail -n 40 "$WORK/build.log"; die "wheel build failed"; }
WHEEL=$(ls "$WORK"/dist/*.whl)
say "built $(basename "$WHEEL") ($(stat -c %s "$WHEEL") bytes)"
# Every file of the package folder (but bytecode) must be in the wheel:
# migrations, templates, static files, py.typed.
"$WORK/build-venv/bin/python" - "$WHEEL" "$WORK/src" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel, src = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
pkg = src / "django_async_reports"
wanted = {p.relative_to(src).as_posix() for p in pkg.rglob("*")
          if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}}
missing = sorted(wanted - names)
top = sorted({n.split("/")[0] for n in names})
meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
name = next(l for l in zipfile.ZipFile(wheel).read(meta).decode().splitlines() if l.startswith("Name:"))
print(f"    {len(names)} files; top level: {top}; {name}")
for kind in ("migrations/0", "templates/", "static/", "py.typed"):
    print(f"    {kind:<12} {sorted(n for n in names if kind in n)}")
if missing:
    sys.exit(f"    files of django_async_reports/ missing from the wheel: {missing}")
extra = [t for t in top if not (t.startswith("django_async_reports") or t.startswith("django_async_reporting"))]
if extra:
    sys.exit(f"    unexpected top-level entries in the wheel: {extra}")
EOF
step_done

step "2. host virtualenv: the wheel (non-editable) + $DJANGO_SPEC"
run "$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
pip_run "$VPY" -m pip install --quiet --upgrade pip
pip_run "$VPY" -m pip install --quiet "$WHEEL[$EXTRAS]" "$DJANGO_SPEC" requests
if [ -n "${OVERRIDE_DJANGO:-}" ]; then
  # Not what a host would do: force a Django the dependencies' caps exclude.
  pip_run "$VPY" -m pip install --quiet --no-deps "Django==$OVERRIDE_DJANGO"
  "$VPY" -m pip check 2>&1 | sed 's/^/    pip check: /' || true
fi
cd "$WORK"  # never import from the checkout
"$VPY" - <<'EOF'
import importlib.metadata as md, json, sys
import django, django_async_reports
dist = md.distribution("django-async-reporting")
direct = dist.read_text("direct_url.json")
editable = bool(direct and json.loads(direct).get("dir_info", {}).get("editable"))
print(f"    python {sys.version.split()[0]}; Django {django.get_version()}; "
      + "; ".join(f"{n} {md.version(n)}" for n in
                  ("django-async-reporting", "djangorestframework", "celery", "kombu",
                   "django-filter", "psycopg", "redis")))
print(f"    django_async_reports imported from {django_async_reports.__file__}; editable={editable}")
assert "site-packages" in django_async_reports.__file__ and not editable
assert django.VERSION[0] >= 6, django.get_version()
import subprocess
out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "django"],
                     capture_output=True, text=True).stdout.splitlines()
latest = out[0] if out else "?"
print(f"    newest Django on the index: {latest}")
EOF
step_done

step "3. PostgreSQL database, RabbitMQ vhost, Redis prefix"
run createdb "$DB_NAME"
CREATED_DB=1
if [ -z "$VHOST" ]; then
  if command -v rabbitmqctl >/dev/null && rabbitmqctl -q add_vhost "$TAG" >/dev/null 2>&1; then
    VHOST="$TAG"
    CREATED_VHOST=1
    rabbitmqctl -q set_permissions -p "$VHOST" "$AMQP_USER" ".*" ".*" ".*" >/dev/null
    say "created RabbitMQ vhost $VHOST (permissions for $AMQP_USER)"
  else
    VHOST="/"
    say "rabbitmqctl unavailable: sharing vhost / (queues are purged before the worker starts)"
  fi
fi
VHOST_URL=$([ "$VHOST" = "/" ] && echo "" || echo "$VHOST")
BROKER_URL="amqp://$AMQP_USER:$AMQP_PASSWORD@$AMQP_HOST:5672/$VHOST_URL"
REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB"
say "database $DB_NAME; broker $BROKER_URL; cache and results $REDIS_URL (prefix $REDIS_PREFIX)"
step_done

step "4. django-admin startproject hostproj + startapp sales"
mkdir "$WORK/host"
cd "$WORK/host"
run "$WORK/venv/bin/django-admin" startproject hostproj .
run "$VPY" manage.py startapp sales

cat >>hostproj/settings.py <<EOF


# ---- added by scripts/check_host_project.sh: what the README asks of a host ----
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS += [
    "rest_framework",
    "rest_framework.authtoken",
    "django_async_reports",
    "sales",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "$DB_NAME",
        "USER": "$PGUSER",
        "HOST": "$PGHOST",
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "$REDIS_URL",
        "KEY_PREFIX": "$REDIS_PREFIX",
    }
}
MEDIA_ROOT = BASE_DIR / "media"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["hostproj.authentication.BearerTokenAuthentication"],
}
CELERY_BROKER_URL = "$BROKER_URL"
CELERY_RESULT_BACKEND = "$REDIS_URL"
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": "${REDIS_PREFIX}_"}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# No ASYNC_REPORTS: the package's defaults (queues reports / reports_high_priority).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
EOF
if [ "$WITH_BEAT" = 1 ]; then
  printf '\nINSTALLED_APPS += ["django_celery_beat"]\n' >>hostproj/settings.py
fi

cat >hostproj/authentication.py <<'EOF'
from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF tokens sent as ``Authorization: Bearer <key>``."""

    keyword = "Bearer"
EOF

# The Celery app exactly as the docs recommend it.
cat >hostproj/celery.py <<'EOF'
import os

from celery import Celery

from django_async_reports.celery_config import configure_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostproj.settings")

app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
configure_celery(app)
app.autodiscover_tasks()
EOF
cat >hostproj/__init__.py <<'EOF'
from .celery import app as celery_app

__all__ = ("celery_app",)
EOF

cat >hostproj/urls.py <<'EOF'
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/reports/", include("django_async_reports.urls")),
]
EOF

cat >sales/models.py <<'EOF'
from django.conf import settings
from django.db import models


class Order(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    number = models.PositiveIntegerField(unique=True)
    created_on = models.DateField()
    customer = models.CharField(max_length=100)
    total = models.DecimalField(max_digits=10, decimal_places=2)
EOF

cat >sales/reports.py <<'EOF'
import time

from rest_framework import serializers

from django_async_reports import ReportGenerator, register

from .models import Order


class SalesParameters(serializers.Serializer):
    start_date = serializers.DateField()
    end_date = serializers.DateField()

    def validate(self, attrs):
        if attrs["start_date"] > attrs["end_date"]:
            raise serializers.ValidationError("start_date must not be after end_date.")
        return attrs


@register
class SalesReport(ReportGenerator):
    report_type = "sales"
    label = "Sales report"
    parameters_class = SalesParameters
    columns = ["order_id", "date", "customer", "total"]

    def orders(self, params):
        # Scoped to the requester through self.user.
        return Order.objects.filter(
            owner=self.user, created_on__range=(params["start_date"], params["end_date"])
        ).order_by("number")

    def count(self, params):
        return self.orders(params).count()

    def rows(self, params):
        for o in self.orders(params).iterator(chunk_size=2000):
            yield (o.number, o.created_on, o.customer, o.total)


class SlowParameters(serializers.Serializer):
    rows = serializers.IntegerField(min_value=1, max_value=100_000)
    delay = serializers.FloatField(min_value=0, max_value=5)


@register
class SlowReport(ReportGenerator):
    """Sleeps between rows, so progress can be watched and a running report cancelled."""

    report_type = "slow"
    label = "Slow report"
    parameters_class = SlowParameters
    columns = ["n", "square"]
    chunk_size = 1

    def count(self, params):
        return params["rows"]

    def rows(self, params):
        for n in range(params["rows"]):
            time.sleep(params["delay"])
            yield (n, n * n)
EOF
say "wrote hostproj/{settings.py (appended), authentication.py, celery.py, __init__.py, urls.py}, sales/{models.py, reports.py}"
sed 's/^/    | /' hostproj/celery.py
step_done

step "5. check, migrations, data"
run "$VPY" manage.py check
run "$VPY" manage.py makemigrations sales
say "\$ $VPY manage.py makemigrations --check --dry-run   (registering generators must need no migration)"
"$VPY" manage.py makemigrations --check --dry-run || die "makemigrations found changes outside the host's own app"
say "\$ $VPY manage.py migrate --no-input  (log: migrate.log)"
"$VPY" manage.py migrate --no-input >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log"; die "migrate failed"; }
grep -E "django_async_reports|django_celery_beat.00(0[1-2])|authtoken.0001|sales" "$WORK/migrate.log" | sed 's/^/    /'
say "$(grep -c ' OK$' "$WORK/migrate.log") migrations applied"
FIXTURES="$WORK/fixtures.json" "$VPY" manage.py shell -v 0 -c '
import json, os
from datetime import date
from decimal import Decimal
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from sales.models import Order
User = get_user_model()
alice = User.objects.create_user("alice", password="x")
bob = User.objects.create_user("bob", password="x")
rows = [
    (alice, 1001, date(2024, 12, 1), "Ana García", Decimal("120.50")),
    (alice, 1002, date(2024, 12, 15), "=SUM(A1:A2)", Decimal("-5.00")),
    (alice, 1003, date(2024, 12, 31), "Smith, John", Decimal("99.99")),
    (alice, 1004, date(2025, 1, 2), "Out Of Range", Decimal("1.00")),
    (bob, 2001, date(2024, 12, 10), "Bob Customer", Decimal("7.00")),
]
for owner, number, day, customer, total in rows:
    Order.objects.create(owner=owner, number=number, created_on=day, customer=customer, total=total)
with open(os.environ["FIXTURES"], "w") as fh:
    json.dump({"alice_token": Token.objects.create(user=alice).key,
               "bob_token": Token.objects.create(user=bob).key}, fh)
'
say "users alice and bob with Bearer tokens, 5 orders (4 alice, 1 bob)"
step_done

step "6. purge the report queues, start a real worker and the web server"
CELERY="$WORK/venv/bin/celery"
# On a fresh vhost the queues do not exist yet: declare them as the app does, then purge.
"$VPY" - <<'EOF'
from hostproj.celery import app
with app.connection_for_write() as conn:
    for queue in app.conf.task_queues:
        if queue.name.startswith("reports"):
            queue(conn.default_channel).declare()
EOF
run "$CELERY" -A hostproj purge -f -Q reports,reports_high_priority
start_bg "$WORK/worker.log" "$CELERY" -A hostproj worker -Q reports,reports_high_priority \
  -c 1 -n "hostcheck-$$@%h" --loglevel INFO --without-gossip --without-mingle
WORKER_PID=$LAST_PID
wait_for_log "$WORKER_PID" "$WORK/worker.log" " ready." 60
say "worker ready (pid $WORKER_PID); it consumes:"
grep -E '\.> reports' "$WORK/worker.log" | sed 's/^ */    /' 
grep -E "django_async_reports\." "$WORK/worker.log" | sed 's/^/    registered: /'
PORT=$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_bg "$WORK/server.log" "$VPY" manage.py runserver "127.0.0.1:$PORT" --noreload
SERVER_PID=$LAST_PID
BASE_URL="http://127.0.0.1:$PORT/api/v1/reports/"
for i in $(seq 1 100); do
  kill -0 "$SERVER_PID" 2>/dev/null || die "runserver exited; see $WORK/server.log"
  code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL" || true)
  [ "$code" = 401 ] && break
  sleep 0.2
done
[ "$code" = 401 ] || die "web server not answering 401 on $BASE_URL (last: $code)"
say "web server up on $BASE_URL (anonymous GET -> $code)"
step_done

step "7. drive the API over HTTP (scripts/check_host_project.py)"
"$VPY" "$REPO/scripts/check_host_project.py" --base-url "$BASE_URL" \
  --fixtures "$WORK/fixtures.json" --media-root "$WORK/host/media" | tee "$WORK/driver.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "HTTP checks failed"
step_done

step "8. what the broker, the cache, the files and the worker log show"
if [ "$CREATED_VHOST" = 1 ] || command -v rabbitmqctl >/dev/null; then
  rabbitmqctl -q list_queues -p "$VHOST" name durable arguments messages consumers \
    | grep -E "^reports" | sed 's/^/    /' | tee "$WORK/queues.txt"
  for q in reports reports_high_priority; do
    grep -E "^    $q\s+true\s+.*x-max-priority.*10" "$WORK/queues.txt" >/dev/null \
      || die "queue $q is not durable with x-max-priority 10"
  done
  say "both queues durable with x-max-priority=10"
fi
keys=$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" --scan --pattern "$REDIS_PREFIX*async_reports:progress:*" | wc -l)
[ "$keys" -gt 0 ] || die "no progress keys in the Redis cache"
say "$keys progress entries in the Redis cache ($REDIS_PREFIX:*:async_reports:progress:*)"
say "report files in storage: $(cd "$WORK/host/media" && find . -type f | sort | paste -sd ' ')"
IDS=$(grep '^REPORT_IDS ' "$WORK/driver.log" | cut -d' ' -f2-)
CANCELLED_ID=$("$VPY" -c 'import json, sys; print(json.loads(sys.argv[1])["cancelled"])' "$IDS")
grep -q "Report $CANCELLED_ID was cancelled while running" "$WORK/worker.log" \
  || die "the worker log does not say the cancelled report stopped"
say "worker log: 'Report $CANCELLED_ID was cancelled while running'"
say "worker log: $(grep -c 'Task django_async_reports.generate_report\[.*\] succeeded' "$WORK/worker.log") generate_report, $(grep -c 'Task django_async_reports.post_process_report\[.*\] succeeded' "$WORK/worker.log") post_process_report, $(grep -c 'Task django_async_reports.send_report_notification\[.*\] succeeded' "$WORK/worker.log") send_report_notification succeeded"
if grep -nE "ERROR|Traceback|CRITICAL" "$WORK/worker.log" "$WORK/server.log"; then
  die "errors in the worker or server log (above)"
fi
say "no ERROR/Traceback in worker.log or server.log"
step_done

say "total $(elapsed)s"
