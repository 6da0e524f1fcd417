"""A release by image tag across the fleet, one replica at a time, with post-deploy verification after each
(운영 런북: 배포 후 readiness/liveness 및 핵심 API 경로 검증), halting at the first replica that fails it
(배포 진행 중이면 배포 중단) — as a team's deploy job would, done through the fleet's driver.

Per replica: drain it (SIGTERM: readiness `draining`, the balancer takes it out, in-flight requests finish, it
exits), replace it with one running the new image, then verify the new one directly (readiness 200, liveness
200, an event written and read back) and wait for the balancer to route to it. Each step is written to the
drill's action record (롤백/재배포 기록) with the image tags.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from chaos.drills.model import DrillContext
from chaos.stack.fleet import Replica
from conformance.tls import shared_tls_context

VERIFY_TIMEOUT_S = 30.0  # a replica that is not ready and verified within this failed its verification
DRAIN_TIMEOUT_S = 30.0  # the replica's stop grace (docker-compose.prod.yml stop_grace_period)
ROTATION_TIMEOUT_S = 15.0


@dataclass
class Step:
    replaced: str  # the old replica's name
    replica: str  # the new replica's name
    image: str
    drained_s: float
    out_before_exit: bool | None  # the balancer had the old replica out before it exited (None: no view)
    verified: bool
    detail: str


@dataclass
class Rollout:
    image: str
    previous: str
    steps: list[Step] = field(default_factory=list)
    halted: str | None = None  # why the rollout stopped before every replica got the image

    @property
    def replaced(self) -> int:
        return len(self.steps)


def verify(ctx: DrillContext, replica: Replica, deadline_s: float = VERIFY_TIMEOUT_S) -> tuple[bool, str]:
    """Post-deploy verification of one replica, asked directly (not through the balancer)."""
    if replica.url is None:
        return False, f"{replica.name}: no direct address to verify it on (the target's probe_network)"
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    with httpx.Client(verify=shared_tls_context(), base_url=replica.url, timeout=3, headers=ctx.auth) as client:
        while time.monotonic() < deadline:
            ctx.check_abort()
            try:
                ready = client.get("/health/ready")
                if ready.status_code != 200:
                    last = f"readiness {ready.status_code}"
                    ctx.wait(0.5)
                    continue
                live = client.get("/health/live")
                event = {
                    "id": str(uuid.uuid4()),
                    "source": "post-deploy-verification",
                    "type": "release.verified",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                written = client.post("/api/v1/events", json=event)
                read = client.get(f"/api/v1/events/{event['id']}") if written.status_code == 201 else None
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}"
                ctx.wait(0.5)
                continue
            checks = {
                "readiness": ready.status_code,
                "liveness": live.status_code,
                "write": written.status_code,
                "read back": read.status_code if read is not None else "—",
            }
            summary = ", ".join(f"{name} {status}" for name, status in checks.items())
            ok = live.status_code == 200 and written.status_code == 201 and read is not None and read.status_code == 200
            return ok, summary
    return False, f"not ready within {deadline_s:.0f} s (last: {last})"


def _out_of_rotation_before(ctx: DrillContext, replica: Replica, exited_at: float) -> bool | None:
    watcher = ctx.state.get("fleet_watcher")
    if watcher is None:
        return None
    # "out": the balancer has it DOWN while its container still runs; after the exit it is "gone" instead.
    outs = [
        x for x in watcher.transitions() if x.replica == replica.name and x.source == "balancer" and x.state == "out"
    ]
    return any(x.t <= exited_at for x in outs)


def _wait_in_rotation(ctx: DrillContext, replica: Replica) -> bool:
    deadline = time.monotonic() + ROTATION_TIMEOUT_S
    while time.monotonic() < deadline:
        if ctx.stack.fleet().balancer_view().get(replica.id) is True:
            return True
        ctx.wait(0.2)
    return False


def replace_one(ctx: DrillContext, old: Replica, image: str) -> Step:
    fleet = ctx.stack.fleet()
    ctx.record(f"{old.name}: draining ({old.image}) for {image}")
    drained_s = fleet.drain(old, DRAIN_TIMEOUT_S)
    out_before_exit = _out_of_rotation_before(ctx, old, ctx.clock.now())
    new = fleet.replace(old, image)
    ok, detail = verify(ctx, new)
    if ok and not _wait_in_rotation(ctx, new):
        ok, detail = False, f"{detail}; not in the balancer's rotation within {ROTATION_TIMEOUT_S:.0f} s"
    drained = "out of rotation before it exited" if out_before_exit else "NOT out of rotation before it exited"
    ctx.record(
        f"{new.name} ({image}) replaced {old.name} after a {drained_s:.1f} s drain ({drained}); "
        f"post-deploy verification {'passed' if ok else 'FAILED'}: {detail}"
    )
    return Step(old.name, new.name, image, drained_s, out_before_exit, ok, detail)


def roll_out(ctx: DrillContext, image: str, *, previous: str) -> Rollout:
    """Replace every replica not on `image`, one at a time; halt at the first that fails verification."""
    fleet = ctx.stack.fleet()
    rollout = Rollout(image, previous)
    pending = [r for r in fleet.replicas() if r.image != image]
    ctx.record(f"rollout of {image} (previous {previous}) to {len(pending)} replica(s), one at a time")
    for number, old in enumerate(pending, 1):
        step = replace_one(ctx, old, image)
        rollout.steps.append(step)
        if not step.verified:
            left = len(pending) - number
            rollout.halted = f"post-deploy verification failed on {step.replica}; {left} replica(s) never got {image}"
            ctx.record(f"배포 중단 / rollout halted: {rollout.halted}")
            break
    return rollout
