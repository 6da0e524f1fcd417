"""Probes of a fleet behind a load balancer: a replica in or out of the balancer's rotation, a replica's own
readiness asked directly, the replicas' images. Each names the replica the drill chose (`ctx.state[key]`)."""

from __future__ import annotations

import httpx

from chaos.drills.model import DrillContext, Observation, Probe
from chaos.stack.fleet import Replica
from conformance.tls import shared_tls_context

ROTATION_TIMEOUT_S = 15.0  # the balancer checks every second (fall 1, rise 2): a generous bound on its moves


def chosen(ctx: DrillContext, key: str = "victim") -> Replica:
    replica: Replica = ctx.state[key]
    return replica


def _current(ctx: DrillContext, key: str) -> Replica:
    """The chosen replica as the fleet knows it now (its addresses change when it restarts)."""
    replica = chosen(ctx, key)
    return ctx.stack.fleet().replica(replica.id) or replica


def out_of_rotation(key: str = "victim") -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        view = ctx.stack.fleet().balancer_view()
        replica = chosen(ctx, key)
        state = view.get(replica.id)
        return Observation(
            state is not True, state, f"{replica.name}: {'in' if state else 'out' if state is False else 'gone'}"
        )

    return Probe("the balancer has the replica out of rotation", "balancer: not UP", observe, ROTATION_TIMEOUT_S)


def in_rotation(key: str = "victim", timeout_s: float = 30.0) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        replica = chosen(ctx, key)
        state = ctx.stack.fleet().balancer_view().get(replica.id)
        return Observation(
            state is True, state, f"{replica.name}: {'in' if state else 'out' if state is False else 'unknown'}"
        )

    return Probe("the replica is back in the balancer's rotation", "balancer: UP", observe, timeout_s)


def others_in_rotation(key: str = "victim") -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        replica = chosen(ctx, key)
        view = ctx.stack.fleet().balancer_view()
        others = {r.name: view.get(r.id) for r in ctx.stack.fleet().replicas() if r.id != replica.id}
        ok = bool(others) and all(state is True for state in others.values())
        return Observation(ok, len(others), ", ".join(f"{n}: {'in' if s else 'out'}" for n, s in others.items()))

    return Probe("every other replica stays in rotation", "balancer: the others UP", observe, ROTATION_TIMEOUT_S)


def replica_ready(key: str = "victim", *, degraded_on: str | None = None, timeout_s: float = 20.0) -> Probe:
    """The replica's own /health/ready: 200, or (degraded_on) 503 degraded naming that check."""

    def observe(ctx: DrillContext) -> Observation:
        replica = _current(ctx, key)
        if replica.url is None:
            return Observation(False, None, f"{replica.name}: the target gives no direct address (probe_network)")
        try:
            response = httpx.get(f"{replica.url}/health/ready", timeout=2, verify=shared_tls_context())
        except httpx.HTTPError as error:
            return Observation(False, None, f"{replica.name}: {type(error).__name__}")
        body = response.json()
        failed = body.get("failed_checks") or []
        if degraded_on is None:
            ok = response.status_code == 200
        else:
            ok = response.status_code == 503 and body.get("status") == "degraded" and degraded_on in failed
        return Observation(
            ok, response.status_code, f"{replica.name}: {response.status_code} {body.get('status')} {failed}"
        )

    if degraded_on is None:
        return Probe("the replica's own readiness is 200", "GET replica /health/ready → 200", observe, timeout_s)
    return Probe(
        f"the replica's own readiness is 503 naming {degraded_on}",
        f"GET replica /health/ready → 503 degraded, failed_checks ∋ {degraded_on}",
        observe,
        timeout_s,
    )


def running(key: str = "victim", timeout_s: float = 30.0) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        replica = chosen(ctx, key)
        alive = ctx.stack.fleet().running(replica)
        return Observation(alive, alive, f"{replica.name}: {'running' if alive else 'not running'}")

    return Probe("the replica is running again", "container running", observe, timeout_s)


def every_replica_runs(image_of: str, *, timeout_s: float = 10.0) -> Probe:
    """Every replica runs the image named by `ctx.state[image_of]`."""

    def observe(ctx: DrillContext) -> Observation:
        image = ctx.state[image_of]
        replicas = ctx.stack.fleet().replicas()
        ok = bool(replicas) and all(r.image == image for r in replicas)
        return Observation(ok, len(replicas), ", ".join(f"{r.name}: {r.image}" for r in replicas))

    return Probe(f"every replica runs the {image_of.replace('_', ' ')}", "replicas' images", observe, timeout_s)
