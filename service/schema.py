"""Which database schema this release serves (RB-HEALTH-SCHEMA).

This release expects the alembic head of the migration scripts shipped with its code: `migrations/` beside
the `service` package in a checkout (a release drill's worktree included), or `./migrations` in the working
directory, where the image puts them (`/app/migrations`). The scripts are read once, when the app is built,
with alembic's `ScriptDirectory`: nothing is run, no database is touched and alembic's `env.py` (which would
import the service) is not loaded, so the expectation is always the code's own head and needs no constant to
keep in step.

A database at any other revision makes readiness fail its `schema` check, except where it is declared
compatible, in one of two ways:

- by the schema itself: a migration declares `expand_only = True` when it only adds what earlier code does
  not use (a nullable column, a table, an index, a trigger keeping derived data exact), so every earlier
  release serves the schema after it. alembic's `env.py` records, with each migration run, which earlier
  revisions the database's schema still serves (`record_still_serves`: a JSON comment on `alembic_version`,
  written in the migration's transaction and readable by every role). A release at 0003 then serves a
  database at 0004 that a newer release migrated, whose 0004 is expand-only — the usual "migrate, then roll
  out" order, and "redeploy the previous image" as a rollback, both keep it in rotation;
- by the deployment: `SCHEMA_COMPATIBLE_REVISIONS` lists revisions it declares this release serves anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory

# The comment on alembic_version is small and written only by migrations; a longer one is not ours to parse.
MAX_SCHEMA_COMMENT_CHARS = 4096

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
MIGRATE_HINT = "run `python -m alembic upgrade head` with this release's DATABASE_URL"


class SchemaScriptsError(RuntimeError):
    """This release's migration scripts cannot be found or have no single head."""


def migrations_directory() -> Path:
    """Where this release's migration scripts are: beside the package, else in the working directory."""
    candidates = [PACKAGE_ROOT / "migrations", Path.cwd() / "migrations"]
    for candidate in candidates:
        if (candidate / "versions").is_dir():
            return candidate
    looked_in = ", ".join(str(candidate) for candidate in candidates)
    raise SchemaScriptsError(f"no alembic migration scripts shipped with this release (looked in {looked_in})")


@dataclass(frozen=True, slots=True)
class SchemaExpectation:
    """The revision this release expects, the revisions of its history, and those declared compatible."""

    expected: str
    history: frozenset[str]
    compatible: frozenset[str] = frozenset()

    def problem(self, revision: str | None, still_serves: frozenset[str] = frozenset()) -> str | None:
        """None when this release serves a database at `revision` (whose schema declares it still serves the
        releases at `still_serves`); otherwise why not, naming both revisions."""
        if revision == self.expected or revision in self.compatible or self.expected in still_serves:
            return None
        if revision is None:
            return f"database at None (unmigrated), this release expects {self.expected}: {MIGRATE_HINT}"
        if revision in self.history:
            return f"database at {revision} (behind), this release expects {self.expected}: {MIGRATE_HINT}"
        declared = ", ".join(sorted(self.compatible)) or "none declared in SCHEMA_COMPATIBLE_REVISIONS"
        served = ", ".join(sorted(still_serves)) or "none"
        return (
            f"database at {revision} (not in this release's migrations: ahead of it or another branch), this "
            f"release expects {self.expected} (compatible: {declared}; releases the schema still serves: {served})"
        )


def load_expectation(compatible: Iterable[str] = (), directory: Path | None = None) -> SchemaExpectation:
    """Read the head and history of this release's migration scripts (once, at start-up)."""
    scripts = ScriptDirectory(str(directory or migrations_directory()))
    heads = scripts.get_heads()
    if len(heads) != 1:
        raise SchemaScriptsError(f"this release's migrations must have exactly one head, found {heads or 'none'}")
    history = frozenset(script.revision for script in scripts.walk_revisions())
    return SchemaExpectation(heads[0], history, frozenset(compatible))


def still_serves(scripts: ScriptDirectory, revision: str | None) -> list[str]:
    """The earlier revisions whose releases serve the schema at `revision`: walking down from it while each
    migration declares `expand_only = True` (a migration that does not declare it counts as not expand-only)."""
    served: list[str] = []
    script = scripts.get_revision(revision) if revision else None
    while script is not None and getattr(script.module, "expand_only", False) is True:
        down = script.down_revision
        if not isinstance(down, str):  # the first revision, or a merge: nothing earlier is one release
            break
        served.append(down)
        script = scripts.get_revision(down)
    return served


def schema_comment(revision: str, served: Iterable[str]) -> str:
    """What `env.py` writes as the comment on alembic_version after a migration run."""
    return json.dumps({"revision": revision, "still_serves": sorted(served)}, separators=(",", ":"))


def read_still_serves(revision: str | None, comment: str | None) -> frozenset[str]:
    """The revisions the database's schema declares it still serves, from the comment on alembic_version;
    nothing when the comment is missing, malformed, oversized, or written for another revision (someone
    stamped the database by hand since)."""
    if revision is None or not comment or len(comment) > MAX_SCHEMA_COMMENT_CHARS:
        return frozenset()
    try:
        recorded = json.loads(comment)
    except ValueError:
        return frozenset()
    if not isinstance(recorded, dict) or recorded.get("revision") != revision:
        return frozenset()
    served = recorded.get("still_serves")
    if not isinstance(served, list):
        return frozenset()
    return frozenset(item for item in served if isinstance(item, str))
