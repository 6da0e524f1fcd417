"""A drill as a Chaos Toolkit experiment, runnable with `chaos run` against `python -m chaos stack up` or a target.

The drill's phases map onto the experiment's: its steady state (readiness, liveness, an authenticated read and
write) is the steady-state hypothesis, checked before and after the method; the method injects the fault with
chaostoolkit-toxiproxy, observes the degraded behaviour the drill expects, keeps the fault for the drill's dwell
and removes it, then leaves the service time to recover; the rollbacks remove the fault again, in case the run
stopped half-way. What Chaos Toolkit cannot judge — it records method probes without checking their tolerance,
and reads only status codes — is listed in the experiment's extension (`judged_only_by_the_harness`).

Only drills whose faults are chaostoolkit-toxiproxy calls and whose expectations are HTTP answers export; any
other raises `NotExportable` with the reason, never a half-experiment.
"""

from __future__ import annotations

from typing import Any

from chaos.ctk import activities
from chaos.ctk.activities import Activity
from chaos.ctk.configuration import NoFaultDriver, Where
from chaos.ctk.introspect import built_by
from chaos.drills import probes
from chaos.drills.model import Drill, Probe
from chaos.stack.base import Capability, Dependency

EXTENSION_NAME = "executable-runbook"
EXPERIMENT_VERSION = "1.0.0"

# Why a drill that needs this capability has no experiment: what it asks of the target that only the harness
# holds (or that needs Docker and a balancer, which the experiment would have to drive itself).
CAPABILITY_WHY: dict[Capability, str] = {
    "dependency-process": "it stops, kills or pauses the dependency's server process (SIGSTOP/SIGKILL), and "
    "only the harness that started the stack holds those processes",
    "service-reconfigure": "its mitigation restarts the service with another environment, which only the "
    "harness that started the service can do",
    "rolling-restart": "it restarts the service beside itself, which only the harness that started it can do",
    "deploy-checkout": "it deploys another checkout of the code (a release and its rollback)",
    "replicas": "it is a fleet drill: it kills and restarts replicas through the Docker engine",
    "replica-partition": "it is a fleet drill: it cuts one replica from its dependencies on the Docker network",
    "image-deploy": "it is a fleet drill: it redeploys replicas on another image tag",
    "balancer-view": "it is a fleet drill: it reads the load balancer's own view of every replica",
}
EXPORTABLE_CAPABILITIES: frozenset[Capability] = frozenset({"proxy-faults"})
DEPENDENCY_OF_CHECK = {"database": "postgres", "redis": "redis"}


class NotExportable(Exception):
    """The drill needs something a Chaos Toolkit experiment cannot express; the message says what."""


def experiment(drill: Drill, where: Where | None = None) -> dict[str, Any]:
    """The drill as an experiment against `where` (default: `python -m chaos stack up`, by environment)."""
    where = where or Where()
    _check_exportable(drill)
    notes: list[str] = []
    steady = [_probe(probe, notes, in_hypothesis=True) for probe in (*_steady_probes(), *drill.steady_state_extra)]
    try:
        inject, remove = _fault(drill, where)
    except NoFaultDriver as error:
        raise NotExportable(str(error)) from None
    expected = [_probe(probe, notes, in_hypothesis=False) for probe in drill.expected]
    observed = [activity for activity in expected if activity is not None]
    if observed:
        observed[-1] = activities.paused(observed[-1], after="dwell_s")
    method = [
        activities.paused(inject, after="detect_pause_s"),
        *observed,
        activities.paused(remove, after="recovery_pause_s"),
    ]
    rollback = {**remove, "name": f"rollback: {remove['name']}"}
    return {
        "version": EXPERIMENT_VERSION,
        "title": drill.title,
        "description": _description(drill),
        "tags": _tags(drill),
        "configuration": where.configuration(drill.dwell_s),
        "secrets": where.secrets(),
        "steady-state-hypothesis": {
            "title": "the service is ready and serves authenticated reads and writes",
            "probes": [activity for activity in steady if activity is not None],
        },
        "method": method,
        "rollbacks": [rollback],
        "extensions": [extension(drill, where, notes)],
    }


def exportable(drill: Drill, where: Where | None = None) -> str | None:
    """None when the drill exports; else why not."""
    try:
        experiment(drill, where)
    except NotExportable as error:
        return str(error)
    return None


def extension(drill: Drill, where: Where, notes: list[str]) -> dict[str, Any]:
    return {
        "name": EXTENSION_NAME,
        "drill": drill.name,
        "scenario": drill.scenario,
        "requirements": list(drill.requirements),
        "target": where.describe(),
        "run_with_the_harness": f"python -m chaos run {drill.name}",
        "judged_only_by_the_harness": notes,
    }


def _steady_probes() -> tuple[Probe, ...]:
    return probes.steady_state(with_alerts=False)


def _check_exportable(drill: Drill) -> None:
    missing = sorted(drill.requires - EXPORTABLE_CAPABILITIES)
    if missing:
        raise NotExportable("; ".join(f"needs {capability}: {CAPABILITY_WHY[capability]}" for capability in missing))
    if drill.setup is not None or drill.during_fault is not None or drill.mitigation.apply is not None:
        raise NotExportable(
            "it runs harness code besides the fault (a setup, traffic during the fault or a mitigation)"
        )
    for probe in (*drill.expected, *drill.steady_state_extra):
        if _translate(probe) is None:
            raise NotExportable(
                f"its expectation '{probe.name}' ({probe.tolerance}) is judged on what the harness records "
                "(its traffic, alerts or fleet view), which an experiment's HTTP probes cannot express"
            )
    for action in (drill.inject, drill.remove):
        built = built_by(action)
        if built is None or built.module != "chaos.drills.actions" or built.factory not in ("proxy_down", "toxic"):
            name = getattr(action, "__name__", "?").strip("_").replace("_", " ")
            raise NotExportable(f"its fault ({name}) is harness code, not one chaostoolkit-toxiproxy call")


def _fault(drill: Drill, where: Where) -> tuple[Activity, Activity]:
    """The (inject, remove) actions; `_check_exportable` has made sure both are proxy_down or toxic."""
    built = built_by(drill.inject)
    assert built is not None
    dependency: Dependency = built.parameters["dependency"]
    where.proxy_name(dependency)  # NoFaultDriver when the target cannot break this dependency
    key = f"{dependency}_proxy"
    if built.factory == "proxy_down":
        return (
            activities.disable_proxy(key, f"disable proxy {dependency}"),
            activities.enable_proxy(key, f"enable proxy {dependency}"),
        )
    kind, attributes = built.parameters["kind"], dict(built.parameters["attributes"])
    toxic_name = f"drill-{kind}"  # the name chaos.drills.actions.toxic gives it
    return (
        activities.create_toxic(key, f"add {kind} toxic to {dependency}", toxic_name, kind, attributes),
        activities.delete_toxic(key, f"remove the {kind} toxic from {dependency}", toxic_name),
    )


def _translate(probe: Probe) -> tuple[Activity | None, str | None] | None:
    """(the HTTP probe, what of the drill's tolerance it cannot check), or None when it has no HTTP form."""
    built = built_by(probe.observe)
    if built is None or built.module != "chaos.drills.probes":
        return None
    name, values = probe.name, built.parameters
    kind = values.get("kind", "read")
    served = 200 if kind == "read" else [200, 201]
    if built.factory == "ready_ok":
        return activities.readiness(name, 200), None
    if built.factory == "live_ok":
        return activities.liveness(name), None
    if built.factory == "api_ok":
        return activities.api(name, kind, served), None
    if built.factory == "ready_degraded":
        note = f"{name}: the status 503 is the tolerance; `degraded` naming {values['check']} is in the recorded body"
        return activities.readiness(name, 503), note
    if built.factory == "api_fails_fast":
        note = f"{name}: the status 503 is the tolerance and the bound the request timeout; the code is in the body"
        return activities.api(name, kind, 503, timeout_s=values["bound_s"]), note
    if built.factory == "api_served_within":
        return activities.api(name, kind, served, timeout_s=values["bound_s"]), None
    if built.factory == "api_bounded":
        return activities.api(name, kind, [200, 201, 503], timeout_s=values["bound_s"]), None
    if built.factory == "rate_limit_backend":
        note = f"{name}: readiness's rate_limit_backend field is recorded, not checked (no status tells it)"
        return activities.readiness(name, None), note
    return None


def _probe(probe: Probe, notes: list[str], *, in_hypothesis: bool) -> Activity | None:
    translated = _translate(probe)
    assert translated is not None  # _check_exportable refused the drill otherwise
    activity, note = translated
    if in_hypothesis and (activity is None or "tolerance" not in activity):
        notes.append(f"{probe.name} (steady state): judged only by the harness")
        return None
    if note:
        notes.append(note)
    if not in_hypothesis:
        notes.append(
            f"{probe.name} (under fault): recorded in the journal's run; Chaos Toolkit checks no tolerance there"
        )
    return activity


def _description(drill: Drill) -> str:
    expected = "; ".join(f"{probe.name} ({probe.tolerance})" for probe in drill.expected)
    return (
        f"{drill.description}. Expected under fault: {expected}. Mitigation: {drill.mitigation.description} "
        f"Exported from the drill `{drill.name}` of the executable runbook (python -m chaos export)."
    )


def _tags(drill: Drill) -> list[str]:
    tags = ["executable-runbook", f"scenario:{drill.scenario}"]
    tags += [f"{key}:{value}" for key, value in sorted(drill.tags.items())]
    return tags + list(drill.requirements)
