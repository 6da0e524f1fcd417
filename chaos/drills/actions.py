"""Fault actions drills are built from: break a dependency through the fault proxy or its server, put it
back, and roll the service out with a changed environment. Each fault comes as an (inject, remove) pair."""

from __future__ import annotations

import contextlib

from chaos.drills.model import Action, DrillContext
from chaos.stack.base import DEPENDENCIES

FaultActions = tuple[Action, Action]  # (inject, remove)


def restore_dependencies(ctx: DrillContext) -> None:
    """Rollback: every proxy enabled with no toxics, every server resumed and running."""
    with contextlib.suppress(Exception):
        ctx.stack.toxiproxy().reset()
    for name in DEPENDENCIES:
        ctx.stack.resume_dependency(name)
        ctx.stack.start_dependency(name)


def proxy_down(dependency: str) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).disable()  # type: ignore[arg-type]

    def remove(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).enable()  # type: ignore[arg-type]

    return inject, remove


def toxic(dependency: str, kind: str, attributes: dict[str, int]) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        ctx.state["toxic"] = ctx.stack.proxy(dependency).add_toxic(  # type: ignore[arg-type]
            type=kind, attributes=attributes, name=f"drill-{kind}"
        )

    def remove(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).destroy_toxic(ctx.state.pop("toxic", f"drill-{kind}"))  # type: ignore[arg-type]

    return inject, remove


def server_action(dependency: str, inject_name: str, remove_name: str) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        getattr(ctx.stack, f"{inject_name}_dependency")(dependency)

    def remove(ctx: DrillContext) -> None:
        getattr(ctx.stack, f"{remove_name}_dependency")(dependency)

    return inject, remove


def rollout(ctx: DrillContext, env: dict[str, str]) -> None:
    """A rolling restart with a changed environment where the backend supports it, else a restart."""
    ctx.stack.rolling_restart_service(env)
