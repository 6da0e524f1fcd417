"""`python -m service`: check the environment, then serve the API with hypercorn.

The environment is validated before any worker starts, so a missing or weak secret stops the service with
a clear message and exit code 2 (RB-AUTH-SECRETS). With more than one worker, Prometheus multiprocess mode is
switched on so /metrics reports every worker (RB-OBS-METRICS). Workers run under `service.supervisor`, which
drains on SIGTERM (RB-HEALTH-DRAIN).

Exit statuses: 0 stopped as asked; 2 bad configuration (nothing started); 3 could not bind a listening
address — taken by another server, not local, or not permitted (nothing started; one line on stderr names
the address); any other non-zero status is a worker's that failed. A taken port is refused even with several
workers: servers share a port only when each was started with LISTEN_REUSE_PORT=true (a rolling restart).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from hypercorn.config import Config

from service.logs import configure_logging
from service.settings import ConfigError, load_settings
from service.supervisor import BindError, serve

APPLICATION = "service.asgi:app"
EXIT_BAD_CONFIGURATION = 2
EXIT_BIND_FAILED = 3
REUSE_PORT_ENV = "LISTEN_REUSE_PORT"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Serve the events API with hypercorn. Configuration comes from environment variables "
        "(see README: Configuration); hypercorn options from --config.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path("hypercorn.toml"),
        help="hypercorn TOML file (default: ./hypercorn.toml; built-in defaults when absent)",
    )
    parser.add_argument("--bind", action="append", help="address to listen on, e.g. 127.0.0.1:8000 (repeatable)")
    parser.add_argument("--workers", type=int, help="worker processes (overrides the config file)")
    parser.add_argument(
        "--app",
        default=APPLICATION,
        metavar="MODULE:ATTR",
        help=f"the ASGI application (default {APPLICATION}; the test suite serves deliberately broken variants)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the environment, print the effective non-secret settings, and exit",
    )
    return parser


def _prepare_multiprocess_metrics(workers: int) -> None:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # Files left by an earlier run would be summed into this one's metrics.
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    elif workers > 1:
        directory = tempfile.mkdtemp(prefix="events-api-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        atexit.register(shutil.rmtree, directory, True)


def _reuse_port() -> bool:
    """LISTEN_REUSE_PORT: let other servers that set it too listen on the same port (SO_REUSEPORT)."""
    value = os.environ.get(REUSE_PORT_ENV, "").strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ConfigError(f"{REUSE_PORT_ENV}: expected true or false")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        reuse_port = _reuse_port()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_CONFIGURATION
    if args.check_config:
        shown = settings.model_dump(exclude={"database_url", "redis_url", "api_key", "jwt_secret"})
        # The values in force, not the raw fields: an unset DB_MAX_CONCURRENCY means DB_POOL_SIZE.
        shown["db_max_concurrency"] = settings.db_concurrency
        shown["listen_reuse_port"] = reuse_port
        for name, value in sorted(shown.items()):
            print(f"{name.upper()}={value}")
        return 0
    configure_logging(settings.log_level, settings.secret_values())
    config = Config.from_toml(args.config) if args.config.exists() else Config()
    config.application_path = args.app
    # Hand hypercorn our logger so its lines go through the JSON formatter instead of its own handler.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    # hypercorn's idle timer runs from connect (or the previous response) until a request's headers are
    # complete, so it is also the deadline for trickled headers (service/bounds.py).
    config.keep_alive_timeout = settings.request_header_timeout_s
    if args.bind:
        config.bind = args.bind
    if args.workers is not None:
        config.workers = args.workers
    _prepare_multiprocess_metrics(config.workers)
    try:
        return serve(
            config,
            drain_delay_s=settings.drain_delay_s,
            unsent_data_timeout_s=settings.response_send_timeout_s,
            reuse_port=reuse_port,
        )
    except BindError as error:
        print(f"python -m service: {error}", file=sys.stderr)
        return EXIT_BIND_FAILED


if __name__ == "__main__":
    sys.exit(main())
