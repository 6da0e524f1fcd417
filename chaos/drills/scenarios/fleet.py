"""Fleet drills: a deployment's replicas behind its load balancer (RB-FLEET-ROTATION, RB-FLEET-INSTANCE-LOSS,
RB-ROLLBACK-IMAGE). They need a target with replicas (a `docker` driver: python -m chaos targets) and are "not
applicable" anywhere else.

- instance-killed: SIGKILL to one replica under traffic; only requests in flight on it may fail; it comes back.
- instance-partitioned: one replica cut from PostgreSQL and Redis; only it turns not-ready; no client sees a 5xx.
- rolling-deploy: the next image to every replica, one at a time, each drained first; not one failed request.
- release-bad-image: a broken image; verification fails on the first replica, the rollout halts there, the
  previous good tag is redeployed and verified.
"""

from __future__ import annotations

from collections.abc import Callable

from chaos.drills import fleet_probes, probes
from chaos.drills.model import (
    INCIDENT_REQUIREMENTS,
    AbortConditions,
    Drill,
    DrillContext,
    Mitigation,
    Observation,
    Probe,
)
from chaos.drills.rollout import Rollout, roll_out, verify

RESTART_GRACE_S = 10.0  # how long the restart policy gets before the drill starts the killed replica itself
FLEET_ABORT = AbortConditions(max_budget_consumed=0.01, stop_alerts=("EventsApiDatabaseDown", "EventsApiNotReady"))


def _choose_victim(ctx: DrillContext) -> None:
    replicas = ctx.stack.fleet().replicas()
    if len(replicas) < 2:
        raise RuntimeError(f"a fleet drill needs at least 2 replicas; the target runs {len(replicas)}")
    ctx.state["victim"] = replicas[0]
    ctx.record(f"chosen replica: {replicas[0].name} ({replicas[0].image}); {len(replicas)} replicas in all")


# -- instance-killed ---------------------------------------------------------------------------------------


def _kill(ctx: DrillContext) -> None:
    _choose_victim(ctx)
    victim = fleet_probes.chosen(ctx)
    ctx.mark("killing replica")
    ctx.stack.fleet().kill(victim)  # returns once the process is gone: requests sent before may have reached it
    ctx.mark("replica killed")
    ctx.record(f"SIGKILL to {victim.name}'s main process (a crash: its restart policy applies)")


def _restart_if_needed(ctx: DrillContext) -> None:
    """What an orchestrator does for a dead instance: wait for the restart policy, else start it."""
    fleet = ctx.stack.fleet()
    victim = fleet_probes.chosen(ctx)
    waited = 0.0
    while waited < RESTART_GRACE_S and not fleet.running(victim):
        ctx.wait(0.25)
        waited += 0.25
    if fleet.running(victim):
        ctx.record(f"{victim.name} restarted by its restart policy")
    else:
        fleet.start(victim)
        ctx.record(f"{victim.name} not restarted by a policy within {RESTART_GRACE_S:.0f} s: started by the drill")


def _in_flight_only() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        killing, killed = ctx.result.marks["killing replica"], ctx.result.marks["replica killed"]
        failed = [s for s in ctx.traffic.samples(since=killing - 30) if s.status >= 500 or s.status == 0]
        beyond = [s for s in failed if not (s.t <= killed and s.t + s.latency_s >= killing)]
        return Observation(
            not beyond, len(failed), f"{len(failed)} failed so far, {len(beyond)} not in flight at the kill"
        )

    return Probe("failures only for requests in flight at the kill", "failed ⊆ in flight at the kill", observe, 2.0)


INSTANCE_KILLED = Drill(
    name="instance-killed",
    title="인스턴스 장애 / a replica SIGKILLed under traffic",
    scenario="fleet",
    requirements=("RB-FLEET-INSTANCE-LOSS", "RB-FLEET-ROTATION", *INCIDENT_REQUIREMENTS),
    description="SIGKILL to one replica's main process under traffic; the balancer routes around it",
    inject=_kill,
    remove=lambda ctx: None,  # the crash is over once the replica runs again (the mitigation)
    expected=(
        fleet_probes.out_of_rotation(),
        fleet_probes.others_in_rotation(),
        probes.api_ok("read"),
        _in_flight_only(),
    ),
    mitigation=Mitigation(
        description="자동 (automatic): the balancer's health check (GET /health/ready every 1 s, fall 1) takes "
        "the dead replica out, `option redispatch` sends requests that could not connect to another replica, and "
        "the restart policy starts it again; it rejoins after two passing checks.",
        risk="Requests in flight on the replica when it died are lost to their clients (a 502 REPLICA_FAILED from "
        "the balancer); clients retry them with their own event ids.",
        apply=_restart_if_needed,
        verify=(fleet_probes.running(), fleet_probes.replica_ready(), fleet_probes.in_rotation()),
    ),
    suspected_cause="one replica stopped answering: the balancer marked it DOWN (connection refused)",
    confirmed_cause="SIGKILL to one replica's main process (a crash)",
    follow_up=(
        "Capacity: with one replica down the others carry all traffic; keep N+1 replicas for the peak.",
        "Clients: retry a 502 REPLICA_FAILED with the same event ids (idempotent ingest).",
    ),
    client_failures="in-flight",
    recovery_extra=(fleet_probes.in_rotation(),),
    requires=frozenset({"replicas", "balancer-view"}),
    blast_radius="one replica (the lowest-numbered); the requests in flight on it",
    abort=FLEET_ABORT,
    tags={"dependency": "replica", "fault": "killed"},
)


# -- instance-partitioned ----------------------------------------------------------------------------------


def _partition(ctx: DrillContext) -> None:
    _choose_victim(ctx)
    victim = fleet_probes.chosen(ctx)
    ctx.stack.fleet().partition(victim)
    ctx.record(f"{victim.name} disconnected from the network to PostgreSQL and Redis")


def _heal(ctx: DrillContext) -> None:
    victim = ctx.state.get("victim")
    if victim is not None:
        ctx.stack.fleet().heal(victim)
        ctx.record(f"{victim.name} reconnected")


INSTANCE_PARTITIONED = Drill(
    name="instance-partitioned",
    title="DB 장애 (한 인스턴스) / one replica loses its database",
    scenario="db",
    requirements=("RB-FLEET-ROTATION", "RB-HEALTH-READY-DEGRADED", *INCIDENT_REQUIREMENTS),
    description="one replica disconnected from the network it reaches PostgreSQL and Redis on",
    inject=_partition,
    remove=_heal,
    expected=(
        fleet_probes.replica_ready(degraded_on="database"),
        fleet_probes.out_of_rotation(),
        fleet_probes.others_in_rotation(),
        probes.api_served_within("read", 1.0),
        probes.api_served_within("write", 1.0),
    ),
    mitigation=Mitigation(
        description="자동 (automatic): the replica's readiness turns 503 `degraded` naming database and the "
        "balancer takes it out of rotation; the other replicas serve every request; it rejoins once its "
        "readiness is 200 again.",
        risk="While it is out the others carry all traffic; a fault every replica shares (the database itself) "
        "takes them all out at once (then the balancer answers 503 NO_READY_REPLICA).",
    ),
    suspected_cause="one replica's readiness 503 naming database while the others are ready: its own path to "
    "PostgreSQL, not PostgreSQL",
    confirmed_cause="one replica disconnected from the backend network (PostgreSQL and Redis unreachable from it)",
    follow_up=("Alerting: a per-replica readiness alert tells a partition from a database outage.",),
    rollbacks=(_heal,),
    client_failures="none",
    recovery_extra=(fleet_probes.replica_ready(), fleet_probes.in_rotation()),
    requires=frozenset({"replica-partition", "balancer-view"}),
    blast_radius="one replica's connections to PostgreSQL and Redis",
    abort=FLEET_ABORT,
    tags={"dependency": "postgres", "fault": "partition"},
)


# -- rolling-deploy and release-bad-image ------------------------------------------------------------------


def _remember_images(ctx: DrillContext) -> None:
    fleet = ctx.stack.fleet()
    ctx.state["previous_image"] = fleet.image
    ctx.state["candidate_image"] = fleet.candidate_image
    ctx.state["broken_image"] = fleet.broken_image
    for name in ("candidate_image", "broken_image"):
        image = ctx.state[name]
        if not image or not fleet.image_exists(image):
            raise RuntimeError(f"the target's {name} {image!r} is not an image on its Docker engine")


def _deploy(image_key: str) -> Callable[[DrillContext], None]:
    def deploy(ctx: DrillContext) -> None:
        ctx.mark("rollout started")
        ctx.state["rollout"] = roll_out(ctx, ctx.state[image_key], previous=ctx.state["previous_image"])

    deploy.__name__ = f"deploy_{image_key}"
    return deploy


def _redeploy_previous(ctx: DrillContext) -> None:
    """직전 정상 이미지/태그 재배포: every replica not on the previous good image gets it back, verified."""
    previous = ctx.state.get("previous_image")
    if previous is None:
        return
    if any(r.image != previous for r in ctx.stack.fleet().replicas()):
        rollout = roll_out(ctx, previous, previous=previous)
        ctx.state["redeploy"] = rollout
        if rollout.halted:
            raise RuntimeError(f"redeploying {previous} failed: {rollout.halted}")


def _rollout_probe(name: str, tolerance: str, judge: Callable[[Rollout, int], tuple[bool, str]]) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        rollout: Rollout = ctx.state["rollout"]
        ok, detail = judge(rollout, len(ctx.stack.fleet().replicas()))
        return Observation(ok, rollout.replaced, detail)

    return Probe(name, tolerance, observe, timeout_s=1.0)


def _all_replaced(rollout: Rollout, replicas: int) -> tuple[bool, str]:
    ok = rollout.halted is None and rollout.replaced == replicas and all(s.verified for s in rollout.steps)
    return ok, f"{rollout.replaced}/{replicas} replaced and verified" + (
        f"; halted: {rollout.halted}" if rollout.halted else ""
    )


def _each_drained(rollout: Rollout, replicas: int) -> tuple[bool, str]:
    drained = [s for s in rollout.steps if s.out_before_exit]
    ok = bool(rollout.steps) and len(drained) == len(rollout.steps)
    return ok, ", ".join(
        f"{s.replaced}: {s.drained_s:.1f} s drain, out first={s.out_before_exit}" for s in rollout.steps
    )


def _halted_at_first(rollout: Rollout, replicas: int) -> tuple[bool, str]:
    ok = rollout.replaced == 1 and rollout.halted is not None and not rollout.steps[0].verified
    first = rollout.steps[0] if rollout.steps else None
    detail = f"replaced {rollout.replaced} of {replicas}; " + (f"{first.replica}: {first.detail}" if first else "")
    return ok, detail


def _back_on_previous_and_verified() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        previous = ctx.state["previous_image"]
        replicas = ctx.stack.fleet().replicas()
        results = [(r, verify(ctx, r, deadline_s=5)) for r in replicas]
        ok = all(r.image == previous and passed for r, (passed, _) in results)
        return Observation(ok, len(replicas), "; ".join(f"{r.name} {r.image}: {detail}" for r, (_, detail) in results))

    return Probe(
        "every replica on the previous good image, verified", "image = previous; verification passes", observe, 30.0
    )


ROLLING_DEPLOY = Drill(
    name="rolling-deploy",
    title="배포 / rolling deploy v1 → v2, one replica at a time",
    scenario="fleet",
    requirements=("RB-FLEET-ROTATION", *INCIDENT_REQUIREMENTS),
    description="the candidate image to every replica, one at a time: drain, replace, verify; then back",
    setup=_remember_images,
    inject=_deploy("candidate_image"),
    remove=_redeploy_previous,  # leave the deployment as found: the previous image, deployed the same way
    expected=(
        _rollout_probe("every replica replaced and verified", "all replicas on the candidate, verified", _all_replaced),
        _rollout_probe("each replica out of rotation before it stopped", "drained first", _each_drained),
        fleet_probes.every_replica_runs("candidate_image"),
    ),
    mitigation=Mitigation(
        description="None needed: a healthy rollout. Each replica is drained (readiness `draining` takes it out "
        "of rotation before it stops accepting) and verified before the next.",
        risk="Capacity is one replica lower while each is replaced.",
    ),
    suspected_cause="—",
    confirmed_cause="a planned release of the candidate image",
    follow_up=("Keep DRAIN_DELAY_S above the balancer's check interval × fall (1 s × 1) so a replica is out first.",),
    rollbacks=(_redeploy_previous,),
    client_failures="none",
    dwell_s=1.0,
    requires=frozenset({"image-deploy", "balancer-view"}),
    blast_radius="every replica, one at a time (capacity minus one while each is replaced)",
    abort=FLEET_ABORT,
    tags={"dependency": "release", "fault": "rolling"},
)

RELEASE_BAD_IMAGE = Drill(
    name="release-bad-image",
    title="배포/릴리스 장애 / a broken image tag rolls out",
    scenario="release",
    requirements=("RB-ROLLBACK-IMAGE", "RB-OPS-CHANGELOG", *INCIDENT_REQUIREMENTS),
    description="a broken image (ingest crashes) rolled out; verification halts it after the first replica",
    setup=_remember_images,
    inject=_deploy("broken_image"),
    remove=lambda ctx: None,  # the mitigation redeploys the previous tag
    expected=(
        _rollout_probe(
            "rollout halted after the first replica", "1 replaced, verification failed, halted", _halted_at_first
        ),
    ),
    mitigation=Mitigation(
        description="배포 중단 (the rollout halted at the first replica that failed verification), then 직전 정상 "
        "이미지/태그 재배포: the previous good tag redeployed to that replica, verified.",
        risk="Until the redeploy the broken replica serves part of the traffic (its answers fail); the rest never "
        "got the broken tag.",
        apply=_redeploy_previous,
        verify=(_back_on_previous_and_verified(),),
    ),
    suspected_cause="5xx on ingest from one replica right after a deploy began",
    confirmed_cause="the broken image's ingest crashes (500) before it stores anything",
    follow_up=("Gate the rollout on the first replica (a canary) before the balancer sends it traffic.",),
    rollbacks=(_redeploy_previous,),
    server_errors_expected=True,
    requires=frozenset({"image-deploy"}),
    blast_radius="the first replica (the rollout halts there); its share of traffic until the redeploy",
    abort=AbortConditions(max_budget_consumed=0.05),
    tags={"dependency": "release", "fault": "bad-image"},
)

FLEET_DRILLS = (INSTANCE_KILLED, INSTANCE_PARTITIONED, ROLLING_DEPLOY, RELEASE_BAD_IMAGE)
