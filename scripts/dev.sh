#!/usr/bin/env bash
# The README's two commands on a fresh Debian machine:
#   scripts/dev.sh demo   install, seed the demo data on SQLite, start the server
#   scripts/dev.sh test   install everything (Python, npm, Chromium), then run the whole suite
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv

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
  local extra=$1
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> python venv"
    "$PY" -m venv "$VENV"
  fi
  echo "==> pip install -e .$extra"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".$extra"
}

web_client() {
  command -v npm >/dev/null || need_apt nodejs npm
  echo "==> web client: npm ci && npm run build"
  (cd web_client && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
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
    echo "usage: scripts/dev.sh demo | test [pytest args]" >&2
    exit 64
    ;;
esac
