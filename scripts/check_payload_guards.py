"""`python scripts/check_payload_guards.py …`: the runbook's spelling of
`python -m conformance.operator.payload_guards` (same arguments, output and exit codes)."""

import sys

from conformance.operator.payload_guards import main

if __name__ == "__main__":
    sys.exit(main())
