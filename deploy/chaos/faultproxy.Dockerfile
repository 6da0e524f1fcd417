# The fault proxy of docker-compose.chaos.yml: the project's own TCP proxy with Toxiproxy's HTTP API
# (`python -m chaos.proxy`, chaos/proxy/), between the API replicas and PostgreSQL/Redis. It needs the standard
# library only (uvloop is used when present and is not installed here), so the image is the Python base plus
# the proxy's modules: chaos/proxy and what it imports (chaos/lifecycle.py), nothing of the service.
#
# Built from the repo's root (the .dockerignore there lets chaos/ in). BASE_IMAGE is any image with CPython
# 3.11: the public python:3.11-slim, or the stand-in scripts/prepare_docker.py builds from Debian's packages
# (deploy/chaos/compose.ci.yml).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title=executable-runbook-faultproxy \
      org.opencontainers.image.description="Fault proxy with Toxiproxy's API (python -m chaos.proxy)"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
COPY chaos/__init__.py chaos/lifecycle.py /app/chaos/
COPY chaos/proxy /app/chaos/proxy
# Byte-compiled now (the root filesystem is read-only at run time), and refused when the proxy needs a module
# this image does not have.
RUN python -m compileall -q /app/chaos \
    && python -c "import chaos.proxy.__main__"

# nobody: the proxy writes nothing and binds unprivileged ports.
USER 65534:65534
# 8474: the API; 15432 and 16379: the proxies docker-compose.chaos.yml creates (never published).
EXPOSE 8474 15432 16379
STOPSIGNAL SIGTERM
CMD ["python", "-m", "chaos.proxy", "--help"]
