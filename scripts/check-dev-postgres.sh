#!/usr/bin/env bash
# Checks that `scripts/dev.sh test` brings up PostgreSQL on a machine where 127.0.0.1:5432 does
# not answer, without touching this machine's own PostgreSQL: the check runs in private
# namespaces (network: nothing listens on 127.0.0.1; mount: empty /etc/postgresql,
# /var/lib/postgresql, /run/postgresql, /var/log/postgresql; pid: whatever it starts dies
# with it), with Debian's postgresql package already installed.
#   sudo scripts/check-dev-postgres.sh          no cluster at all (dev.sh creates and starts one)
#   sudo scripts/check-dev-postgres.sh stopped  Debian's cluster main exists but is down
# Either way the cluster answers TCP with scram-sha-256 (Debian's pg_hba.conf): dev.sh makes
# the role ent_test, and both engines' runs of a few tests must pass. Needs root and unshare.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
  exec unshare --net --mount --pid --fork --kill-child "$0" --inside "${1:-none}"
fi
ip link set lo up
for d in /etc/postgresql /var/lib/postgresql /run/postgresql /var/log/postgresql; do
  mount -t tmpfs tmpfs "$d"
  chown postgres:postgres "$d"
done
chmod 2775 /run/postgresql
if [ "$2" = stopped ]; then
  pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -n 1)" main --port 5432 >/dev/null
fi
saved=.venv/.ent-test-pg
[ -f "$saved" ] && mv "$saved" "$saved.outside"
trap '[ -f "$saved.outside" ] && mv "$saved.outside" "$saved" || rm -f "$saved"' EXIT
scripts/dev.sh test -q -p no:cacheprovider tests/test_cli.py -k migrate
echo "check-dev-postgres: passed ($2)"
