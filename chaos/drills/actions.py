"""Fault actions drills are built from: break a dependency through the fault proxy or its server, put it
back, and roll the service out with a changed environment. Each fault comes as an (inject, remove) pair.

A fault through the proxy carries a lease (`DrillContext.fault_lease_s`): the proxy undoes it by itself when
the lease ends, so a harness that dies mid-drill cannot leave the target broken (docs/DEPLOYMENT.md)."""

from __future__ import annotations

import contextlib

from chaos.drills.model import Action, DrillContext
from chaos.stack.base import DEPENDENCIES, Capability

FaultActions = tuple[Action, Action]  # (inject, remove)

# What each kind of fault needs of the target (`Drill.requires`).
PROXY_FAULTS: frozenset[Capability] = frozenset({"proxy-faults"})
SERVER_FAULTS: frozenset[Capability] = frozenset({"dependency-process"})


def restore_dependencies(ctx: DrillContext) -> None:
    """Rollback: every proxy enabled with no toxics, every server resumed and running — as far as the target
    lets the harness touch them (a deployment without a docker driver has no servers to resume)."""
    if ctx.stack.supports("proxy-faults"):
        with contextlib.suppress(Exception):
            ctx.stack.toxiproxy().reset()
    if ctx.stack.supports("dependency-process"):
        for name in DEPENDENCIES:
            ctx.stack.resume_dependency(name)
            ctx.stack.start_dependency(name)


def proxy_down(dependency: str) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).disable(  # type: ignore[arg-type]
            lease_s=ctx.fault_lease_s, require_lease=ctx.stack.fault_leases
        )

    def remove(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).enable()  # type: ignore[arg-type]

    return _named(inject, f"disable proxy {dependency}"), _named(remove, f"enable proxy {dependency}")


def toxic(dependency: str, kind: str, attributes: dict[str, int]) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        ctx.state["toxic"] = ctx.stack.proxy(dependency).add_toxic(  # type: ignore[arg-type]
            type=kind,
            attributes=attributes,
            name=f"drill-{kind}",
            lease_s=ctx.fault_lease_s,
            require_lease=ctx.stack.fault_leases,
        )

    def remove(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).destroy_toxic(ctx.state.pop("toxic", f"drill-{kind}"))  # type: ignore[arg-type]

    return _named(inject, f"add {kind} toxic to {dependency}"), _named(remove, f"remove the {kind} toxic")


def server_action(dependency: str, inject_name: str, remove_name: str) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        getattr(ctx.stack, f"{inject_name}_dependency")(dependency)

    def remove(ctx: DrillContext) -> None:
        getattr(ctx.stack, f"{remove_name}_dependency")(dependency)

    return _named(inject, f"{inject_name} {dependency}"), _named(remove, f"{remove_name} {dependency}")


def _named(action: Action, name: str) -> Action:
    """Give an action the name `--plan` and the rollback errors print."""
    action.__name__ = name
    return action


def rollout(ctx: DrillContext, env: dict[str, str]) -> None:
    """A rolling restart with a changed environment where the backend supports it, else a restart."""
    ctx.stack.rolling_restart_service(env)
