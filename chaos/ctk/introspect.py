"""Which factory built a drill's probe or fault action, and with which parameters.

Drills are code: a probe is a closure made by a factory of chaos.drills.probes (`ready_degraded("database")`)
and a fault a pair of closures made by chaos.drills.actions (`proxy_down("postgres")`). The export reads the
factory's name and the values the closure holds, rather than keeping a second description of every drill that
could drift from the first; a probe or action that no known factory built is not exportable, and says so.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Built:
    """`factory(**parameters)` from `module` made this function."""

    module: str
    factory: str
    parameters: dict[str, Any]


def built_by(function: Callable[..., Any]) -> Built | None:
    """The factory of a closure (`<factory>.<locals>.<name>`) and the values it closed over, including those of
    the local helpers it calls (ready_degraded's `observe` calls its `degraded`, which holds `check`)."""
    qualname = getattr(function, "__qualname__", "")
    factory, separator, _ = qualname.partition(".<locals>.")
    if not separator:
        return None
    return Built(getattr(function, "__module__", ""), factory, _closed_over(function, depth=0))


def _closed_over(function: Callable[..., Any], *, depth: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if depth > 2 or getattr(function, "__closure__", None) is None:
        return values
    for name, value in inspect.getclosurevars(function).nonlocals.items():
        if inspect.isfunction(value) and ".<locals>." in value.__qualname__:
            values.update(_closed_over(value, depth=depth + 1))
        else:
            values[name] = value
    return values
