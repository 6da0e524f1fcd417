"""The event API: a Quart service that implements the operations runbook's contract."""

from service.app import create_app

__all__ = ["create_app"]
