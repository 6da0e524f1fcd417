"""`python -m service`: check the environment, then serve the API with hypercorn.

The environment is validated before any worker starts, so a missing or weak secret stops the service with
a clear message and exit code 2 (RB-AUTH-SECRETS). With more than one worker, Prometheus multiprocess mode is
switched on so /metrics reports every worker (RB-OBS-METRICS). Workers run under `service.supervisor`, which
drains on SIGTERM (RB-HEALTH-DRAIN).
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
from service.supervisor import serve

APPLICATION = "service.asgi:app"


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if args.check_config:
        shown = settings.model_dump(exclude={"database_url", "redis_url", "api_key", "jwt_secret"})
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
    return serve(config, drain_delay_s=settings.drain_delay_s, unsent_data_timeout_s=settings.response_send_timeout_s)


if __name__ == "__main__":
    sys.exit(main())
