"""A pytest plugin for the conformance checks (`-p tests.conformance.scripts_override`): they run the operator
commands found in $CONFORMANCE_SCRIPTS_DIR (by their scripts/ names) instead of the real ones, so a test can
hand them a deliberately wrong command and see the checks that judge its verdicts fail
(tests/conformance/test_operator_verdicts.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import conformance.target


def pytest_configure(config: pytest.Config) -> None:
    directory = os.environ.get("CONFORMANCE_SCRIPTS_DIR")
    if directory:
        for script in Path(directory).glob("*.py"):
            conformance.target.OPERATOR_COMMANDS[script.name] = [sys.executable, str(script)]
