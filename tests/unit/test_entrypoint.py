"""`python -m service` reports a failed worker as a failure (hypercorn alone would exit 0)."""

from __future__ import annotations

from hypercorn.config import Config

from service.__main__ import run_preserving_exit_code


def test_a_worker_that_cannot_load_the_app_makes_the_server_exit_non_zero() -> None:
    config = Config()
    config.application_path = "tests.unit.apps.broken_app:app"
    config.bind = ["127.0.0.1:0"]
    config.workers = 1
    assert run_preserving_exit_code(config) != 0
