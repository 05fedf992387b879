#!/usr/bin/env bash
# Make sure PostgreSQL and Redis are installed and running on loopback, and nginx is
# installed (not running: tests start their own), and Chromium for the web client's
# browser tests.
# Installs the Debian packages when they are missing (as root, or through sudo).
# Skips PostgreSQL when HS_TEST_POSTGRES points the tests at a server of your own.
set -euo pipefail

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "services: need root (or sudo) to run: $*" >&2; exit 1; fi
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

missing=()
if [ -z "${HS_TEST_POSTGRES:-}" ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    missing+=(postgresql)
fi
command -v redis-server >/dev/null || missing+=(redis-server)
# The reverse-proxy tests start their own nginx (tests/support/nginx.py), so the
# package's own service is not wanted.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
# The web client's browser tests drive Debian's headless Chromium (playwright-core
# with executablePath), with a font for its text.
command -v chromium >/dev/null || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
    echo "services: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    if [[ " ${missing[*]} " == *" nginx "* ]]; then
        # Debian starts the service it just installed (where it can); stop it again.
        { as_root systemctl disable --now nginx || as_root service nginx stop; } >/dev/null 2>&1 || true
    fi
fi

if [ -z "${HS_TEST_POSTGRES:-}" ]; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
        if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$version main$"; then
            as_root pg_createcluster "$version" main >/dev/null
        fi
        as_root pg_ctlcluster "$version" main start
        for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
    fi
    # The role the tests use to create and drop their throwaway databases.
    as_postgres psql -q -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'hs_test'" | grep -q 1 ||
        as_postgres psql -q -c "CREATE ROLE hs_test LOGIN CREATEDB PASSWORD 'hs_test'"
fi

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "services: PostgreSQL and Redis are running"
