# The Prometheus of docker-compose.chaos.yml: Debian's `prometheus` package (2.42 on bookworm, the same
# Prometheus the throwaway drills run, chaos/drills/prometheus.py), scraping every API replica found by DNS and
# evaluating the alert rules the service ships (service/alerts/, mounted read-only at /etc/prometheus/rules).
#
# BASE_IMAGE is any Debian bookworm image: the public debian:bookworm-slim, or the stand-in
# scripts/prepare_docker.py builds from Debian's packages (deploy/chaos/compose.ci.yml).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title=executable-runbook-prometheus \
      org.opencontainers.image.description="Prometheus for the chaos overlay (Debian's package)"

RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o prometheus -g prometheus -m 0750 /prometheus \
    && install -d -m 0755 /etc/prometheus/rules
COPY prometheus.yml /etc/prometheus/prometheus.yml.in
COPY prometheus-entrypoint.sh /usr/local/bin/prometheus-entrypoint
# Refuse to build a configuration Prometheus would refuse to run (with an empty rules file in the mount's place).
RUN chmod 0755 /usr/local/bin/prometheus-entrypoint \
    && printf 'groups: []\n' > /tmp/check.rules.yml \
    && sed 's|/etc/prometheus/rules/@RULES@|/tmp/check.rules.yml|' /etc/prometheus/prometheus.yml.in > /tmp/check.yml \
    && promtool check config /tmp/check.yml \
    && rm /tmp/check.yml /tmp/check.rules.yml

USER prometheus
WORKDIR /prometheus
# The TSDB (a volume in docker-compose.chaos.yml; a new volume starts owned by prometheus, as this directory).
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["prometheus-entrypoint"]
