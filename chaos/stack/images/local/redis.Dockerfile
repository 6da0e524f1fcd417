# A stand-in for redis:7, built from Debian's redis-server (7.0) by scripts/prepare_docker.py for machines
# that reach no container registry. Like the official image: `redis-server` listens on every interface of
# the container with protected mode off (the container network decides who connects), runs as the redis
# user in /data, and `redis-cli` is there for health checks.
ARG BASE=runbook-local/debian:bookworm
FROM ${BASE}

RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
