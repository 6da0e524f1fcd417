"""`python -m chaos stack up`: start the stack, print where everything answers, run until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from chaos.lifecycle import ServerError
from chaos.proxy import FaultProxyError
from chaos.proxy.client import DEFAULT_URL
from chaos.stack import BACKEND_CHOICES, STACK_BACKEND_ENV, make_stack, resolve_backend
from chaos.stack.base import StackBackend, StackEndpoints

UP_DESCRIPTION = """\
Start a throwaway PostgreSQL (database "events", migrated) and Redis on 127.0.0.1, the fault proxy
(Toxiproxy's API) with a proxy named "postgres" and one named "redis", and the service under hypercorn,
whose DATABASE_URL and REDIS_URL go through those proxies. Prints the endpoints, and the API key and JWT
secret it generated as `export` lines to paste into your shell (a secret you pass with --env is yours and is
not printed), then keeps everything running until Ctrl-C or SIGTERM, which stop it all and delete its files.
If this command is killed instead (kill -9, a closed terminal), everything it started dies with it, and the
next start removes its leftover temporary directories.

--backend docker runs the same parts as containers on their own Docker network (published on 127.0.0.1 only);
see docs/DOCKER.md.
"""

EXAMPLE_EVENT = {"source": "checkout", "type": "order.placed", "occurred_at": "2026-11-26T10:00:00Z"}


def register(subcommands: Any) -> None:
    stack = subcommands.add_parser("stack", help="start the local stack", description="The local stack.")
    actions = stack.add_subparsers(title="actions", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up",
        help="start everything and keep it running until interrupted",
        description=UP_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--port", type=int, default=8000, help="API port on 127.0.0.1 (default 8000; 0 = any free)")
    up.add_argument(
        "--proxy-port",
        type=int,
        default=8474,
        help="fault proxy API port (default 8474, Toxiproxy's, so clients need no TOXIPROXY_URL; 0 = any free)",
    )
    up.add_argument("--workers", type=int, default=1, help="hypercorn worker processes (default 1)")
    up.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=None,
        help="local processes, docker containers, or auto (docker when an engine answers and the images are "
        f"present); default ${STACK_BACKEND_ENV}, else local",
    )
    up.add_argument(
        "--fault-proxy",
        choices=["process", "thread"],
        default=None,
        help="local backend: run the fault proxy as its own process (default) or on a thread of this one",
    )
    up.add_argument(
        "--toxiproxy-url",
        metavar="URL",
        help="local backend: use this running Toxiproxy instead of starting the project's fault proxy",
    )
    up.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra service environment (repeatable), e.g. --env RATE_LIMIT_BACKEND=memory",
    )
    up.set_defaults(handler=stack_up)


def _port_taken(port: int) -> bool:
    if port == 0:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _environment(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise SystemExit(f"python -m chaos stack up: --env expects NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


GENERATED_SECRETS = ("API_KEY", "JWT_SECRET")


def _exports(service_env: Mapping[str, str], given: Mapping[str, str]) -> str:
    """`export NAME=value` lines for the secrets the stack generated (as `make serve` prints them); one the
    operator passed with --env is theirs, and stays out of the output."""
    lines = [f"  export {name}={service_env[name]}" for name in GENERATED_SECRETS if name not in given]
    if not lines:
        return ""
    return "\nGenerated secrets (paste into the shell where you run the samples):\n" + "\n".join(lines) + "\n"


def _describe(endpoints: StackEndpoints, took_s: float, exports: str = "") -> str:
    toxiproxy_env = "" if endpoints.proxy_api_url == DEFAULT_URL else f"TOXIPROXY_URL={endpoints.proxy_api_url} "
    event = json.dumps(EXAMPLE_EVENT)
    key = endpoints.api_key
    return f"""
The stack is up ({took_s:.1f} s).

  API               {endpoints.api_url}
  API key           {key}            (header X-API-Key)
  service log       {endpoints.service_log}
  fault proxy API   {endpoints.proxy_api_url}       (Toxiproxy's API: TOXIPROXY_URL)
  PostgreSQL        direct   {endpoints.database_url}
                    proxied  {endpoints.proxied_database_url}   (proxy "postgres", the service's)
  Redis             direct   {endpoints.redis_url}
                    proxied  {endpoints.proxied_redis_url}   (proxy "redis", the service's)
{exports}
For Chaos Toolkit (`python -m chaos export NAME --format chaostoolkit`, docs/CHAOSTOOLKIT.md), with API_KEY:
  export EVENTS_API_URL={endpoints.api_url} TOXIPROXY_URL={endpoints.proxy_api_url}

Try:
  curl -s -X POST {endpoints.api_url}/api/v1/events -H 'X-API-Key: {key}' \\
       -H 'Content-Type: application/json' -d '{event}'
  curl -s -w ' %{{time_total}}s\\n' '{endpoints.api_url}/api/v1/events?source=checkout' -H 'X-API-Key: {key}'

  # 300 ms on every database round trip, then back to normal:
  {toxiproxy_env}.venv/bin/python -c 'from chaos.proxy.client import ToxiproxyClient as T; \\
    T().proxy("postgres").add_toxic(type="latency", attributes={{"latency": 300}})'
  {toxiproxy_env}.venv/bin/python -c 'from chaos.proxy.client import ToxiproxyClient as T; \\
    T().proxy("postgres").destroy_toxic("latency_downstream")'

Ctrl-C stops everything.""".replace("\n  \n", "\n\n")


def _make(args: argparse.Namespace) -> StackBackend:
    backend, _ = resolve_backend(args.backend)
    options: dict[str, Any]
    if backend == "docker":
        if args.fault_proxy or args.toxiproxy_url:
            raise ValueError("--fault-proxy and --toxiproxy-url are for the local backend")
        options = {"proxy_api_port": args.proxy_port or None}
    else:
        options = {
            "proxy_api_listen": f"127.0.0.1:{args.proxy_port}",
            "fault_proxy": args.fault_proxy or "process",
            "toxiproxy_url": args.toxiproxy_url,
        }
    return make_stack(
        backend,
        workers=args.workers,
        api_port=args.port or None,
        service_env=_environment(args.env),
        progress=lambda line: print(line, flush=True),
        **options,
    )


# Exit statuses from README's "Exit codes" table: 0 stopped as asked, 1 the service died while up, 2 usage,
# 3 could not run (a port taken, a server that would not start: nothing is left running), 130 interrupted.
COULD_NOT_RUN = 3


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stack_up(args: argparse.Namespace) -> int:
    for flag, port in (("--port", args.port), ("--proxy-port", args.proxy_port)):
        if _port_taken(port):
            print(
                f"python -m chaos stack up: port {port} on 127.0.0.1 is taken; pass {flag} 0 for any free port",
                file=sys.stderr,
            )
            return COULD_NOT_RUN
    started = time.monotonic()
    try:
        stack = _make(args)
    except ValueError as error:
        print(f"python -m chaos stack up: {error}", file=sys.stderr)
        return 2
    # While starting, SIGTERM and SIGHUP interrupt like Ctrl-C does, so the start unwinds and stops what it
    # had started; once up, every one of them just asks the wait loop below to stop.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    stopping = threading.Event()
    try:
        with stack:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, lambda *_: stopping.set())
            exports = _exports(stack.service_env, _environment(args.env))
            print(_describe(stack.endpoints, time.monotonic() - started, exports), flush=True)
            while not stopping.wait(0.5):
                service = getattr(stack, "service", None)  # every backend has one: a process or a container
                if service is not None and not service.running:
                    print(f"\nthe service exited:\n{service.log_tail()}", file=sys.stderr)
                    return 1
            print("\nstopping...", flush=True)
    except (ServerError, FaultProxyError) as error:
        print(f"python -m chaos stack up: could not start: {error}", file=sys.stderr)
        return COULD_NOT_RUN
    except KeyboardInterrupt:
        print("\ninterrupted while starting; everything started was stopped.", file=sys.stderr)
        return 130
    print("stopped; nothing left running.")
    return 0
