"""A thin alias, kept for the commands already written down: `python -m conformance.perf.paired_cli --baseline REF
...` is `scripts/benchmark_queries.py --baseline REF ...` (conformance/perf/queries.py), whose --help says
everything. The paired run itself lives in conformance/perf/regression.py."""

from __future__ import annotations

import sys

from conformance.perf.queries import main

if __name__ == "__main__":
    sys.exit(main())
