"""`python -m chaos.proxy`: run the fault proxy (Toxiproxy's HTTP API) until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

from chaos.proxy import toxics
from chaos.proxy.addresses import AddressError, AddressPolicy
from chaos.proxy.leases import DEFAULT_LEASE_ENV, MAX_LEASE_S, check_lease_s
from chaos.proxy.server import FaultProxy, FaultProxyError, event_loop_factory

DESCRIPTION = """\
Run the fault proxy: a TCP proxy that speaks Toxiproxy's HTTP API (proxies, enabled, /populate, /reset,
/version, and the toxics latency, bandwidth, slow_close, timeout, reset_peer, slicer and limit_data), so
tools and clients written for Toxiproxy (toxiproxy-python, toxiproxy-cli, the Go client) drive it unchanged.

Every listener binds to 127.0.0.1 unless told otherwise, and proxies may only forward to loopback
upstreams unless a host is allowed with --allow-upstream.

Beyond Toxiproxy: a fault may carry a lease ("lease_s": seconds in a toxic's body, or beside
"enabled": false when disabling a proxy), after which the proxy removes the toxic or enables the proxy by
itself, so a harness that dies cannot leave a fault behind. --default-lease-s gives every fault without
one that lease.
"""

EPILOG = """\
examples:
  python -m chaos.proxy
  python -m chaos.proxy --listen 127.0.0.1:8474 --config toxiproxy.json
  curl -s -X POST 127.0.0.1:8474/proxies \
       -d '{"name": "redis", "listen": "127.0.0.1:26379", "upstream": "127.0.0.1:6379"}'
  curl -s -X POST 127.0.0.1:8474/proxies/redis/toxics \
       -d '{"type": "latency", "attributes": {"latency": 300}}'
  curl -s -X POST 127.0.0.1:8474/proxies/redis/toxics \
       -d '{"type": "timeout", "attributes": {"timeout": 0}, "lease_s": 60}'   # gone after a minute

The --config file is a JSON array of proxies, as Toxiproxy's -config takes:
  [{"name": "postgres", "listen": "127.0.0.1:25432", "upstream": "127.0.0.1:5432", "enabled": true}]
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.proxy",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8474",
        metavar="HOST:PORT",
        help="address of the HTTP API (default 127.0.0.1:8474, Toxiproxy's port; port 0 = any free port)",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="create the proxies in this JSON file at start")
    parser.add_argument(
        "--allow-upstream",
        action="append",
        default=[],
        metavar="HOST",
        help="also allow upstreams on this host name, IP address or network (repeatable), e.g. a container",
    )
    parser.add_argument(
        "--allow-non-loopback-listen",
        action="store_true",
        help="allow the API and proxies to listen on addresses other than loopback",
    )
    parser.add_argument(
        "--seed", type=int, help="seed the random choices (toxicity, jitter, slicer) for repeatable runs"
    )
    parser.add_argument(
        "--default-lease-s",
        type=_lease_argument,
        default=os.environ.get(DEFAULT_LEASE_ENV) or None,
        metavar="SECONDS",
        help=f"lease of every toxic and disabled proxy whose request names no lease_s (0 < SECONDS <= "
        f"{MAX_LEASE_S:g}; default ${DEFAULT_LEASE_ENV}, else none: such faults stay, as in Toxiproxy)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO"
    )
    return parser


def _lease_argument(text: str) -> float:
    # Also parses the environment variable's value (argparse runs `type` on a string default).
    try:
        return check_lease_s(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"the default lease (--default-lease-s or ${DEFAULT_LEASE_ENV}) must be a number of seconds "
            f"greater than 0 and at most {MAX_LEASE_S:g}, not {text!r}"
        ) from None


def _load_config(path: Path) -> list[dict[str, Any]]:
    try:
        loaded = json.loads(path.read_text())
    except OSError as error:
        raise SystemExit(f"python -m chaos.proxy: cannot read --config {path}: {error.strerror}") from None
    except ValueError as error:
        raise SystemExit(f"python -m chaos.proxy: --config {path} is not JSON: {error}") from None
    if not isinstance(loaded, list) or not all(isinstance(item, dict) for item in loaded):
        raise SystemExit(f"python -m chaos.proxy: --config {path} must be a JSON array of proxy objects")
    return loaded


async def _serve(proxy: FaultProxy) -> None:
    await proxy.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, proxy.request_stop)
    names = ", ".join(f"{name} {p.listen} -> {p.upstream}" for name, p in proxy.collection.proxies.items())
    # The first line is what a parent process waits for (see FaultProxyProcess).
    print(f"fault proxy API on {proxy.api_url}", flush=True)
    if proxy.collection.default_lease_s is not None:
        print(f"default fault lease: {proxy.collection.default_lease_s:g}s", flush=True)
    if names:
        print(f"proxies: {names}", flush=True)
    await proxy.serve_until_stopped()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.seed is not None:
        toxics.rng.seed(args.seed)
    else:
        toxics.rng.seed(random.SystemRandom().getrandbits(64))
    policy = AddressPolicy(
        allowed_upstream_hosts=frozenset(args.allow_upstream),
        allow_non_loopback_listen=args.allow_non_loopback_listen,
    )
    try:
        policy.bind_host(args.listen)
    except AddressError as error:
        print(f"python -m chaos.proxy: --listen: {error}", file=sys.stderr)
        return 2
    proxies = _load_config(args.config) if args.config else []
    proxy = FaultProxy(args.listen, policy=policy, proxies=proxies, default_lease_s=args.default_lease_s)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_serve(proxy))
    except FaultProxyError as error:
        print(f"python -m chaos.proxy: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
