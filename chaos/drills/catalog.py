"""The drill catalog: every drill in the runbook's scenario order (DB, Redis/rate_limit_backend, overload,
release), then the fleet drills (chaos.drills.scenarios.fleet), and the selection of drills by name or pattern."""

from __future__ import annotations

import fnmatch

from chaos.drills.model import Drill
from chaos.drills.scenarios.db import DB_DRILLS
from chaos.drills.scenarios.fleet import FLEET_DRILLS
from chaos.drills.scenarios.overload import OVERLOAD
from chaos.drills.scenarios.redis import REDIS_DRILLS
from chaos.drills.scenarios.release import RELEASE_DRILLS

DRILLS: tuple[Drill, ...] = (*DB_DRILLS, *REDIS_DRILLS, OVERLOAD, *RELEASE_DRILLS, *FLEET_DRILLS)


def select(names: list[str]) -> list[Drill]:
    """Drills by name or shell-style pattern (`release-*`, `db-*`; `all` for every one), in catalog order;
    a name or pattern that matches nothing raises ValueError listing the catalog."""
    if names == ["all"]:
        return list(DRILLS)
    unmatched = [name for name in names if not any(fnmatch.fnmatchcase(d.name, name) for d in DRILLS)]
    if unmatched:
        known = ", ".join(drill.name for drill in DRILLS)
        raise ValueError(f"unknown drill(s) {', '.join(unmatched)}; known: {known}")
    return [drill for drill in DRILLS if any(fnmatch.fnmatchcase(drill.name, name) for name in names)]
