"""`python scripts/check_migration_rollback.py …`: the runbook's spelling of
`python -m conformance.operator.migration_rollback` (same arguments, output and exit codes)."""

import sys

from conformance.operator.migration_rollback import main

if __name__ == "__main__":
    sys.exit(main())
