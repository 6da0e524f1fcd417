# The events API (python -m service under hypercorn), as docker-compose.prod.yml and the Docker stack run it.
#
#   docker build -t executable-runbook .
#   docker build --build-arg BASE_IMAGE=runbook-local/python:3.11-slim -t executable-runbook .   # no registry
#
# BASE_IMAGE is any Debian-based image with CPython 3.11 and the venv module: the public python:3.11-slim, or
# the stand-in scripts/prepare_docker.py builds from Debian's packages. The same image runs the one-shot
# migration (`python -m alembic upgrade head`, then `python -m migrations.api_role`, which keeps the API's own
# database URL in /var/lib/runbook/credentials: an empty directory of uid 10001, mode 0700, that a named volume
# mounted there starts as) and the fault proxy of the Docker stack (`python -m chaos.proxy`).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title=executable-runbook \
      org.opencontainers.image.description="The events API of the executable runbook (python -m service)"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Dependencies first, from requirements/service.txt alone: this layer is rebuilt only when they change.
COPY pyproject.toml /tmp/build/
COPY requirements /tmp/build/requirements
RUN python3 -m venv /opt/venv \
    && pip install --quiet -r /tmp/build/requirements/service.txt 'setuptools>=69'

# The project itself (service, and chaos for the fault proxy), installed into the venv without dependencies.
COPY README.md /tmp/build/
COPY service /tmp/build/service
COPY chaos /tmp/build/chaos
RUN pip install --quiet --no-deps --no-build-isolation /tmp/build \
    && rm -rf /tmp/build \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/runbook/credentials

# What `python -m service` and `python -m alembic` read from the working directory.
WORKDIR /app
COPY alembic.ini hypercorn.toml /app/
COPY migrations /app/migrations

USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2).status != 200)"]
# hypercorn.toml binds 127.0.0.1 (right for a host); inside a container the API listens on every interface and
# the port is published by whoever runs it (compose publishes it on 127.0.0.1 only).
CMD ["python", "-m", "service", "--bind", "0.0.0.0:8000"]
