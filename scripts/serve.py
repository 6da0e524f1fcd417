"""`python scripts/serve.py …`: the runbook's spelling of
`python -m conformance.serve` (`make serve`, `make smoke`)."""

import sys

from conformance.serve import main

if __name__ == "__main__":
    sys.exit(main())
