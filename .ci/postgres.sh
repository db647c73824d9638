#!/usr/bin/env bash
# Install (Debian's packages) and start a throw-away PostgreSQL server on loopback for the tests
# that need one, then print the URL they read (NAS_STUDENT_TEST_PG). Idempotent: a server that
# already answers on the port is reused. Usage: export NAS_STUDENT_TEST_PG=$(bash .ci/postgres.sh)
set -euo pipefail
PORT=${NAS_STUDENT_PG_PORT:-54329}
DATA=${NAS_STUDENT_PG_DATA:-/tmp/nas-student-pg}
DB=nas_student_test
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
fi
BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust >/dev/null
  fi
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
fi
as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" \
  | grep -q 1 || as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
echo "postgresql://postgres@127.0.0.1:$PORT/$DB"
