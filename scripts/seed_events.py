"""Seed a database with the benchmark dataset, straight into PostgreSQL (never through the API).

    DATABASE_URL=postgresql://user:pass@127.0.0.1:5432/events .venv/bin/python scripts/seed_events.py --events 1000000

The same generator as the embedded benchmark profiles: events spread over the last --days days, 24 sources
of skewed volume each emitting 10 of 60 types, small JSON attributes; generated inside PostgreSQL in chunks of
100,000 rows, then VACUUM ANALYZE. The database must be migrated (`python -m alembic upgrade head`). It only
ever adds rows, and only to a loopback database unless --allow-remote is given: benchmarks never seed a
deployment behind your back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from conformance.perf.console import stderr
from conformance.perf.seeding import DatasetSpec, seed_events
from conformance.perf.targets import is_loopback_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events to add (default 1,000,000)")
    parser.add_argument("--days", type=int, default=30, help="days before now they span (default 30)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a database that is not on loopback")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "").replace("postgresql+asyncpg://", "postgresql://", 1)
    if not url:
        stderr("error: set DATABASE_URL to the database to seed")
        return 2
    if not args.allow_remote and not is_loopback_url(url.replace("postgresql://", "http://", 1)):
        stderr("error: DATABASE_URL is not on loopback; pass --allow-remote if you really mean to seed it")
        return 2
    if args.events < 1 or args.days < 1:
        stderr("error: --events and --days must be positive")
        return 2
    asyncio.run(seed_events(url, DatasetSpec(events=args.events, days=args.days)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
