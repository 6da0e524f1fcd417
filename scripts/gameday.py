"""`python scripts/gameday.py …` (`make gameday`): the runbook's spelling of `runbook-gameday`
(chaos/cli/gameday_command.py; same arguments, output and exit codes)."""

import sys

from chaos.cli.gameday_command import main

if __name__ == "__main__":
    sys.exit(main())
