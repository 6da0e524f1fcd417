"""Run the events API for development (`make serve`), or run it once and smoke-test it (`--smoke`).

The environment decides what it talks to: with DATABASE_URL / REDIS_URL set it uses those servers (and
migrates only when asked with --migrate; it says how when readiness finds the schema unmigrated or behind);
without them it starts throwaway PostgreSQL and Redis servers on ephemeral loopback ports and migrates them.
Missing API_KEY / JWT_SECRET are generated and printed once, as `export NAME=value` lines to paste into the
shell where you run the sample commands.

It never prints a secret it did not make itself: API_KEY, JWT_SECRET, DATABASE_URL and REDIS_URL from your
environment stay out of its output, and the sample curl lines read the key from the shell ("$API_KEY").
Everything it started is stopped on Ctrl-C, and dies with it however it dies (kill -9, a closed terminal):
nothing is left answering on its port, and the next start removes the temporary directories a killed run
left (chaos/lifecycle.py). A port another server holds makes the service exit with status 3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from chaos.invocation import program_name
from chaos.lifecycle import ServerError
from chaos.stack.migrations import migrate
from chaos.stack.servers import PostgresServer, RedisServer
from chaos.stack.service import ServiceProcess, generated_credentials
from conformance.smoke import run_smoke
from conformance.tls import shared_tls_context
from service.schema import load_expectation


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name("conformance.serve"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 = any free)")
    parser.add_argument("--workers", type=int, default=2, help="hypercorn worker processes (default 2)")
    parser.add_argument("--migrate", action="store_true", help="also migrate a DATABASE_URL given by you")
    parser.add_argument("--smoke", action="store_true", help="start, run the smoke checks, stop; exit 1 on failure")
    return parser


EXAMPLE_EVENT = json.dumps(
    {
        "source": "checkout",
        "type": "order.placed",
        "occurred_at": "2026-11-26T10:00:00Z",
        "attributes": {"amount": 42},
    }
)


def _curl_lines(base_url: str) -> str:
    """Sample commands; the key is the shell's `$API_KEY`, never the value (it may be the operator's own)."""
    return f"""
  curl -s {base_url}/health/ready
  curl -s -X POST {base_url}/api/v1/events -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' \\
       -d '{EXAMPLE_EVENT}'
  curl -s '{base_url}/api/v1/events?source=checkout' -H "X-API-Key: $API_KEY"
"""


def _schema_hint(base_url: str) -> str | None:
    """How to migrate, when the service's readiness finds the database not at this release's revision."""
    try:
        body = httpx.get(f"{base_url}/health/ready", timeout=3, verify=shared_tls_context()).json()
        schema = body["checks"]["schema"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None  # no answer, or the database did not answer: nothing to say about its schema
    if schema.get("status") != "down":
        return None
    hint = f"\nreadiness is 503 until the schema matches: {schema.get('error')}"
    if body.get("schema_revision") is None or body["schema_revision"] in load_expectation().history:
        hint += (
            "\n  migrate: restart with `.venv/bin/python scripts/serve.py --migrate`, or run "
            "`.venv/bin/python -m alembic upgrade head` in this shell (it reads the same DATABASE_URL)"
        )
    return hint


def _redactor(env: dict[str, str]) -> Callable[[str], str]:
    """Removes every secret the service was given (the operator's and ours) from text shown on failure."""
    values: set[str] = set()
    for name, value in {**os.environ, **env}.items():
        if name in ("API_KEY", "JWT_SECRET") and value:
            values.add(value)
        elif name in ("DATABASE_URL", "REDIS_URL") and value:
            values.add(value)
            password = urlsplit(value).password if "@" in value else None
            if password:
                values.add(password)
    ordered = sorted((value for value in values if len(value) >= 4), key=len, reverse=True)

    def redact(text: str) -> str:
        for value in ordered:
            text = text.replace(value, "***")
        return text

    return redact


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        database_url = os.environ.get("DATABASE_URL")
        try:
            if database_url:
                print("database: DATABASE_URL from the environment")
                if args.migrate:
                    migrate(database_url)
                    print("  migrated to head")
            else:
                postgres = stack.enter_context(PostgresServer())
                database_url = postgres.create_database("events")
                migrate(database_url)
                print(f"database: embedded PostgreSQL on 127.0.0.1:{postgres.port}, migrated to head")
                print(f"  export DATABASE_URL={database_url}")
            env["DATABASE_URL"] = database_url
            redis_url = os.environ.get("REDIS_URL")
            if redis_url:
                print("redis: REDIS_URL from the environment")
            else:
                redis = stack.enter_context(RedisServer())
                redis_url = redis.url()
                print(f"redis: embedded Redis on 127.0.0.1:{redis.port}\n  export REDIS_URL={redis_url}")
            env["REDIS_URL"] = redis_url
            generated = {name: value for name, value in generated_credentials().items() if not os.environ.get(name)}
            if generated:
                print("generated (shown only this once; paste into the shell where you run the samples):")
            for name, value in generated.items():
                env[name] = value
                print(f"  export {name}={value}")
            service = stack.enter_context(ServiceProcess(env, port=args.port or None, workers=args.workers))
        except ServerError as error:
            print(f"could not start: {_redactor(env)(str(error))}", file=sys.stderr)
            return 1
        api_key = env.get("API_KEY") or os.environ["API_KEY"]
        print(f"\nAPI on {service.base_url} (logs: {service.log_path})")
        schema_hint = _schema_hint(service.base_url)
        if schema_hint:
            print(schema_hint)

        if args.smoke:
            results = run_smoke(service.base_url, api_key)
            for result in results:
                mark = {True: "PASS", False: "FAIL", None: "N/A "}[result.passed]
                print(f"  {mark}  {result.name:28} {result.detail}")
            failed = [result.name for result in results if result.passed is False]
            print(
                f"\nsmoke: {len(results) - len(failed)}/{len(results)} passed"
                + (f"; failed: {failed}" if failed else "")
            )
            return 1 if failed else 0

        if "API_KEY" not in generated:
            print("(the samples use $API_KEY: the key you set in your environment)")
        print("Try:" + _curl_lines(service.base_url))
        print("\nCtrl-C stops the API and everything started for it.")
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        while not stopping.wait(0.5):
            if not service.running:
                print(f"the service exited:\n{_redactor(env)(service.log_tail())}", file=sys.stderr)
                return 1
        print("stopping...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
