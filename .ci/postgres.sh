#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the distributed test and print its URL, nothing else, on stdout:
#   postgresql+psycopg2://hpsearch:PASSWORD@127.0.0.1:PORT/hpsearch
# Needs Debian's postgresql package. As root the server runs as the 'postgres' user (PostgreSQL
# refuses to run as root). It listens on 127.0.0.1 only, on a free port, with its data in a fresh
# temporary folder; stop it with the pg_ctl command this script prints on stderr.
# Exits non-zero, saying why on stderr, when it cannot.
set -euo pipefail

say() { echo "postgres.sh: $*" >&2; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  say "PostgreSQL is not installed (apt-get install postgresql)"
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    say "no 'postgres' user to run the server as"
    exit 1
  fi
  as_server() { runuser -u postgres -- "$@"; }
  owner=postgres
else
  as_server() { "$@"; }
  owner=$(id -un)
fi

datadir=$(mktemp -d "${TMPDIR:-/tmp}/hpsearch-pg.XXXXXX")
chown "$owner" "$datadir"
chmod 700 "$datadir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')

# Local socket connections (for setting up) trust the OS user; TCP needs the password.
as_server "$bindir/initdb" -D "$datadir/data" -U postgres -E UTF8 \
  --auth-local=trust --auth-host=scram-sha-256 >"$datadir/initdb.log" 2>&1 \
  || { say "initdb failed:"; tail -n 20 "$datadir/initdb.log" >&2; exit 1; }

# 200 connections: each worker holds a small pool, and tests start several workers at once.
if ! as_server "$bindir/pg_ctl" -D "$datadir/data" -l "$datadir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $datadir -c max_connections=200 -c fsync=off" \
  start >/dev/null; then
  say "the server did not start:"
  tail -n 20 "$datadir/server.log" >&2 || true
  exit 1
fi

psql_admin() { as_server "$bindir/psql" -h "$datadir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
psql_admin -d postgres -c "CREATE ROLE hpsearch LOGIN PASSWORD '$password'" >&2
psql_admin -d postgres -c "CREATE DATABASE hpsearch OWNER hpsearch" >&2

stop="$bindir/pg_ctl -D $datadir/data stop"
[ "$(id -u)" = 0 ] && stop="runuser -u postgres -- $stop"
say "PostgreSQL on 127.0.0.1:$port (data in $datadir); stop it with: $stop"
echo "postgresql+psycopg2://hpsearch:$password@127.0.0.1:$port/hpsearch"
