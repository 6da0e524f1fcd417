"""Is `python -m alembic downgrade -1` safe right now? (RB-ROLLBACK-SCHEMA, 롤백 전략: 스키마 롤백)

    python scripts/check_migration_rollback.py                     # the repository's head revision
    DATABASE_URL=postgresql://… python scripts/check_migration_rollback.py   # the revision that database is at
    DATABASE_URL=… python scripts/check_migration_rollback.py --run           # and downgrade if it is safe
    DATABASE_URL=… python scripts/check_migration_rollback.py --run --force-unsafe   # explicit override

The runbook allows a schema rollback only when the migration is explicitly reversible and data-safe. Every
revision in migrations/versions declares both (`downgrade_reversible`, `downgrade_data_safe`); this command
reads the declaration of the revision a downgrade would undo and says whether the downgrade is allowed.
With --run it performs the downgrade only when it is, or with --force-unsafe (say why in the incident
report). Exit status: 0 safe (and done, with --run), 1 refused as unsafe, 2 bad usage or no revision.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.script import Script, ScriptDirectory

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Verdict:
    revision: str
    down_revision: str | None
    reversible: bool
    data_safe: bool
    doc: str

    @property
    def safe(self) -> bool:
        return self.reversible and self.data_safe and self.down_revision is not None


def script_directory(config_path: Path = REPO / "alembic.ini") -> ScriptDirectory:
    return ScriptDirectory.from_config(Config(str(config_path)))


def declaration(script: Script) -> tuple[bool, bool]:
    """A revision's rollback declaration; a revision that does not declare is treated as unsafe."""
    module = script.module
    reversible = getattr(module, "downgrade_reversible", None)
    data_safe = getattr(module, "downgrade_data_safe", None)
    if not isinstance(reversible, bool) or not isinstance(data_safe, bool):
        return False, False
    return reversible, data_safe


def verdict_for(revision: str, scripts: ScriptDirectory) -> Verdict:
    script = scripts.get_revision(revision)
    if script is None:
        raise LookupError(f"revision {revision!r} is not in migrations/versions")
    reversible, data_safe = declaration(script)
    down = script.down_revision if isinstance(script.down_revision, str) or script.down_revision is None else None
    return Verdict(script.revision, down, reversible, data_safe, (script.doc or "").splitlines()[0])


async def _database_revision(url: str) -> str | None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        if not await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            return None
        value = await connection.fetchval("SELECT version_num FROM alembic_version")
        return str(value) if value is not None else None
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="the database to look at (default: $DATABASE_URL; without it, the repository's head)",
    )
    parser.add_argument("--run", action="store_true", help="perform `python -m alembic downgrade -1` if it is safe")
    parser.add_argument(
        "--force-unsafe",
        action="store_true",
        help="with --run: downgrade even though the revision is not declared reversible and data-safe",
    )
    args = parser.parse_args(argv)

    scripts = script_directory()
    if args.database_url:
        current = asyncio.run(_database_revision(args.database_url))
        where = "the database"
    else:
        current = scripts.get_current_head()
        where = "the repository's head"
    if current is None:
        print(f"{where} has no alembic revision: nothing to downgrade", file=sys.stderr)
        return 2
    try:
        verdict = verdict_for(current, scripts)
    except LookupError as error:
        print(f"{error} (the code is older than the database: redeploy the newer release first)", file=sys.stderr)
        return 2
    print(f"revision {verdict.revision} ({where}): {verdict.doc}")
    print(f"  downgrade -1 → {verdict.down_revision or '(base: drops the schema)'}")
    reversible, data_safe = ("yes" if flag else "NO" for flag in (verdict.reversible, verdict.data_safe))
    print(f"  declared reversible: {reversible}; data-safe: {data_safe}")
    print(f"  verdict: {'SAFE' if verdict.safe else 'UNSAFE'} to run `python -m alembic downgrade -1`")
    if not args.run:
        return 0 if verdict.safe else 1
    if not args.database_url:
        print("--run needs a database (DATABASE_URL or --database-url)", file=sys.stderr)
        return 2
    if not verdict.safe and not args.force_unsafe:
        print(
            "REFUSED: the downgrade is not declared reversible and data-safe; "
            "rerun with --force-unsafe only after deciding the data loss is acceptable",
            file=sys.stderr,
        )
        return 1
    if not verdict.safe:
        print("WARNING: downgrading a revision not declared data-safe (--force-unsafe)", file=sys.stderr)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "downgrade", "-1"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": args.database_url},
        check=False,
    )
    return 0 if result.returncode == 0 else result.returncode


if __name__ == "__main__":
    sys.exit(main())
