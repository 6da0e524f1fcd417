#!/bin/sh
# Start Prometheus with the rules file named by PROMETHEUS_RULES (a file of /etc/prometheus/rules, the
# service's service/alerts/ mounted read-only): the configuration is written to /tmp (the root filesystem is
# read-only) and Prometheus replaces this shell, so it gets the container's signals.
set -eu
rules="${PROMETHEUS_RULES:-events-api.rules.yml}"
case "$rules" in
    */* | .* | "") echo "prometheus-entrypoint: PROMETHEUS_RULES must be a file name in /etc/prometheus/rules, got '$rules'" >&2; exit 2 ;;
esac
if [ ! -f "/etc/prometheus/rules/$rules" ]; then
    echo "prometheus-entrypoint: /etc/prometheus/rules/$rules does not exist (PROMETHEUS_RULES); there are:" >&2
    ls /etc/prometheus/rules >&2 || true
    exit 2
fi
sed "s|@RULES@|$rules|" /etc/prometheus/prometheus.yml.in > /tmp/prometheus.yml
exec prometheus \
    --config.file=/tmp/prometheus.yml \
    --storage.tsdb.path=/prometheus \
    --storage.tsdb.retention.time="${PROMETHEUS_RETENTION:-24h}" \
    --web.listen-address=0.0.0.0:9090 \
    --log.level=warn \
    "$@"
