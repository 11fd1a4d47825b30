#!/usr/bin/env bash
# Start Debian's PostgreSQL for the service tests (installing it when missing, as root or with sudo) and print the
# URL of a test database; prints nothing when it cannot, and the PostgreSQL tests then say so.
set -euo pipefail
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
{
    if ! command -v pg_ctlcluster >/dev/null; then
        $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql
    fi
    version=$(ls /usr/lib/postgresql | sort -n | tail -1)
    if ! pg_lsclusters -h | grep -q "^$version main .* online"; then
        pg_lsclusters -h | grep -q "^$version main" || $SUDO pg_createcluster "$version" main
        $SUDO pg_ctlcluster "$version" main start
    fi
    as_postgres psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname = 'radioloc'" | grep -q 1 \
        || as_postgres psql -qc "CREATE ROLE radioloc LOGIN PASSWORD 'radioloc' CREATEDB"
    as_postgres psql -qtAc "SELECT 1 FROM pg_database WHERE datname = 'radioloc_test'" | grep -q 1 \
        || as_postgres createdb -O radioloc radioloc_test
} >&2 || exit 0
echo "postgresql://radioloc:radioloc@127.0.0.1:5432/radioloc_test"
