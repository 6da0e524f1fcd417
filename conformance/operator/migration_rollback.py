"""Is `python -m alembic downgrade -1` safe right now? (RB-ROLLBACK-SCHEMA, RB-OPS-VERDICTS; 롤백 전략: 스키마 롤백)

    python scripts/check_migration_rollback.py                     # the repository's head revision
    DATABASE_URL=postgresql://… python scripts/check_migration_rollback.py   # the revision that database is at
    python scripts/check_migration_rollback.py --database-url-file /run/secrets/database_url   # ... or from a file
    DATABASE_URL=… python scripts/check_migration_rollback.py --run           # and downgrade if it is safe
    DATABASE_URL=… python scripts/check_migration_rollback.py --run --force-unsafe   # explicit override

The runbook allows a schema rollback only when the migration is explicitly reversible and data-safe. Every
revision in migrations/versions declares both (`downgrade_reversible`, `downgrade_data_safe`); this command
reads the declaration of the revision a downgrade would undo and says whether the downgrade is allowed.
With --run it performs the downgrade only when it is, or with --force-unsafe (say why in the incident
report). It never runs `downgrade -1` from whatever the database is at by then: it runs the explicit
equivalent, `alembic downgrade <down revision of the checked revision>`, in one transaction that first
locks and re-reads the database's revision, and refuses if that is no longer the revision it checked
(someone migrated in between), so no unchecked revision is ever undone.

Exit status, in the operator commands' shared table (README.md, "Exit codes"; the whole table is below):
  0  passed: safe (and done, with --run)
  1  failed: refused as unsafe, the downgrade is not declared reversible and data-safe
  2  bad usage, or nothing to check: the database has no alembic revision, or one this code does not know
  3  could not run, nothing was done: the database is unreachable or refuses the credentials (one line says
     which, never the password), or, with --run, its revision changed since the check (or another
     migration holds it): check again
  6  the downgrade itself failed and was rolled back (this command's own code)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import Script, ScriptDirectory

from chaos.invocation import program_name
from chaos.stack.migrations import REPO_ROOT
from conformance.secret_options import add_secret_option, parse_without_echo, secret_epilog, secret_from
from conformance.verdicts import Exit, exit_code_epilog

REFUSED_UNSAFE = Exit.FAILED
USAGE = Exit.USAGE
DATABASE_UNUSABLE = Exit.COULD_NOT_RUN  # unreachable, or the credentials refused: nothing was checked
REVISION_CHANGED = Exit.COULD_NOT_RUN  # the checked state is gone: nothing was done, check again
DOWNGRADE_FAILED = 6  # this command's own code (the shared table ends at 5, aborted)
LOCK_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Verdict:
    revision: str
    down_revision: str | None
    reversible: bool
    data_safe: bool
    doc: str
    merge: bool = False  # several down revisions: `downgrade -1` has no single explicit equivalent

    @property
    def safe(self) -> bool:
        return self.reversible and self.data_safe and self.down_revision is not None

    @property
    def target(self) -> str:
        """What `alembic downgrade -1` from this revision means, spelled out."""
        return self.down_revision or "base"


def script_directory(config_path: Path = REPO_ROOT / "alembic.ini") -> ScriptDirectory:
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
    down = script.down_revision
    merge = not (down is None or isinstance(down, str))
    single = down if isinstance(down, str) else None
    return Verdict(script.revision, single, reversible, data_safe, (script.doc or "").splitlines()[0], merge)


# -- the database: its revision, read and locked without ever printing the URL -----------------------------------
class DatabaseError(Exception):
    """The database could not be used; the message carries nothing of the URL."""


def _redact(text: str, url: str) -> str:
    """`text` without the URL, its credentials or its password, whatever shape the URL has."""
    credentials = url.split("://", 1)[-1].rpartition("@")[0]
    password = credentials.partition(":")[2]
    for secret in sorted({url, credentials, password, *password.replace("#", "/").split("/")}, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _root_cause(error: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrappers (DBAPIError.orig, then its __cause__)."""
    from sqlalchemy.exc import DBAPIError

    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = error.orig if isinstance(error, DBAPIError) else error.__cause__
        if not isinstance(inner, BaseException):
            break
        error = inner
    return error


def _why(error: BaseException, url: str) -> str:
    """A reason an operator can act on. A parse error's message may quote pieces of the URL: it is not shown."""
    import asyncpg

    cause = _root_cause(error)
    if isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError):
        reason = f"the database refuses the credentials ({type(cause).__name__}: {cause})"
    elif isinstance(cause, asyncpg.PostgresError):
        reason = f"{type(cause).__name__}: {cause}"  # the server's own message
    elif isinstance(cause, TimeoutError | asyncio.CancelledError):
        # asyncpg's connect timeout; also what a server that is not PostgreSQL (it never answers) ends in
        reason = f"no answer from a PostgreSQL server within {CONNECT_TIMEOUT_S} s ({type(cause).__name__})"
    elif isinstance(cause, OSError):
        reason = f"cannot connect ({type(cause).__name__}: {cause})"
    else:
        reason = (
            f"{type(cause).__name__} (the URL's form must be postgresql://user:password@host:port/database, "
            "with special characters in the password percent-encoded)"
        )
    return _redact(reason, url)


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _database_revision(url: str) -> str | None:
    import asyncpg

    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=CONNECT_TIMEOUT_S)
    try:
        if not await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            return None
        value = await connection.fetchval("SELECT version_num FROM alembic_version")
        return str(value) if value is not None else None
    finally:
        await connection.close()


def database_revision(url: str) -> str | None:
    try:
        return asyncio.run(_database_revision(url))
    except (Exception, asyncio.CancelledError) as error:  # CancelledError is no Exception, and no traceback either
        raise DatabaseError(_why(error, url)) from None


class RevisionChanged(Exception):
    """The database is no longer at the checked revision (or another migration holds it): nothing was done."""


async def _downgrade_locked(url: str, verdict: Verdict) -> None:
    """`alembic downgrade <target>` in the transaction that locked alembic_version and found `verdict.revision`.

    A migration running elsewhere either committed before the lock (then the revision read here differs and
    nothing is done) or waits for this transaction and then finds its expected revision gone (alembic fails
    it); no revision can change between the re-read and the downgrade."""
    import asyncpg
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    rest = url.partition("://")[2]
    engine = create_async_engine(f"postgresql+asyncpg://{rest}", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'"))
            try:
                locked = await connection.execute(text("SELECT version_num FROM alembic_version FOR UPDATE"))
            except DBAPIError as error:
                cause = _root_cause(error)
                if isinstance(cause, asyncpg.LockNotAvailableError):
                    raise RevisionChanged(
                        f"another migration has held the database's revision for {LOCK_TIMEOUT_S} s"
                    ) from None
                if isinstance(cause, asyncpg.UndefinedTableError):
                    raise RevisionChanged("the database has no alembic revision any more") from None
                raise
            now = [str(row[0]) for row in locked]
            if now != [verdict.revision]:
                raise RevisionChanged(
                    f"the database's revision changed since the check: {verdict.revision} was checked, the "
                    f"database is now at {', '.join(now) or '(no revision)'}"
                )
            config = Config(str(REPO_ROOT / "alembic.ini"))

            def downgrade(sync_connection: Any) -> None:
                config.attributes["connection"] = sync_connection
                command.downgrade(config, verdict.target)

            await connection.run_sync(downgrade)
            await connection.commit()
    finally:
        await engine.dispose()


def run_downgrade(database_url: str, verdict: Verdict, *, force_unsafe: bool = False) -> int:
    """Downgrade exactly the checked revision, or refuse; the exit status of `--run`."""
    if verdict.merge:
        print(
            f"REFUSED: {verdict.revision} merges several revisions; choose the downgrade target by hand",
            file=sys.stderr,
        )
        return USAGE
    if not verdict.safe and not force_unsafe:
        print(
            "REFUSED: the downgrade is not declared reversible and data-safe; "
            "rerun with --force-unsafe only after deciding the data loss is acceptable",
            file=sys.stderr,
        )
        return REFUSED_UNSAFE
    if not verdict.safe:
        print("WARNING: downgrading a revision not declared data-safe (--force-unsafe)", file=sys.stderr)
    print(f"running `alembic downgrade {verdict.target}` (`downgrade -1` from {verdict.revision}, spelled out)")
    try:
        asyncio.run(_downgrade_locked(database_url, verdict))
    except RevisionChanged as changed:
        print(f"REFUSED: {changed}. Nothing was downgraded: check again before rolling back.", file=sys.stderr)
        return REVISION_CHANGED
    except (Exception, asyncio.CancelledError) as error:
        print(f"the downgrade failed and was rolled back: {_why(error, database_url)}", file=sys.stderr)
        return DOWNGRADE_FAILED
    print(f"downgraded: {verdict.revision} → {verdict.target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program_name("conformance.operator.migration_rollback"),
        description=__doc__,
        epilog=exit_code_epilog(
            {DOWNGRADE_FAILED: "the downgrade itself failed and was rolled back"},
            extra=secret_epilog(
                "The database URL (with its password; without one, the repository's head is checked)",
                option="database-url",
                env="DATABASE_URL",
            ),
        ),
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_secret_option(parser, "the database URL", option="database-url", env="DATABASE_URL")
    parser.add_argument("--run", action="store_true", help="perform the downgrade if it is safe (see above)")
    parser.add_argument(
        "--force-unsafe",
        action="store_true",
        help="with --run: downgrade even though the revision is not declared reversible and data-safe",
    )
    args = parse_without_echo(parser, argv)
    database_url = secret_from(parser, args, option="database-url", env="DATABASE_URL")
    source = f"--database-url-file {args.database_url_file}" if args.database_url_file else "DATABASE_URL"

    scripts = script_directory()
    if database_url:
        try:
            current = database_revision(database_url)
        except DatabaseError as error:
            print(
                f"could not run: cannot read the database's revision (the database in {source}): {error}",
                file=sys.stderr,
            )
            return DATABASE_UNUSABLE
        where = "the database"
    else:
        current = scripts.get_current_head()
        where = "the repository's head"
    if current is None:
        print(f"{where} has no alembic revision: nothing to downgrade", file=sys.stderr)
        return USAGE
    try:
        verdict = verdict_for(current, scripts)
    except LookupError as error:
        print(f"{error} (the code is older than the database: redeploy the newer release first)", file=sys.stderr)
        return USAGE
    print(f"revision {verdict.revision} ({where}): {verdict.doc}")
    print(f"  downgrade -1 → {verdict.down_revision or '(base: drops the schema)'}")
    reversible, data_safe = ("yes" if flag else "NO" for flag in (verdict.reversible, verdict.data_safe))
    print(f"  declared reversible: {reversible}; data-safe: {data_safe}")
    print(f"  verdict: {'SAFE' if verdict.safe else 'UNSAFE'} to run `python -m alembic downgrade -1`")
    if not args.run:
        return 0 if verdict.safe else REFUSED_UNSAFE
    if not database_url:
        print("--run needs a database (DATABASE_URL or --database-url-file)", file=sys.stderr)
        return USAGE
    return run_downgrade(database_url, verdict, force_unsafe=args.force_unsafe)


if __name__ == "__main__":
    sys.exit(main())
