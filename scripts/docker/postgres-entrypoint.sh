#!/bin/sh
# Entry point of the docker target's PostgreSQL image: initdb on first start, then the server in the
# foreground with the arguments given (port, settings). Like the sandbox's embedded server: the superuser
# is trusted on the socket and on 127.0.0.1; every other role must give its password (SCRAM).
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres --no-locale -E UTF8 --auth=trust --no-sync >/dev/null
  printf '%s\n' "local all postgres trust" "host all postgres 127.0.0.1/32 trust" \
    "local all all scram-sha-256" "host all all 127.0.0.1/32 scram-sha-256" > "$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" "$@"
