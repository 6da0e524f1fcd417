"""The performance harness behind the perf commands in scripts/ (benchmark_queries.py, run_locust.py,
locustfile.py, seed_events.py, bench_ingest.py, bench_pipeline.py): the runbook's thresholds, where load may
go, the seeded dataset, the embedded stack, the load generators and the query suite (RB-PERF-GATE,
RB-PERF-LOAD).

Importing this package imports nothing: the locustfile loads parts of it under gevent.
"""
