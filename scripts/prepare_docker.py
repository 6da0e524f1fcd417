"""`python scripts/prepare_docker.py …`: the runbook's spelling of
`python -m chaos.stack.images.prepare` (`make docker-prepare`)."""

import sys

from chaos.stack.images.prepare import main

if __name__ == "__main__":
    sys.exit(main())
