"""`python -m conformance.perf`: the query gate (RB-PERF-GATE), as `scripts/benchmark_queries.py` and
`runbook-bench` run it; a game day runs it this way in a process of its own."""

import sys

from conformance.perf.queries import main

if __name__ == "__main__":
    sys.exit(main())
