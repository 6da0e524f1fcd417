"""`python -m service`: check the environment, then serve the API with hypercorn.

The environment is validated before any worker starts, so a missing or weak secret stops the service with
a clear message and exit code 2 (RB-AUTH-SECRETS). With more than one worker, Prometheus multiprocess mode is
switched on so /metrics reports every worker (RB-OBS-METRICS).
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
from typing import Any

import hypercorn.run
from hypercorn.config import Config

from service.logs import configure_logging
from service.settings import ConfigError, load_settings

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
    parser.add_argument(
        "--bind", action="append", help="address to listen on, e.g. 127.0.0.1:8000 (repeatable)"
    )
    parser.add_argument("--workers", type=int, help="worker processes (overrides the config file)")
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


def run_preserving_exit_code(config: Config) -> int:
    """hypercorn.run.run, but a worker that dies (e.g. failing to import the app) makes it non-zero.

    hypercorn 0.18 records the failed worker's exit code, then overwrites it with the result of a final
    cleanup over an empty process list, so it reports success (pgjones/hypercorn#269, fix in PR #372).
    Orchestrators restart on failure only if they see one, so the first failure is remembered here.
    """
    failures: list[int] = []
    join_exited = hypercorn.run._join_exited

    def remembering(processes: list[Any]) -> int:
        code = join_exited(processes)
        if code:
            failures.append(code)
        return code

    hypercorn.run._join_exited = remembering
    try:
        code = hypercorn.run.run(config)
    finally:
        hypercorn.run._join_exited = join_exited
    return code or (failures[0] if failures else 0)


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
    config.application_path = APPLICATION
    # Hand hypercorn our logger so its lines go through the JSON formatter instead of its own handler.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    if args.bind:
        config.bind = args.bind
    if args.workers is not None:
        config.workers = args.workers
    _prepare_multiprocess_metrics(config.workers)
    return run_preserving_exit_code(config)


if __name__ == "__main__":
    sys.exit(main())
