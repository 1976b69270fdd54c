#!/usr/bin/env bash
# The README's two commands on a fresh Debian machine:
#   scripts/dev.sh demo [--reset]   install, seed the demo data on SQLite, start the server
#   scripts/dev.sh test [pytest args]   install everything (Python, npm, Chromium, Redis,
#                                    PostgreSQL), run the suite on SQLite, then on PostgreSQL
#                                    (REALTIME_TEST_ENGINES="sqlite" or "postgres" runs one)
# Each install step is skipped when what it installs is up to date (a stamp records the hash of
# its inputs), so a second run starts in seconds. PYTHON=python3.12 picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv

fingerprint() {
  # One hash of the named files' contents (and names), for the up-to-date stamps.
  find "$@" -type f -print0 2>/dev/null | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32
}

up_to_date() {  # up_to_date STAMP_FILE VALUE
  [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

need_apt() {
  # Install Debian packages that are missing (as root, or through sudo).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "==> apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

python_deps() {
  local extra=$1 stamp="$VENV/.ent-installed" want
  want="$(fingerprint pyproject.toml)"
  # The test extras include everything the server needs: either stamp will do for `demo`.
  if up_to_date "$stamp" "[test]$want" || up_to_date "$stamp" "$extra$want"; then
    echo "==> python packages: up to date"
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    # Debian's python3 has no venv (ensurepip) until python3-venv is installed.
    "$PY" -c "import ensurepip" >/dev/null 2>&1 || need_apt python3-venv
    echo "==> python venv"
    "$PY" -m venv "$VENV"
  fi
  echo "==> pip install -e .$extra"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".$extra"
  echo "$extra$want" > "$stamp"
}

web_client() {
  command -v npm >/dev/null || need_apt nodejs npm
  local deps build
  deps="$(fingerprint web_client/package.json web_client/package-lock.json)"
  if up_to_date web_client/node_modules/.ent-installed "$deps"; then
    echo "==> web client packages: up to date"
  else
    echo "==> web client: npm ci"
    (cd web_client && npm ci --no-audit --no-fund --loglevel=error)
    echo "$deps" > web_client/node_modules/.ent-installed
  fi
  build="$(fingerprint web_client/src web_client/build.mjs web_client/package-lock.json)"
  if up_to_date web_client/dist/.ent-built "$build"; then
    echo "==> web client build: up to date"
  else
    echo "==> web client: npm run build"
    (cd web_client && npm run build --silent)
    echo "$build" > web_client/dist/.ent-built
  fi
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  command -v redis-server >/dev/null || need_apt redis-server
  echo "==> starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "Redis did not start" >&2; return 1
}

port_open() {  # port_open PORT: something listens on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

as_postgres() {  # a command as the cluster's owner (Debian: peer authentication on the socket)
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else (cd / && sudo -u postgres "$@"); fi
}

pg_connects() {  # pg_connects URL: a connection opens (psycopg, from the venv)
  "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import sys

import psycopg

psycopg.connect(sys.argv[1], connect_timeout=5).close()
PY
}

ensure_postgres() {
  # The tests' PostgreSQL: REALTIME_TEST_PG (an admin URL: a role that may create databases
  # and set session_replication_role), by default postgres on 127.0.0.1:5432 without a
  # password (tests/engines.py). When nothing answers there, Debian's PostgreSQL is installed
  # and its cluster started; when it answers but wants a password (Debian's default for TCP:
  # scram-sha-256), the tests get a role of their own, `ent_test`, with a random password kept
  # in $VENV/.ent-test-pg: nothing else in the cluster is changed (no pg_hba.conf edit, no
  # password for postgres). `DROP ROLE ent_test` undoes it.
  if [ -n "${REALTIME_TEST_PG:-}" ]; then
    pg_connects "$REALTIME_TEST_PG" && return 0
    echo "PostgreSQL does not accept the REALTIME_TEST_PG given (its host: ${REALTIME_TEST_PG##*@})" >&2
    return 1
  fi
  local default="postgresql://postgres@127.0.0.1:5432/postgres" saved="$VENV/.ent-test-pg"
  pg_connects "$default" && return 0
  if [ -f "$saved" ] && pg_connects "$(cat "$saved")"; then
    REALTIME_TEST_PG="$(cat "$saved")"; export REALTIME_TEST_PG; return 0
  fi
  if ! port_open 5432; then
    need_apt postgresql
    if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
      local version; version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
      echo "==> PostgreSQL $version: creating the cluster main on port 5432"
      as_root pg_createcluster "$version" main --port 5432 >/dev/null
    fi
    local ver name port status
    while read -r ver name port status _; do
      if [ "$port" = 5432 ] && [ "$status" != online ]; then
        echo "==> starting PostgreSQL $ver/$name on 127.0.0.1:5432"
        as_root pg_ctlcluster "$ver" "$name" start
      fi
    done < <(pg_lsclusters -h)
    for _ in $(seq 100); do port_open 5432 && break; sleep 0.1; done
    port_open 5432 || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; return 1; }
    pg_connects "$default" && return 0
  fi
  if ! pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 && $4 == "online" {found=1} END {exit !found}'; then
    echo "PostgreSQL on 127.0.0.1:5432 refuses $default and is not a local cluster:" \
      "set REALTIME_TEST_PG=postgresql://USER:PASSWORD@HOST:PORT/postgres" >&2
    return 1
  fi
  echo "==> PostgreSQL: a role ent_test for the tests (password in $saved)"
  local password url
  password="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')"
  as_postgres psql -p 5432 -v ON_ERROR_STOP=1 -qc "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ent_test') THEN
        CREATE ROLE ent_test LOGIN SUPERUSER;
      END IF; END \$\$" -c "ALTER ROLE ent_test PASSWORD '$password'" >/dev/null
  url="postgresql://ent_test:$password@127.0.0.1:5432/postgres"
  (umask 077 && echo "$url" > "$saved")
  pg_connects "$url" || { echo "PostgreSQL refuses the role ent_test on 127.0.0.1" >&2; return 1; }
  REALTIME_TEST_PG="$url"; export REALTIME_TEST_PG
}

case "${1:-}" in
  demo)
    if [ "${2:-}" = "--reset" ]; then
      # Start over: the demo database (and its WAL), the install stamps.
      db="${REALTIME_DB:-data/ent.sqlite3}"
      echo "==> reset: removing $db and the install stamps"
      rm -f "$db" "$db-wal" "$db-shm" "$VENV/.ent-installed" \
        web_client/node_modules/.ent-installed web_client/dist/.ent-built
    elif [ -n "${2:-}" ]; then
      echo "usage: scripts/dev.sh demo [--reset]" >&2; exit 64
    fi
    python_deps ""
    web_client
    "$VENV/bin/python" -m realtime demo --out demo-accounts.json
    echo "==> Exemples de comptes (tous dans demo-accounts.json) :"
    "$VENV/bin/python" - <<'PY'
import json
accounts = json.load(open("demo-accounts.json", encoding="utf-8"))
for role in ("teacher", "parent", "cpe"):
    a = next(a for a in accounts if a["role"] == role)
    print(f"    {role:8} identifiant {a['login']:28} code {a['code']}")
PY
    exec "$VENV/bin/python" -m realtime serve --host "${REALTIME_HOST:-127.0.0.1}" --port "${PORT:-8080}"
    ;;
  test)
    need_apt chromium fonts-dejavu-core poppler-utils xmlsec1
    python_deps "[test]"
    web_client
    ensure_redis
    engines="${REALTIME_TEST_ENGINES:-sqlite postgres}"
    for engine in $engines; do
      case "$engine" in sqlite | postgres) ;;
        *) echo "REALTIME_TEST_ENGINES: sqlite and/or postgres, not $engine" >&2; exit 64 ;;
      esac
    done
    # Both runs need PostgreSQL: `db copy`'s tests copy SQLite files into it in either.
    ensure_postgres
    echo "==> ruff"
    "$VENV/bin/ruff" check realtime tests $(ls -d bench 2>/dev/null)
    status=0 failed=""
    for engine in $engines; do
      echo "==> pytest on $engine (REALTIME_TEST_DB=$engine)"
      code=0
      REALTIME_TEST_DB="$engine" "$VENV/bin/pytest" "${@:2}" || code=$?
      if [ "$code" -ne 0 ]; then
        failed="$failed $engine"
        [ "$status" -ne 0 ] || status=$code
      fi
    done
    if [ -n "$failed" ]; then
      echo "==> the suite failed on:$failed" >&2
      exit "$status"
    fi
    echo "==> the suite passed on: $engines"
    ;;
  *)
    echo "usage: scripts/dev.sh demo [--reset] | test [pytest args]" >&2
    exit 64
    ;;
esac
