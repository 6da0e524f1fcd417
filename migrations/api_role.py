"""The API's own database login role: the service connects with least privilege, never as the schema owner.

    DATABASE_URL=postgresql://owner:...@host:5432/db python -m migrations.api_role --url-file PATH [--role NAME]
        [--url-host HOST:PORT]

Run it as the schema owner (the role that runs `alembic upgrade head`) after every migration, as the one-shot
`migrate` service of docker-compose.prod.yml does. It converges: the role ends up with exactly GRANTS whatever
it had before, and a table a later migration adds gets nothing until it is listed in GRANTS
(tests/service/test_compose_file.py fails when a table of service.events.tables is not). It

1. reads the role's password from PATH, a whole DATABASE_URL for the API, or generates one (64 hex digits)
   and writes PATH (mode 0400) when there is none: the password is made once and kept there;
2. in one transaction: creates the role or resets it (LOGIN; not superuser, CREATEDB, CREATEROLE,
   REPLICATION or BYPASSRLS; member of no role; owner of nothing), sets the password as a SCRAM-SHA-256
   verifier computed here (the password itself never reaches the server, nor its statement log), revokes
   whatever the role holds on the schema and its tables and sequences, revokes TEMPORARY on the database from
   PUBLIC, then grants CONNECT on the database, USAGE on the schema and GRANTS on the tables.

The URL it writes names the owner's host and port unless `--url-host HOST:PORT` says where the API reaches the
same server instead (docker-compose.chaos.yml: through the fault proxy, `faultproxy:15432`, while the owner
connects to `postgres:5432` directly).

Nothing it prints contains the password.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SCHEMA = "public"
DEFAULT_ROLE = "events_api"
# What the service does, and nothing else: it ingests and reads events; the statement triggers on `events`
# (migrations/versions/0002) upsert the rollups as the inserting role; readiness reads the schema revision.
GRANTS: dict[str, tuple[str, ...]] = {
    "events": ("SELECT", "INSERT"),
    "event_counts_minute": ("SELECT", "INSERT", "UPDATE"),
    "event_counts_hour": ("SELECT", "INSERT", "UPDATE"),
    "event_counts_day": ("SELECT", "INSERT", "UPDATE"),
    "alembic_version": ("SELECT",),
}
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PRIVILEGED = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")
_ADVISORY_LOCK = 0x72625F726F6C65  # serialises concurrent runs ("rb_role")


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 7677; what libpq's
    PQencryptPasswordConn computes)."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    encoded = [base64.b64encode(part).decode() for part in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{encoded[0]}${encoded[1]}:{encoded[2]}"


_URL_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}")


def url_host(value: str) -> str:
    """`--url-host`: a `host:port` (a name, an IPv4 address or a bracketed IPv6 one) to put in the URL."""
    if not _URL_HOST.fullmatch(value) or not 0 < int(value.rpartition(":")[2]) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. faultproxy:15432), got {value!r}")
    return value


def api_url(owner_url: str, role: str, password: str, host: str | None = None) -> str:
    """The owner's URL with the API role's credentials instead (same database and options; same host and port
    unless `host`, a `host:port`, names where the API reaches that server)."""
    parts = urlsplit(owner_url)
    location = host or parts.netloc.rpartition("@")[2]
    scheme = "postgresql" if parts.scheme == "postgresql+asyncpg" else parts.scheme
    return urlunsplit((scheme, f"{role}:{password}@{location}", parts.path, parts.query, ""))


def kept_password(url_file: Path) -> str | None:
    """The password in an existing URL file, or None when there is no file yet."""
    try:
        text = url_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    password = urlsplit(text).password
    if not password:
        raise SystemExit(f"{url_file} holds no database URL with a password: remove it to make a new one")
    return password


def write_url_file(url_file: Path, url: str) -> bool:
    """Write `url` to `url_file` (mode 0400, atomically) unless it holds that already; True when written."""
    try:
        if url_file.read_text(encoding="utf-8").strip() == url:
            return False
    except FileNotFoundError:
        pass
    partial = url_file.with_name(f".{url_file.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(url + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, url_file)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return True


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def converge(owner_url: str, role: str, password: str) -> list[str]:
    """Create or reset `role` with `password` and exactly GRANTS; returns what was done, for the log."""
    done = []
    connection = await asyncpg.connect(owner_url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _ADVISORY_LOCK)
            database = _quote(await connection.fetchval("SELECT current_database()"))
            name = _quote(role)
            verifier = scram_verifier(password)
            columns = ", ".join(_PRIVILEGED)
            query = f"SELECT oid, {columns} FROM pg_roles WHERE rolname = $1"  # noqa: S608 (this module's constants)
            existing = await connection.fetchrow(query, role)
            if existing is None:
                await connection.execute(
                    f"CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION "
                    f"NOBYPASSRLS PASSWORD '{verifier}'"
                )
                done.append(f"created role {role}")
            else:
                if any(existing[attribute] for attribute in _PRIVILEGED):
                    await connection.execute(
                        f"ALTER ROLE {name} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
                    )
                    done.append(f"took {', '.join(a for a in _PRIVILEGED if existing[a])} from role {role}")
                await connection.execute(f"ALTER ROLE {name} LOGIN NOINHERIT PASSWORD '{verifier}'")
                done.append(f"reset role {role}")
                await _refuse_ownership(connection, existing["oid"], role)
                for granted in await connection.fetch(
                    "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = $1",
                    existing["oid"],
                ):
                    await connection.execute(f"REVOKE {_quote(granted['rolname'])} FROM {name}")
                    done.append(f"revoked membership of {granted['rolname']}")
            present = {
                row["tablename"]
                for row in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", SCHEMA)
            }
            await connection.execute(
                f"REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM {name};"
                f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SCHEMA} FROM {name};"
                f"REVOKE ALL ON SCHEMA {SCHEMA} FROM {name};"
                f"REVOKE ALL ON DATABASE {database} FROM {name};"
                f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC;"
                f"GRANT CONNECT ON DATABASE {database} TO {name};"
                f"GRANT USAGE ON SCHEMA {SCHEMA} TO {name};"
            )
            for table, privileges in GRANTS.items():
                if table in present:
                    await connection.execute(f"GRANT {', '.join(privileges)} ON {SCHEMA}.{_quote(table)} TO {name}")
                    done.append(f"{table}: {', '.join(privileges)}")
                else:
                    done.append(f"{table}: not there (yet), nothing granted")
            done += [f"{table}: nothing (not in GRANTS)" for table in sorted(present - set(GRANTS))]
    finally:
        await connection.close()
    return done


async def _refuse_ownership(connection: asyncpg.Connection, oid: int, role: str) -> None:
    owned = await connection.fetchval(
        "SELECT (SELECT count(*) FROM pg_class WHERE relowner = $1) + (SELECT count(*) FROM pg_namespace "
        "WHERE nspowner = $1) + (SELECT count(*) FROM pg_database WHERE datdba = $1 AND datname = current_database())",
        oid,
    )
    if owned:
        raise SystemExit(f"role {role} owns {owned} objects here: REASSIGN OWNED BY {role} TO the owner first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--url-file", type=Path, required=True, help="where the API's DATABASE_URL is kept")
    parser.add_argument("--role", default=DEFAULT_ROLE, help=f"the API's login role (default {DEFAULT_ROLE})")
    parser.add_argument(
        "--url-host",
        type=url_host,
        metavar="HOST:PORT",
        help="host and port of the written URL, when the API reaches the server elsewhere than the owner "
        "(e.g. through a proxy); default: DATABASE_URL's",
    )
    args = parser.parse_args(argv)
    owner_url = os.environ.get("DATABASE_URL", "")
    owner = urlsplit(owner_url).username or ""
    if not owner_url.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")) or not owner:
        raise SystemExit("DATABASE_URL must be the schema owner's postgresql:// URL (user and password)")
    if not _ROLE_NAME.fullmatch(args.role) or args.role == owner:
        raise SystemExit(f"--role must be a lower-case SQL name other than the owner's ({owner}): {args.role!r}")
    try:
        password = kept_password(args.url_file)
        kept = password is not None
        password = password or secrets.token_hex(32)
        written = write_url_file(args.url_file, api_url(owner_url, args.role, password, args.url_host))
    except OSError as error:
        raise SystemExit(f"cannot keep the API's DATABASE_URL in {args.url_file}: {error.strerror}") from None
    for line in asyncio.run(converge(owner_url, args.role, password)):
        print(f"api role: {line}")
    state = "written" if written else "unchanged"
    print(f"api role: {args.role}'s DATABASE_URL in {args.url_file} ({state}; password {'kept' if kept else 'new'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
