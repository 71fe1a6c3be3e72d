#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite and print its URL (the only stdout line):
#
#   export ASSISTANT_KIT_TEST_PG_URL="$(bash scripts/start_postgres.sh)"
#
# Idempotent: installs Debian's `postgresql` package when no server binaries are found (as
# root), creates the cluster in $ASSISTANT_KIT_PGDATA (default /tmp/assistant_kit_pg) when it
# does not exist, starts it on 127.0.0.1:$PGPORT (default 5433) when it is not running, and
# creates the database `assistant_kit_test` when missing. Running it again changes nothing.
#
# Decisions: a private cluster (not Debian's default one on 5432) so nothing else on the host
# is touched and the port cannot collide with a system server; trust authentication on the
# loopback address only; fsync off and a larger max_connections, because it holds test data
# only and the replica tests open many connections (each Store has a pool, each engine a
# LISTEN and a NOTIFY connection). As root, the server runs as the `postgres` user (it
# refuses to run as root). Stop it with: pg_ctl -D "$ASSISTANT_KIT_PGDATA" stop
set -euo pipefail

PGPORT="${PGPORT:-5433}"
PGDATA_DIR="${ASSISTANT_KIT_PGDATA:-/tmp/assistant_kit_pg}"
DB_NAME="${ASSISTANT_KIT_PG_DB:-assistant_kit_test}"

log() { echo "start_postgres: $*" >&2; }

find_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
            echo "$dir"
            return
        fi
    fi
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
        echo "$dir"
        return
    fi
    dir="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
    if [ -x "$dir/initdb" ]; then
        echo "$dir"
    fi
}

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing postgresql (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        BINDIR="$(find_bindir)"
    fi
    if [ -z "$BINDIR" ]; then
        log "no PostgreSQL server binaries found (install Debian's 'postgresql' package)"
        exit 1
    fi
fi

# As root, everything runs as the postgres user, which must own the data directory.
if [ "$(id -u)" = 0 ]; then
    RUN_AS=postgres
    as_pg() { runuser -u "$RUN_AS" -- "$@"; }
else
    RUN_AS="$(id -un)"
    as_pg() { "$@"; }
fi

if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
    log "initdb $PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    chmod 700 "$PGDATA_DIR"
    if [ "$(id -u)" = 0 ]; then chown "$RUN_AS" "$PGDATA_DIR"; fi
    as_pg "$BINDIR/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust --encoding=UTF8 --no-instructions >&2
    cat >>"$PGDATA_DIR/postgresql.conf" <<EOF
# assistant_kit test cluster (scripts/start_postgres.sh)
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDATA_DIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
fi

if ! as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    log "starting on 127.0.0.1:$PGPORT"
    as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 \
        -o "-p $PGPORT -h 127.0.0.1 -k $PGDATA_DIR" start >&2 || {
        log "the server did not start; its log:"
        tail -n 30 "$PGDATA_DIR/server.log" >&2 || true
        exit 1
    }
fi

PSQL=("$BINDIR/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
for _ in $(seq 1 100); do
    "${PSQL[@]}" -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
done
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    log "creating database $DB_NAME"
    "${PSQL[@]}" -c "CREATE DATABASE \"$DB_NAME\"" >&2
fi

echo "postgresql://postgres@127.0.0.1:$PGPORT/$DB_NAME"
