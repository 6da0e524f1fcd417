"""The supervisor reports a failed worker as a failure (hypercorn's own run() would exit 0)."""

from __future__ import annotations

from hypercorn.config import Config

from service.supervisor import serve


def test_a_worker_that_cannot_load_the_app_makes_the_server_exit_non_zero() -> None:
    config = Config()
    config.application_path = "tests.service.apps.broken_app:app"
    config.bind = ["127.0.0.1:0"]
    config.workers = 1
    assert serve(config, drain_delay_s=0) != 0
