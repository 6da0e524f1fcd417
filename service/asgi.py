"""The ASGI application object for hypercorn: `service.asgi:app`, configured from the environment."""

from __future__ import annotations

import sys

from service.app import create_app
from service.logs import configure_logging
from service.settings import ConfigError, load_settings

try:
    settings = load_settings()
except ConfigError as error:
    print(error, file=sys.stderr)
    raise SystemExit(2) from None

configure_logging(settings.log_level, settings.secret_values())
app = create_app(settings)
