"""The runbook's performance-regression gate (성능 회귀 점검, RB-PERF-GATE): time the event API's query suite.

    BENCH_PROFILE=staging BENCH_FAIL_THRESHOLD_MS=250 BENCH_FAIL_P95_THRESHOLD_MS=400 \\
        python scripts/benchmark_queries.py

Profiles, the suite, the output and the exit statuses: `--help`, or conformance/perf/queries.py.
"""

from __future__ import annotations

import sys

from conformance.perf.queries import main

if __name__ == "__main__":
    sys.exit(main())
