# A stand-in for postgres:15, built from Debian's postgresql-15 by scripts/prepare_docker.py for machines that
# reach no container registry. Its entrypoint honours the official image's interface as far as this project
# uses it: POSTGRES_PASSWORD (required), POSTGRES_USER, POSTGRES_DB, POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD, PGDATA; port 5432; pg_isready; runs as the postgres user; SIGINT stops it fast.
ARG BASE=runbook-local/debian:bookworm
FROM ${BASE}

ENV LANG=C.UTF-8 PG_MAJOR=15
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH PGDATA=/var/lib/postgresql/data
RUN mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p "$PGDATA" /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 700 "$PGDATA" && chmod 2777 /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
