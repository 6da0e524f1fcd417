"""Where an exported experiment finds the service and its fault proxy: Chaos Toolkit `configuration` and
`secrets`.

Against `python -m chaos stack up` every value comes from an environment variable, so one exported file runs
against any stack: EVENTS_API_URL (default http://127.0.0.1:8000, the stack's default port), TOXIPROXY_URL
(default http://127.0.0.1:8474, the fault proxy's default port, the variable `stack up` prints) and API_KEY
(the `export API_KEY=…` line `stack up` prints). Against a target file (chaos.targets.spec) its URLs and proxy
names are written in, and its credentials stay what the target file holds: environment variable names, never
values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaos.stack.base import DEPENDENCIES, Dependency
from chaos.targets.spec import TargetSpec

API_URL_ENV = "EVENTS_API_URL"
TOXIPROXY_URL_ENV = "TOXIPROXY_URL"
API_KEY_ENV = "API_KEY"
STACK_API_URL = "http://127.0.0.1:8000"  # `python -m chaos stack up` defaults: --port 8000, --proxy-port 8474
STACK_TOXIPROXY_URL = "http://127.0.0.1:8474"
SECRETS_SCOPE = "events-api"  # the experiment's one secrets scope

# How long the method waits, in seconds (configuration keys, so `chaos run --var recovery_pause_s=10` changes
# them): after injecting, before the first observation — readiness caches its checks for 0.25 s and bounds
# each at 0.5 s, so 2 s covers a refused, a reset and a hung dependency alike; after removing the fault, before
# the steady state is checked again — the pool re-validates connections and rate limits return to Redis within
# about a second (RATE_LIMIT_PROBE_INTERVAL_S), so 5 s leaves a margin without hiding a service that never
# recovers.
DETECT_PAUSE_S = 2
RECOVERY_PAUSE_S = 5


class NoFaultDriver(ValueError):
    """The target offers no Toxiproxy-API driver for a dependency the drill breaks."""


@dataclass(frozen=True)
class Where:
    """The service and fault proxy an experiment talks to; `target` is None for `python -m chaos stack up`."""

    target: TargetSpec | None = None

    @property
    def name(self) -> str:
        return self.target.name if self.target is not None else "python -m chaos stack up"

    @property
    def _deployment(self) -> TargetSpec | None:
        # A throwaway target is a stack the harness starts itself: the same environment variables as stack up.
        return self.target if self.target is not None and self.target.kind == "deployment" else None

    def proxy_name(self, dependency: Dependency) -> str:
        """The fault proxy's name for `dependency` (the stack's are named after the dependency)."""
        deployment = self._deployment
        if deployment is None:
            return dependency
        if deployment.toxiproxy is None or dependency not in deployment.toxiproxy.proxies:
            raise NoFaultDriver(
                f"target {deployment.name} has no Toxiproxy driver for {dependency} ([drivers.toxiproxy] proxies)"
            )
        return deployment.toxiproxy.proxies[dependency]

    def configuration(self, dwell_s: float) -> dict[str, Any]:
        deployment = self._deployment
        values: dict[str, Any]
        if deployment is None:
            values = {
                "base_url": {"type": "env", "key": API_URL_ENV, "default": STACK_API_URL},
                "toxiproxy_url": {"type": "env", "key": TOXIPROXY_URL_ENV, "default": STACK_TOXIPROXY_URL},
            }
        else:
            values = {"base_url": deployment.base_url}
            if deployment.toxiproxy is not None:
                values["toxiproxy_url"] = deployment.toxiproxy.api_url
        for dependency in DEPENDENCIES:
            try:
                values[f"{dependency}_proxy"] = self.proxy_name(dependency)
            except NoFaultDriver:
                continue
        values |= {"detect_pause_s": DETECT_PAUSE_S, "dwell_s": dwell_s, "recovery_pause_s": RECOVERY_PAUSE_S}
        return values

    def secrets(self) -> dict[str, Any]:
        deployment = self._deployment
        variable = deployment.credentials.api_key if deployment and deployment.credentials else API_KEY_ENV
        return {SECRETS_SCOPE: {"api_key": {"type": "env", "key": variable}}}

    def describe(self) -> dict[str, Any]:
        """The target as the experiment's extension records it (names and URLs; no credential)."""
        if self.target is None:
            return {"name": self.name, "kind": "stack", "environment": [API_URL_ENV, TOXIPROXY_URL_ENV, API_KEY_ENV]}
        return {
            "name": self.target.name,
            "kind": self.target.kind,
            "source": str(self.target.source) if self.target.source else None,
            "base_url": self.target.base_url,
        }
