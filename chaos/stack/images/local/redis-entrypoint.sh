#!/bin/sh
# Entrypoint of the local redis:7 stand-in (chaos/stack/images/local/redis.Dockerfile).
set -eu

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
    case " $* " in
        *" --protected-mode "*) ;;
        *) set -- "$@" --protected-mode no ;;
    esac
    if [ "$(id -u)" = 0 ]; then
        chown redis:redis /data 2>/dev/null || true
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi

exec "$@"
