#!/usr/bin/env bash
# The README's two commands on a fresh Debian machine:
#   scripts/dev.sh demo [--reset]   install, seed the demo data on SQLite, start the server
#   scripts/dev.sh test [pytest args]   install everything (Python, npm, Chromium), run the suite
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
    echo "==> ruff"
    "$VENV/bin/ruff" check realtime tests $(ls -d bench 2>/dev/null)
    echo "==> pytest"
    exec "$VENV/bin/pytest" "${@:2}"
    ;;
  *)
    echo "usage: scripts/dev.sh demo [--reset] | test [pytest args]" >&2
    exit 64
    ;;
esac
