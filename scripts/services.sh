#!/usr/bin/env bash
# Local PostgreSQL and Redis for development and tests, with no Docker.
#
#   scripts/services.sh start [postgres|redis|test-redis|browser ...]   start what is not running (default: postgres redis);
#                                                                `browser` installs Debian's Chromium for the browser tests,
#                                                                `cli-tools` curl and jq for the README walkthrough test
#   scripts/services.sh stop [postgres|redis|test-redis ...]     stop them (default: all three; test-redis is the one on
#                                                                TEST_REDIS_PORT, as for start)
#   scripts/services.sh status
#
# Idempotent: a server that already answers is left alone; a stale pid file never blocks a start.
# PostgreSQL is skipped when DATABASE_URL is set, Redis when REDIS_URL is set (test-redis: TEST_REDIS_URL).
# Everything listens on 127.0.0.1 only. initdb refuses to run as root, so as root the cluster runs as the
# `postgres` user, in a short directory that user owns (a checkout under a 0700 home is out of its reach).
# The cluster is durable (fsync, synchronous_commit, full_page_writes on): `make run` keeps answered approvals
# through a power cut. A cluster an earlier version of this script made with them off is fixed at the next start,
# running or not. The test suite turns synchronous_commit off for its own connections only (nija/settings/test.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var"
PG_PORT="${PG_PORT:-54329}"
REDIS_PORT="${REDIS_PORT:-63799}"
TEST_REDIS_PORT="${TEST_REDIS_PORT:-63800}"
DB_NAME=nija
DB_USER=nija

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  # Installs Debian packages as root; otherwise says exactly what to install.
  local what="$1"; shift
  if is_root && command -v apt-get >/dev/null; then
    log "$what is missing: installing $* with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    die "$what is missing. Install it (Debian/Ubuntu: sudo apt-get install $*) or set the URL variable to a running server."
  fi
}

# ---------------------------------------------------------------- PostgreSQL
pg_bindir() {
  local dir
  if command -v pg_ctl >/dev/null; then dirname "$(readlink -f "$(command -v pg_ctl)")"; return; fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return; }
  done
  return 1
}

pg_home() {
  # Where the cluster lives: var/postgres, or as root a short path owned by `postgres` (var/postgres links to it).
  if is_root; then
    local id; id=$(printf '%s' "$ROOT" | sha1sum | cut -c1-8)
    echo "/var/lib/postgresql/nija-$id"
  else
    echo "$VAR/postgres"
  fi
}

as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_running() { local bin; bin=$(pg_bindir) && as_pg "$bin/pg_ctl" status -D "$(pg_home)/data" >/dev/null 2>&1; }
# Something already serving the port (this checkout's cluster, or another checkout's) is used as it is.
pg_answering() { local bin; bin=$(pg_bindir) && "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

pg_init() {
  local bin="$1" home="$2"
  mkdir -p "$home"
  if is_root; then
    getent passwd postgres >/dev/null || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    chown postgres: "$(dirname "$home")" "$home"
    ln -sfn "$home" "$VAR/postgres"
  fi
  log "initdb into $home/data"
  as_pg "$bin/initdb" -D "$home/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
  cat >>"$home/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$home'
max_connections = 200
CONF
  # Local development cluster: only loopback and the socket in a directory its owner controls.
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$home/data/pg_hba.conf"
}

# Settings no cluster of ours runs without.
DURABILITY="fsync synchronous_commit full_page_writes"

pg_conf_durable() {
  # Drops the lines of a cluster's postgresql.conf that set a durability setting (their default is on).
  local conf="$1/data/postgresql.conf"
  as_pg sed -i -E "/^[[:space:]]*(${DURABILITY// /|})[[:space:]]*=/d" "$conf"
}

pg_not_durable() {
  "$@" -c "SELECT string_agg(name, ' ' ORDER BY name) FROM pg_settings
           WHERE name = ANY(string_to_array('$DURABILITY', ' ')) AND setting <> 'on'"
}

pg_durable() {
  # Turns on the running server's durability settings that are off (ALTER SYSTEM and a reload: all three take
  # effect on reload, no restart); dies if they stay off. Works on any cluster on the port, ours or not.
  local psql=("$@") off name
  off=$(pg_not_durable "${psql[@]}")
  [ -z "$off" ] && return
  log "turning on $off (the cluster was not durable)"
  for name in $off; do "${psql[@]}" -c "ALTER SYSTEM SET $name = on" >/dev/null; done
  "${psql[@]}" -c "SELECT pg_reload_conf()" >/dev/null
  for _ in $(seq 50); do
    off=$(pg_not_durable "${psql[@]}")
    [ -z "$off" ] && return
    sleep 0.1
  done
  die "PostgreSQL on 127.0.0.1:$PG_PORT still runs with $off off"
}

start_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then log "DATABASE_URL is set: not starting a local PostgreSQL"; return; fi
  local bin home
  bin=$(pg_bindir) || { apt_install PostgreSQL postgresql; bin=$(pg_bindir) || die "pg_ctl not found after install"; }
  home=$(pg_home)
  mkdir -p "$VAR"
  if pg_answering; then log "PostgreSQL already running on 127.0.0.1:$PG_PORT"; else
    if [ -f "$home/data/PG_VERSION" ]; then pg_conf_durable "$home"; else pg_init "$bin" "$home"; fi
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    # pg_ctl checks a leftover postmaster.pid itself: a pid that is no longer a postmaster does not block.
    as_pg "$bin/pg_ctl" start -D "$home/data" -l "$home/postgres.log" -w -t 60 -o "-p $PG_PORT" >/dev/null \
      || { tail -20 "$home/postgres.log" >&2; die "PostgreSQL did not start"; }
  fi
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qtA)
  pg_durable "${psql[@]}"
  if [ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'")" ]; then
    "${psql[@]}" -c "CREATE ROLE $DB_USER LOGIN CREATEDB" >/dev/null
  fi
  if [ -z "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'")" ]; then
    "${psql[@]}" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null
  fi
}

stop_postgres() {
  local bin; bin=$(pg_bindir) || return 0
  if pg_running; then log "stopping PostgreSQL"; as_pg "$bin/pg_ctl" stop -D "$(pg_home)/data" -m fast -w >/dev/null; fi
}

# ---------------------------------------------------------------- Redis
redis_up() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

start_redis_on() {
  local port="$1" dir="$2" persist="$3"
  command -v redis-server >/dev/null || apt_install Redis redis-server
  if redis_up "$port"; then log "Redis already running on 127.0.0.1:$port"; return; fi
  mkdir -p "$dir"
  rm -f "$dir/redis.pid"  # stale pid file from a killed server
  log "starting Redis on 127.0.0.1:$port"
  local save=(--save "")
  [ "$persist" = yes ] && save=(--save "60 1000")
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" --appendonly no "${save[@]}" >/dev/null
  for _ in $(seq 50); do redis_up "$port" && return; sleep 0.1; done
  die "Redis did not start on port $port (see $dir/redis.log)"
}

start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then log "REDIS_URL is set: not starting a local Redis"; return; fi
  start_redis_on "$REDIS_PORT" "$VAR/redis" yes
}

start_test_redis() {
  if [ -n "${TEST_REDIS_URL:-}" ]; then log "TEST_REDIS_URL is set: not starting the test Redis"; return; fi
  start_redis_on "$TEST_REDIS_PORT" "$VAR/redis-test-$TEST_REDIS_PORT" no
}

stop_redis_on() {
  local port="$1"
  if command -v redis-cli >/dev/null && redis_up "$port"; then
    log "stopping Redis on port $port"; redis-cli -h 127.0.0.1 -p "$port" shutdown >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------- Browser (the browser tests drive it)
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

ensure_browser() {
  if [ -x "$CHROMIUM" ]; then return; fi
  apt_install Chromium chromium
  [ -x "$CHROMIUM" ] || die "Chromium is not at $CHROMIUM after install"
}

# The README walkthrough's tools (tests/docs/test_readme_walkthrough.py runs its curl blocks, which use jq).
ensure_cli_tools() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v jq >/dev/null || missing+=(jq)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[*]}" "${missing[@]}"
}

# ---------------------------------------------------------------- main
cmd="${1:-start}"; shift || true
case "$cmd" in
  start)
    [ $# -gt 0 ] || set -- postgres redis
    for what in "$@"; do
      case "$what" in
        postgres) start_postgres ;;
        redis) start_redis ;;
        test-redis) start_test_redis ;;
        browser) ensure_browser ;;
        cli-tools) ensure_cli_tools ;;
        *) die "unknown service: $what" ;;
      esac
    done ;;
  stop)
    # Each name stops that service alone (`stop test-redis` used to stop everything: the development Redis too).
    [ $# -gt 0 ] || set -- postgres redis test-redis
    for what in "$@"; do
      case "$what" in
        postgres) stop_postgres ;;
        redis) stop_redis_on "$REDIS_PORT" ;;
        test-redis) stop_redis_on "$TEST_REDIS_PORT" ;;
        *) die "unknown service: $what" ;;
      esac
    done ;;
  status)
    pg_running && echo "postgres: running on 127.0.0.1:$PG_PORT" || echo "postgres: stopped"
    redis_up "$REDIS_PORT" && echo "redis: running on 127.0.0.1:$REDIS_PORT" || echo "redis: stopped"
    redis_up "$TEST_REDIS_PORT" && echo "test-redis: running on 127.0.0.1:$TEST_REDIS_PORT" || echo "test-redis: stopped" ;;
  *) die "usage: $0 start [postgres|redis|test-redis|browser|cli-tools]... | stop [postgres|redis|test-redis]... | status" ;;
esac
