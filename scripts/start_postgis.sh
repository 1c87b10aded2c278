#!/usr/bin/env bash
# Start (or reuse) a throw-away PostgreSQL + PostGIS cluster on a loopback port for the tests.
#
#   bash scripts/start_postgis.sh [start]   start or reuse; prints the DSN on stdout (only line)
#   bash scripts/start_postgis.sh stop      stop the cluster and delete its folder (unless a
#                                           test run still holds a lock on "$MUJUN_PG_DIR.users")
#   bash scripts/start_postgis.sh status    exit 0 when the cluster answers, 1 otherwise
#
# The DSN is also written to "$MUJUN_PG_DIR/dsn"; use it as
#   export MUJUN_TEST_DSN=$(bash scripts/start_postgis.sh)
#
# Settings (environment): MUJUN_PG_PORT (55432), MUJUN_PG_DIR (${TMPDIR:-/tmp}/mujun-postgis-PORT),
# MUJUN_PG_BINDIR (newest /usr/lib/postgresql/*/bin that has PostGIS).
#
# The cluster listens on 127.0.0.1 only. Superuser `mujun` logs in without a password
# (trust, loopback only); role `mujun_pw` (password `mujun-test-only`, scram-sha-256) lets the
# tests check that a password taken from PGPASSWORD / .pgpass works. Durability is off (fsync):
# this cluster is for tests, never for data anyone keeps.
#
# Needs the Debian packages `postgresql` and `postgresql-NN-postgis-3`. PostgreSQL refuses
# to run as root, so as root the cluster belongs to the `postgres` system user (runuser);
# as any other user it belongs to that user.
set -euo pipefail

PORT="${MUJUN_PG_PORT:-55432}"
ROOT="${MUJUN_PG_DIR:-${TMPDIR:-/tmp}/mujun-postgis-${PORT}}"
DATA="$ROOT/data"
DB=mujun_test
SUPERUSER=mujun
PW_ROLE=mujun_pw
PW_ROLE_PASSWORD=mujun-test-only
DSN="postgresql://${SUPERUSER}@127.0.0.1:${PORT}/${DB}"
ACTION="${1:-start}"

# the caller's libpq settings must not redirect this script's own connections
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGOPTIONS PGDATA

say() { echo "start_postgis: $*" >&2; }
die() { say "$*"; exit "${2:-1}"; }

find_bindir() {
  if [ -n "${MUJUN_PG_BINDIR:-}" ]; then echo "$MUJUN_PG_BINDIR"; return; fi
  local d ver
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    ver="$(basename "$(dirname "$d")")"
    if [ -x "$d/initdb" ] && [ -f "/usr/share/postgresql/$ver/extension/postgis.control" ]; then
      echo "$d"; return
    fi
  done
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  return 1
}

if [ "$(id -u)" -eq 0 ]; then
  OWNER=postgres
  id -u "$OWNER" >/dev/null 2>&1 || die "user 'postgres' is missing; install the Debian package 'postgresql'" 3
  as_owner() { (cd "$ROOT" && runuser -u "$OWNER" -- "$@"); }
else
  OWNER="$(id -un)"
  as_owner() { (cd "$ROOT" && "$@"); }
fi

psql_super() {  # psql_super DBNAME [psql args...]
  local db="$1"; shift
  PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" -d "$db" "$@"
}

answers() {  # the target database answers and has PostGIS
  [ "$(psql_super "$DB" -tA -c "SELECT extname FROM pg_extension WHERE extname = 'postgis'" \
       2>/dev/null)" = postgis ]
}

case "$ACTION" in
  status)
    answers && { echo "$DSN"; exit 0; }
    exit 1
    ;;
  stop)
    # test runs hold a shared lock on $ROOT.users while they use the cluster (tests/test_db.py)
    exec 8>>"$ROOT.users"
    if command -v flock >/dev/null 2>&1 && ! flock -n -x 8; then
      say "not stopping: a test run still uses the cluster"
      exit 0
    fi
    BIN="$(find_bindir)" || die "no PostgreSQL server binaries found" 3
    if [ -f "$DATA/PG_VERSION" ]; then
      as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$ROOT" "$ROOT.lock"
    say "stopped and removed $ROOT"
    exit 0
    ;;
  start) ;;
  *) die "usage: $0 [start|stop|status]" 2 ;;
esac

command -v psql >/dev/null 2>&1 || die "psql not found; install the Debian package 'postgresql-client'" 3
BIN="$(find_bindir)" || die "no PostgreSQL server binaries; install the Debian packages 'postgresql' and 'postgresql-15-postgis-3'" 3
VER="$(basename "$(dirname "$BIN")")"

mkdir -p "$ROOT"
[ "$(id -u)" -eq 0 ] && chown "$OWNER" "$ROOT"
chmod 700 "$ROOT"
# two test runs starting at once must not both run initdb
exec 9>"$ROOT.lock"
if command -v flock >/dev/null 2>&1; then flock -w 120 9 || die "timed out waiting for $ROOT.lock"; fi

if answers; then
  say "reusing the server on 127.0.0.1:$PORT"
else
  if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    if pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
      die "another server listens on 127.0.0.1:$PORT and has no database $DB with PostGIS for user $SUPERUSER; choose another port with MUJUN_PG_PORT" 4
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
      [ -f "/usr/share/postgresql/$VER/extension/postgis.control" ] \
        || die "PostGIS is not installed for PostgreSQL $VER; install the Debian package 'postgresql-$VER-postgis-3'" 3
      say "initdb $DATA (PostgreSQL $VER, owner $OWNER)"
      as_owner "$BIN/initdb" -D "$DATA" -U "$SUPERUSER" -E UTF8 --no-locale --auth=trust >"$ROOT/initdb.log" 2>&1 \
        || { cat "$ROOT/initdb.log" >&2; die "initdb failed"; }
      cat >"$DATA/pg_hba.conf" <<EOF
local all all trust
host all ${PW_ROLE} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
EOF
      cat >>"$DATA/postgresql.conf" <<EOF
# mujun-geo throw-away test cluster
listen_addresses = '127.0.0.1'
port = ${PORT}
unix_socket_directories = '${ROOT}'
max_connections = 30
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    say "starting PostgreSQL $VER on 127.0.0.1:$PORT"
    # 9>&-: the server must not inherit (and so hold forever) the lock
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$ROOT/server.log" -w -t 60 start >/dev/null 9>&- \
      || { tail -n 20 "$ROOT/server.log" >&2 || true; die "the server did not start"; }
  fi
  if [ "$(psql_super postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_super postgres -c "CREATE DATABASE $DB"
  fi
  psql_super "$DB" -c "CREATE EXTENSION IF NOT EXISTS postgis" \
    || die "CREATE EXTENSION postgis failed; install the Debian package 'postgresql-$VER-postgis-3'" 3
  # the password travels on stdin, not on a command line
  psql_super "$DB" >/dev/null <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PW_ROLE}') THEN
    CREATE ROLE ${PW_ROLE} LOGIN;
  END IF;
END \$\$;
ALTER ROLE ${PW_ROLE} PASSWORD '${PW_ROLE_PASSWORD}';
GRANT CREATE, CONNECT ON DATABASE ${DB} TO ${PW_ROLE};
EOF
  answers || die "the server runs but $DB has no PostGIS"
fi

echo "$DSN" >"$ROOT/dsn"
say "ready: export MUJUN_TEST_DSN=$DSN"
echo "$DSN"
