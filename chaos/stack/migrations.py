"""Schema migration as the runbook runs it (`python -m alembic upgrade head` from the code root), and the
migration history of a checkout (this one, or a release drill's worktree)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from chaos.lifecycle import ServerError

# The checkout (or installed tree) whose service, migrations and Dockerfile the harness runs.
REPO_ROOT = Path(__file__).resolve().parents[2]


def migrate(database_url: str, target: str = "head", *, direction: str = "upgrade") -> None:
    """`python -m alembic upgrade head` (or downgrade) from the repo root, as the runbook says."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", direction, target],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServerError(f"alembic {direction} {target} failed:\n{result.stderr[-2000:]}")


def alembic_scripts(code_root: Path = REPO_ROOT) -> ScriptDirectory:
    """The migration history of a checkout (this one, or a release's worktree)."""
    config = Config(str(code_root / "alembic.ini"))
    config.set_main_option("script_location", str(code_root / "migrations"))
    return ScriptDirectory.from_config(config)


def head_revision(code_root: Path = REPO_ROOT) -> str:
    head = alembic_scripts(code_root).get_current_head()
    if head is None:
        raise RuntimeError(f"{code_root} has no alembic head")
    return head
