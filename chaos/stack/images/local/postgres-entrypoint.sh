#!/bin/sh
# Entrypoint of the local postgres:15 stand-in (chaos/stack/images/local/postgres.Dockerfile): initialise PGDATA on the
# first start the way the official image does, then run the server as the postgres user.
set -eu

if [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi

wants_help=""
for arg in "$@"; do
    case "$arg" in
        -'?' | --help | --describe-config | -V | --version) wants_help=yes ;;
    esac
done

if [ "$1" = postgres ] && [ -z "$wants_help" ]; then
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$PGDATA" /var/run/postgresql
        chown postgres:postgres "$PGDATA" /var/run/postgresql
        chmod 700 "$PGDATA"
        exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
    fi
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        POSTGRES_USER="${POSTGRES_USER:-postgres}"
        POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
        auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
        if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
            echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
            echo "       (set POSTGRES_HOST_AUTH_METHOD=trust to allow connections without a password)" >&2
            exit 1
        fi
        pwfile=""
        if [ -n "${POSTGRES_PASSWORD:-}" ]; then
            pwfile="$(mktemp)"
            printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
        fi
        # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words, as in the official image
        initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} --auth-local=trust \
            --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA" >/dev/null
        [ -z "$pwfile" ] || rm -f "$pwfile"
        printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
        printf 'host all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
        if [ "$POSTGRES_DB" != postgres ]; then
            escaped="$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')"
            printf 'CREATE DATABASE "%s";\n' "$escaped" | postgres --single -D "$PGDATA" -j postgres >/dev/null
        fi
        echo "PostgreSQL init process complete; ready for start up."
    fi
fi

exec "$@"
