"""Where a piece of evidence comes from: the commit and release of the harness that produced it, and when.

Every harness (conformance, drills, gates) stamps its results with this, so that a requirement matrix can tell
an outcome of this commit from one of another commit, or from last month (conformance.evidence). The commit
is the checkout's `git rev-parse HEAD` (with `dirty` when the work tree has uncommitted changes); an installed
package or the harness image has no checkout, and reads `RUNBOOK_COMMIT` instead (the image bakes it in).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

COMMIT_ENV = "RUNBOOK_COMMIT"
CHECKOUT = Path(__file__).resolve().parent.parent
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Provenance:
    commit: str  # 40 hex digits, or "unknown" outside a checkout without RUNBOOK_COMMIT
    dirty: bool  # the work tree had uncommitted changes: the commit alone does not name what ran
    version: str  # the installed package's version
    at: str  # UTC, ISO 8601, seconds

    @property
    def short_commit(self) -> str:
        return self.commit[:10] + ("+dirty" if self.dirty else "") if self.commit != UNKNOWN else UNKNOWN

    def as_dict(self) -> dict[str, str | bool]:
        return {"commit": self.commit, "dirty": self.dirty, "version": self.version, "at": self.at}


def _git(*args: str) -> str | None:
    if not (CHECKOUT / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", *args], cwd=CHECKOUT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@cache
def _commit() -> tuple[str, bool]:
    from_env = os.environ.get(COMMIT_ENV, "").strip()
    if from_env:
        return from_env, from_env.endswith("+dirty")
    head = _git("rev-parse", "HEAD")
    if head is None:
        return UNKNOWN, False
    status = _git("status", "--porcelain", "--untracked-files=no")
    return head, bool(status)


def _version() -> str:
    try:
        return metadata.version("executable-runbook")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def current(at: datetime | None = None) -> Provenance:
    """The provenance of results produced now (or at `at`) by this process's code."""
    commit, dirty = _commit()
    moment = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0).isoformat()
    return Provenance(commit=commit.removesuffix("+dirty"), dirty=dirty, version=_version(), at=moment)
