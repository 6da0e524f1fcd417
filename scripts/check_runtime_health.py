"""`python scripts/check_runtime_health.py …`: the runbook's spelling of
`python -m conformance.operator.health` (same arguments, output and exit codes)."""

import sys

from conformance.operator.health import main

if __name__ == "__main__":
    sys.exit(main())
