# Every target sets up what it needs: a fresh clone needs only `make gameday` or `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CTK_VENV := .venv-ctk
CTK_STAMP := $(CTK_VENV)/.installed-stamp

.PHONY: setup system-deps test lint typecheck pytest serve smoke gameday conformance drills gates migrate clean \
	docker-prepare docker-test gameday-deployment perf-gate perf-regression bench load bench-micro bench-pipeline \
	bench-ingest

$(STAMP): pyproject.toml $(wildcard requirements/*.txt)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# Chaos Toolkit in a virtualenv of its own, as users run it: the exported experiments' round trip runs there.
$(CTK_STAMP): requirements/chaostoolkit.txt
	@test -x $(CTK_VENV)/bin/python || $(PYTHON) -m venv $(CTK_VENV)
	$(CTK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/chaostoolkit.txt
	@touch $(CTK_STAMP)

setup: $(STAMP) $(CTK_STAMP) system-deps ## create .venv (and .venv-ctk), install the project with its dev tools, and the servers it runs

# Debian packages the harnesses run for real: PostgreSQL server binaries, redis-server, Prometheus (+promtool),
# wrk (the load generator of the pipeline and ingest benchmarks), and Chromium with a Korean font (the HTML report's
# browser check: without one the report's Korean text is drawn as boxes).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	fc-list :lang=ko 2>/dev/null | grep -q . || missing="$$missing fonts-nanum"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing="$$missing prometheus"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null \
		|| { echo "could not install$$missing (needs root and Debian's apt)"; exit 1; }; \
	fi

lint: setup ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup ## mypy (strict)
	$(BIN)/mypy

pytest: setup ## the test suite against real PostgreSQL and Redis
	$(BIN)/pytest --durations=15

test: lint typecheck pytest ## everything CI runs

serve: setup ## the API on 127.0.0.1:8000 (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)
	$(BIN)/python scripts/serve.py

smoke: setup ## start the embedded stack, smoke-test it, stop
	$(BIN)/python scripts/serve.py --smoke --port 0

gameday: setup ## the game day: conformance suite + every drill on throwaway stacks, then one summary
	$(BIN)/python scripts/gameday.py --report-dir reports

conformance: setup ## every requirement's checks against the embedded stack, with the requirement matrix
	$(BIN)/python -m conformance --report-dir reports/conformance

drills: setup ## every game-day drill (reports/drills)
	$(BIN)/python -m chaos run all --report-dir reports/drills

gates: setup ## every quality gate of docs/QUALITY_GATES.md, in order
	$(BIN)/python -m conformance.gates run

perf-gate: setup ## RB-PERF-GATE: the query suite (ci profile) against the runbook's 250 ms mean / 400 ms p95
	BENCH_PROFILE=$${BENCH_PROFILE:-ci} BENCH_FAIL_THRESHOLD_MS=$${BENCH_FAIL_THRESHOLD_MS:-250} \
	BENCH_FAIL_P95_THRESHOLD_MS=$${BENCH_FAIL_P95_THRESHOLD_MS:-400} $(BIN)/python scripts/benchmark_queries.py --report-dir reports/perf

perf-regression: setup ## RB-PERF-REGRESSION: this checkout beside BASELINE (default HEAD~1) in one paired run (ci profile)
	BENCH_PROFILE=$${BENCH_PROFILE:-ci} $(BIN)/python scripts/benchmark_queries.py --baseline $${BASELINE:-HEAD~1} \
		--report-dir reports/perf-regression

bench: setup ## the local profile: 1,000,000 events over 30 days, 32 clients
	BENCH_PROFILE=local $(BIN)/python scripts/benchmark_queries.py

load: setup ## RB-PERF-LOAD: 30 s of headless Locust (mixed traffic) against the embedded stack
	$(BIN)/python scripts/run_locust.py --users 20 --seconds 30

bench-micro: setup ## RB-PERF-MICRO: hot paths with pytest-benchmark against the committed baseline
	$(BIN)/pytest tests/perf/benchmarks -p no:cacheprovider --benchmark-storage=file://tests/perf/benchmarks/baseline \
		--benchmark-compare=0001 --benchmark-compare-fail=median:50%

bench-pipeline: setup ## request pipeline tax: authenticated get-by-id vs a bare Quart route (wrk)
	$(BIN)/python scripts/bench_pipeline.py

bench-ingest: setup ## HTTP ingest in batches of 500 vs raw COPY (wrk)
	$(BIN)/python scripts/bench_ingest.py

docker-prepare: setup ## Docker engine + images built from Debian's packages (root; no registry needed)
	$(BIN)/python scripts/prepare_docker.py

docker-test: docker-prepare ## the Docker stage: Docker stack tests, the prod compose file for real, conformance and drills on containers
	RB_DOCKER_TESTS=1 $(BIN)/pytest -m docker tests -p no:cacheprovider
	$(BIN)/python -m conformance --backend docker -k test_ --report-dir reports/conformance-docker
	$(BIN)/python -m chaos run db-down db-hung redis-down overload-spike --backend docker --report-dir reports/drills-docker

gameday-deployment: docker-prepare ## the game day on a deployment: prod compose + chaos overlay up, every applicable drill (fleet drills too), down
	$(BIN)/python -m chaos deployment gameday --report-dir reports/gameday-deployment

migrate: setup ## python -m alembic upgrade head against DATABASE_URL
	$(BIN)/python -m alembic upgrade head

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
