"""The name a command was invoked by, for its `--help` and usage lines (argparse's `prog`).

One command has up to three spellings: an installed entry point (`runbook-health`), the runbook's script
(`python scripts/check_runtime_health.py`) and the module (`python -m conformance.operator.health`). argparse's
default, the base name of `sys.argv[0]`, is right for the first two and wrong for the third (`health.py`,
`__main__.py`), so a module run with `-m` is named by its `python -m` spelling instead.

Standard library only: `python3 -m chaos.stack.images.prepare` imports it before anything is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path


def program_name(module: str) -> str:
    """How to show the command whose module is `module` (e.g. "conformance.operator.health")."""
    invoked = sys.argv[0] if sys.argv else ""
    if not invoked or invoked == "-c":  # embedded (python -c, an interpreter without argv)
        return f"python -m {module}"
    path = Path(invoked)
    # `python -m pkg.mod` sets argv[0] to the module's file, which sits in a package (beside an __init__.py);
    # entry points and the scripts/ wrappers do not.
    if path.suffix == ".py" and (path.parent / "__init__.py").exists():
        return f"python -m {module}"
    return path.name
