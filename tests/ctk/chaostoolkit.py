"""Chaos Toolkit as its users run it: the `chaos` command of .venv-ctk (`make setup` installs chaostoolkit,
chaostoolkit-lib and chaostoolkit-toxiproxy there, pinned in requirements/chaostoolkit.txt)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CTK_BIN = REPO / ".venv-ctk" / "bin"
RUN_TIMEOUT_S = 240


def ctk_command(name: str = "chaos") -> Path:
    """A command of .venv-ctk; a missing one fails the test (never a skip): the round trip is the feature."""
    command = CTK_BIN / name
    if not command.exists():
        pytest.fail(f"{command} is missing: run make setup (it installs requirements/chaostoolkit.txt)", pytrace=False)
    return command


@dataclass
class CtkRun:
    returncode: int
    journal: dict[str, Any]
    output: str


def run_experiment(experiment: Path, workdir: Path, env: dict[str, str]) -> CtkRun:
    """`chaos --no-version-check run --journal-path J EXPERIMENT` with only `env` besides PATH and HOME."""
    journal = workdir / f"{experiment.stem}-journal.json"
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), **env}
    done = subprocess.run(
        [str(ctk_command()), "--no-version-check", "run", "--journal-path", str(journal), str(experiment)],
        cwd=workdir,  # chaostoolkit writes chaostoolkit.log into its working directory
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    output = done.stdout[-6000:] + done.stderr[-6000:]
    assert journal.exists(), f"chaos run wrote no journal (exit {done.returncode}):\n{output}"
    return CtkRun(done.returncode, json.loads(journal.read_text()), output)


def ctk_python(code: str, *args: str) -> str:
    """Run Python in .venv-ctk (where none of our code is importable) and return its stdout."""
    done = subprocess.run(
        [str(ctk_command("python")), "-c", code, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout
