"""Activities in Chaos Toolkit's experiment format: HTTP probes of the service, with their tolerances, and the
chaostoolkit-toxiproxy actions that break and restore a dependency through our fault proxy (Toxiproxy's API).

Tolerances are on the HTTP status, the one part of an answer Chaos Toolkit's built-in tolerances can read here
(its `jsonpath` tolerance needs the jsonpath2 package, which chaostoolkit-lib does not install; `regex` fails on
a JSON body, which chaostoolkit-lib hands over parsed). Values in `${…}` come from the experiment's
configuration and secrets (chaos.ctk.configuration).
"""

from __future__ import annotations

from typing import Any

from chaos.ctk.configuration import SECRETS_SCOPE

Activity = dict[str, Any]
Tolerance = int | list[int]

AUTH_HEADERS = {"X-API-Key": "${api_key}"}
PROBE_EVENT = {"source": "chaostoolkit", "type": "ctk.probe", "occurred_at": "2026-11-26T00:00:00Z"}
REQUEST_TIMEOUT_S = 5.0  # a probe that is not about speed: long enough for a loaded service


def http_probe(
    name: str,
    path: str,
    *,
    tolerance: Tolerance | None,
    method: str = "GET",
    authenticated: bool = False,
    body: dict[str, Any] | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> Activity:
    """A probe of the service; a request that takes longer than `timeout_s` fails the probe (a hang)."""
    provider: dict[str, Any] = {"type": "http", "url": "${base_url}" + path, "method": method, "timeout": timeout_s}
    headers = dict(AUTH_HEADERS) if authenticated else {}
    if body is not None:
        headers["Content-Type"] = "application/json"  # chaostoolkit-lib then sends `arguments` as the JSON body
        provider["arguments"] = body
    if headers:
        provider["headers"] = headers
    probe: Activity = {"type": "probe", "name": name, "provider": provider}
    if authenticated:
        probe["secrets"] = [SECRETS_SCOPE]
    if tolerance is not None:
        probe["tolerance"] = tolerance
    return probe


def readiness(name: str, tolerance: Tolerance | None) -> Activity:
    return http_probe(name, "/health/ready", tolerance=tolerance)


def liveness(name: str) -> Activity:
    return http_probe(name, "/health/live", tolerance=200)


def api(name: str, kind: str, tolerance: Tolerance, *, timeout_s: float = REQUEST_TIMEOUT_S) -> Activity:
    """An authenticated read (GET one event) or write (POST one event) of the events API."""
    if kind == "read":
        return http_probe(name, "/api/v1/events?limit=1", tolerance=tolerance, authenticated=True, timeout_s=timeout_s)
    return http_probe(
        name,
        "/api/v1/events",
        tolerance=tolerance,
        method="POST",
        authenticated=True,
        body=PROBE_EVENT,
        timeout_s=timeout_s,
    )


def _toxiproxy(module: str, func: str, name: str, arguments: dict[str, Any]) -> Activity:
    provider = {"type": "python", "module": f"chaostoxi.{module}", "func": func, "arguments": arguments}
    return {"type": "action", "name": name, "provider": provider}


def disable_proxy(proxy_key: str, name: str) -> Activity:
    """chaostoxi.proxy.actions.disable_proxy: the proxy refuses new connections and drops live ones."""
    return _toxiproxy("proxy.actions", "disable_proxy", name, {"proxy_name": f"${{{proxy_key}}}"})


def enable_proxy(proxy_key: str, name: str) -> Activity:
    return _toxiproxy("proxy.actions", "enable_proxy", name, {"proxy_name": f"${{{proxy_key}}}"})


def create_toxic(proxy_key: str, name: str, toxic_name: str, toxic_type: str, attributes: dict[str, Any]) -> Activity:
    """chaostoxi.toxic.actions.create_toxic, downstream with toxicity 1.0, as the drills add theirs."""
    arguments = {
        "for_proxy": f"${{{proxy_key}}}",
        "toxic_name": toxic_name,
        "toxic_type": toxic_type,
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": attributes,
    }
    return _toxiproxy("toxic.actions", "create_toxic", name, arguments)


def delete_toxic(proxy_key: str, name: str, toxic_name: str) -> Activity:
    return _toxiproxy(
        "toxic.actions", "delete_toxic", name, {"for_proxy": f"${{{proxy_key}}}", "toxic_name": toxic_name}
    )


def paused(activity: Activity, *, before: str | None = None, after: str | None = None) -> Activity:
    """The activity with pauses, each a `${configuration key}` (chaostoolkit-lib allows numbers or that form)."""
    pauses = {key: f"${{{value}}}" for key, value in (("before", before), ("after", after)) if value}
    return {**activity, "pauses": pauses} if pauses else activity
