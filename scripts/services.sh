#!/usr/bin/env bash
# Makes sure the services the tests need are up: PostgreSQL on 127.0.0.1:5432.
# Starts the local cluster if it is installed but stopped. Under CI=true a PostgreSQL
# that cannot be reached is an error; elsewhere the PostgreSQL tests skip with a warning.
set -uo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; }

if ! pg_up; then
  if [ -d /etc/postgresql ]; then
    for v in /etc/postgresql/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start 2>/dev/null || true
    done
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if pg_up; then
  echo "services: PostgreSQL is up on 127.0.0.1:5432"
elif [ "${CI:-}" = "true" ]; then
  echo "services: PostgreSQL is not reachable on 127.0.0.1:5432 and CI=true" >&2
  exit 1
else
  echo "services: PostgreSQL is not reachable; its tests will skip" >&2
fi
