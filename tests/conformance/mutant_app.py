"""The service with a defect, for `python -m service --app tests.conformance.mutant_app:app`."""

from __future__ import annotations

from service.asgi import app as service_app
from tests.conformance.mutants import Mutant

app = Mutant(service_app)  # type: ignore[arg-type]
