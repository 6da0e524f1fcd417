"""A pytest plugin for the conformance checks (`-p tests.integration.scripts_override`): they run the operator
commands from $CONFORMANCE_SCRIPTS_DIR instead of scripts/, so a test can hand them a deliberately wrong
command and see the checks that judge its verdicts fail (tests/integration/test_operator_verdicts.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import conformance.target


def pytest_configure(config: pytest.Config) -> None:
    directory = os.environ.get("CONFORMANCE_SCRIPTS_DIR")
    if directory:
        conformance.target.SCRIPTS = Path(directory)
