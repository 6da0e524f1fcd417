# A stand-in for python:3.11-slim, built from Debian's own packages by scripts/prepare_docker.py for machines
# that reach no container registry: Debian bookworm's python3 is CPython 3.11.
ARG BASE=runbook-local/debian:bookworm
FROM ${BASE}

ENV LANG=C.UTF-8
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python \
    && python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'
# pip trusts the system certificate store (which includes the machine's own CAs, see prepare_docker.py),
# not only the bundle it ships.
COPY pip.conf /etc/pip.conf
CMD ["python3"]
