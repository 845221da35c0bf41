#!/usr/bin/env bash
# A private PostgreSQL server for the storage tests, on loopback only.
#
#   scripts/postgres.sh start    install (Debian package, only if missing), create the cluster
#                                if needed, start it, create the database; prints the URL.
#                                Already running: prints the URL and does nothing else.
#   scripts/postgres.sh stop     fast shutdown (no-op when not running)
#   scripts/postgres.sh status   exit 0 when running, 3 when not
#   scripts/postgres.sh url      print the URL
#   scripts/postgres.sh run CMD  start (if needed), run CMD with COPILOT_TEST_POSTGRES_URL set,
#                                stop afterwards (even when CMD fails) if this call started it;
#                                exits with CMD's status.
#
# Settings: PGDIR (default .pg/ in the repository; the cluster is in $PGDIR/data and the
# unix socket in $PGDIR), PGPORT (default 54329), PGDATABASE_NAME (default copilot_test).
# The cluster trusts every local connection (a throwaway test server, reachable only from
# 127.0.0.1); as root it runs as the `postgres` user, because initdb refuses root.
# Status messages go to stderr; stdout carries only the URL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGDIR="${PGDIR:-$ROOT/.pg}"
PGPORT="${PGPORT:-54329}"
DBNAME="${PGDATABASE_NAME:-copilot_test}"
DATA="$PGDIR/data"
URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/$DBNAME"

say() { echo "postgres.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

bindir() {
    local initdb
    initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
    [[ -n "$initdb" ]] && dirname "$initdb"
}

install_server() {
    [[ -n "$(bindir)" ]] && return 0
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and this is not a Debian system; install PostgreSQL 13+ and rerun"
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "PostgreSQL is not installed and installing it needs root: apt-get install postgresql"
        sudo=(sudo)
    fi
    say "installing the Debian postgresql package (once)"
    "${sudo[@]}" apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
    [[ -n "$(bindir)" ]] || die "apt-get installed postgresql but no initdb was found under /usr/lib/postgresql/*/bin"
}

# Run a server command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    local bin
    bin="$(bindir)" || return 1
    [[ -f "$DATA/PG_VERSION" ]] || return 1
    as_owner "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
    local bin="$1"
    [[ -f "$DATA/PG_VERSION" ]] && return 0
    mkdir -p "$PGDIR"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres:postgres "$PGDIR"
        runuser -u postgres -- test -x "$PGDIR" \
            || die "the postgres user cannot reach $PGDIR (a parent directory is private); set PGDIR=/tmp/copilot-pg"
    fi
    chmod 700 "$PGDIR"
    say "creating a cluster in $DATA"
    as_owner "$bin/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
}

create_database() {
    local bin="$1" exists
    exists="$("$bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")"
    if [[ "$exists" != 1 ]]; then
        "$bin/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres -E UTF8 "$DBNAME"
    fi
}

start() {
    if running; then
        say "already running on 127.0.0.1:$PGPORT (data in $DATA)"
        echo "$URL"
        return 0
    fi
    install_server
    local bin
    bin="$(bindir)"
    init_cluster "$bin"
    # fsync off: a throwaway test cluster, made fast at the cost of crash safety.
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$PGDIR/server.log" -w -t 60 \
        -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null || { tail -n 20 "$PGDIR/server.log" >&2 || true; die "the server did not start (log: $PGDIR/server.log)"; }
    create_database "$bin"
    say "started PostgreSQL $(basename "$(dirname "$bin")") on 127.0.0.1:$PGPORT (data in $DATA)"
    echo "$URL"
}

stop() {
    if ! running; then
        say "not running"
        return 0
    fi
    as_owner "$(bindir)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    say "stopped"
}

run() {
    [[ $# -gt 0 ]] || die "usage: scripts/postgres.sh run COMMAND [ARG...]"
    local started=0 url rc=0
    running || started=1
    url="$(start)"
    if [[ "$started" == 1 ]]; then
        trap 'stop' EXIT
    fi
    COPILOT_TEST_POSTGRES_URL="$url" "$@" || rc=$?
    return "$rc"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) if running; then say "running on 127.0.0.1:$PGPORT"; else say "not running"; exit 3; fi ;;
    url) echo "$URL" ;;
    run) shift; run "$@" ;;
    *) echo "usage: scripts/postgres.sh start|stop|status|url|run COMMAND" >&2; exit 2 ;;
esac
