"""A finished drill as a Chaos Toolkit journal (chaostoolkit-journal.json), for the tools that read journals.

The keys, nesting and value types are those chaostoolkit-lib 1.44.0 writes (chaoslib.run.initialize_run_journal
and chaoslib.activity.execute_activity; tests/ctk checks ours against a journal the installed lib produced):

- `steady_states.before` / `.after`: the drill's steady-state and recovery probes, one run per probe (its first
  attempt's start, its last attempt's end: our probes retry until met), `tolerance_met` from our verdict;
  `during` stays empty (Chaos Toolkit's continuous hypothesis; the drill has none).
- `run`: the method — the fault's injection, every probe under fault and of the mitigation, and the removal —
  in the order they happened; `rollbacks`: the drill's rollbacks (not timed by the engine: stamped at the end).
- `status` and `deviated`, from our verdict: passed → completed, not deviated; steady state not met before the
  fault → failed (Chaos Toolkit's own answer, nothing was injected); a probe, durability or client-failure
  expectation not met → completed and deviated (a weakness found); a drill or rollback error → failed; an
  abort condition → aborted; Ctrl-C/SIGTERM → interrupted.
- our measurements (MTTD, MTTR, severity, error budget, durability, verdict, requirement IDs, provenance) in
  the experiment's `extensions`, the place the format has for them (chaoslib.extension).

Activities are the exported experiment's where the drill exports (chaos.ctk.experiment), so a reader sees the
same probe by the same name; anything else (alert probes, harness actions) is described as the harness call it
was: a python provider naming the drill engine, with the probe's tolerance as its argument.
"""

from __future__ import annotations

import copy
import platform
from datetime import timedelta
from typing import Any

from chaos.ctk.experiment import EXTENSION_NAME, NotExportable, experiment
from chaos.drills.model import Drill
from chaos.drills.result import DrillResult, JournalEntry
from conformance.provenance import current

# The chaostoolkit-lib release whose journal format this writes (requirements/chaostoolkit.txt pins it).
CHAOSLIB_FORMAT = "1.44.0"
BEFORE, UNDER_FAULT, MITIGATION, RECOVERY = "steady state", "under fault", "mitigation", "recovery"
# Marks on the drill clock that are method actions, in Chaos Toolkit's terms.
ACTION_MARKS = ("fault injected", "operator paged", "mitigation applied", "fault removed")
Json = dict[str, Any]


def chaostoolkit_journal(result: DrillResult, summary: Json) -> Json:
    """The journal of `result`; `summary` is chaos.drills.report.incident.summary(result) (the measurements)."""
    drill = result.drill
    document = _experiment(drill)
    by_name = _activities_by_name(document)
    end_t = _end_t(result)
    status, deviated = status_of(result)
    document.setdefault("extensions", [])
    document["extensions"] = [ext for ext in document["extensions"] if ext.get("name") != EXTENSION_NAME]
    document["extensions"].append(_measurements(result, summary, status, deviated))
    return {
        "chaoslib-version": CHAOSLIB_FORMAT,
        "platform": platform.platform(),
        "node": platform.node(),
        "experiment": document,
        "start": result.started_at.isoformat(),
        "status": status,
        "deviated": deviated,
        "steady_states": {
            "before": _hypothesis(result, BEFORE, by_name),
            "after": _hypothesis(result, RECOVERY, by_name),
            "during": [],
        },
        "run": _method(result, by_name),
        "rollbacks": _rollbacks(result, end_t),
        "end": _wall(result, end_t),
        "duration": end_t,
    }


def status_of(result: DrillResult) -> tuple[str, bool]:
    """(Chaos Toolkit's status, deviated) for our verdict (see the module docstring)."""
    if result.aborted is not None:
        return ("interrupted" if result.aborted.startswith("interrupted") else "aborted"), False
    if result.passed:
        return "completed", False
    if any(failure.startswith("steady state was not met before") for failure in result.failures):
        return "failed", False
    errored = any(failure.startswith(("drill error:", "rollback ")) for failure in result.failures)
    return ("failed" if errored else "completed"), True


def _experiment(drill: Drill) -> Json:
    try:
        return experiment(drill)
    except NotExportable as why:
        return {
            "title": drill.title,
            "description": drill.description,
            "tags": ["executable-runbook", f"scenario:{drill.scenario}", *drill.requirements],
            "steady-state-hypothesis": {"title": "the service is ready and serves reads and writes", "probes": []},
            "method": [],
            "rollbacks": [],
            "extensions": [{"name": f"{EXTENSION_NAME}-export", "not_exportable": str(why)}],
        }


def _activities_by_name(document: Json) -> dict[str, Json]:
    found: dict[str, Json] = {}
    hypothesis = document.get("steady-state-hypothesis") or {}
    for activity in [*document.get("method", []), *hypothesis.get("probes", [])]:
        found[activity["name"]] = activity  # a steady-state probe wins over the same name in the method
    return found


def _harness_activity(kind: str, name: str, arguments: Json) -> Json:
    """An activity the drill engine ran itself, as a python provider naming where it runs."""
    func = "await_probe" if kind == "probe" else "run_drill"
    activity: Json = {
        "type": kind,
        "name": name,
        "provider": {"type": "python", "module": "chaos.drills.engine", "func": func, "arguments": arguments},
    }
    if kind == "probe":
        activity["tolerance"] = True  # the engine's verdict on the probe's own tolerance (in `arguments`)
    return activity


def _wall(result: DrillResult, t: float) -> str:
    return (result.started_at + timedelta(seconds=t)).isoformat()


def _end_t(result: DrillResult) -> float:
    times = [entry.t for entry in result.journal] + list(result.marks.values()) + [s.t for s in result.samples]
    return round(max(times, default=0.0), 3)


def _probe_runs(result: DrillResult, phase: str, by_name: dict[str, Json]) -> list[tuple[float, Json]]:
    """One run per probe of `phase`: every attempt of it folded into one (first start, last end)."""
    attempts: dict[str, list[JournalEntry]] = {}
    for entry in result.journal:
        if entry.phase == phase:
            attempts.setdefault(entry.probe, []).append(entry)
    tolerances = {outcome.probe: outcome.tolerance for outcome in result.outcomes if outcome.phase == phase}
    runs = []
    for name, entries in attempts.items():
        first, last = entries[0], entries[-1]
        activity = _unpaused(by_name.get(name)) or _harness_activity(
            "probe", name, {"probe": name, "tolerance": tolerances.get(name, ""), "phase": phase}
        )
        run = {
            "activity": activity,
            "output": {"value": last.value, "detail": last.detail, "ok": last.ok, "attempts": len(entries)},
            "start": first.at,
            "status": "succeeded",  # the probe ran; whether it was met is `tolerance_met` (as Chaos Toolkit keeps it)
            "end": last.at,
            "duration": round(last.t - first.t, 6),
            "tolerance_met": last.ok,
        }
        runs.append((first.t, run))
    return runs


def _hypothesis(result: DrillResult, phase: str, by_name: dict[str, Json]) -> Json | None:
    runs = [run for _, run in _probe_runs(result, phase, by_name)]
    if not runs:
        return None  # never reached (Chaos Toolkit's value for a hypothesis it did not run)
    return {"steady_state_met": all(run["tolerance_met"] for run in runs), "probes": runs}


def _method(result: DrillResult, by_name: dict[str, Json]) -> list[Json]:
    drill = result.drill
    timed = _probe_runs(result, UNDER_FAULT, by_name) + _probe_runs(result, MITIGATION, by_name)
    for run in [run for _, run in timed]:
        run.pop("tolerance_met")  # a method probe has none in Chaos Toolkit's journal
    names = {
        "fault injected": getattr(drill.inject, "__name__", "inject"),
        "fault removed": getattr(drill.remove, "__name__", "remove"),
        "mitigation applied": drill.mitigation.description,
        "operator paged": "page the operator",
    }
    exported_actions = [a for a in by_name.values() if a["type"] == "action"]
    later = sorted([entry.t for entry in result.journal] + list(result.marks.values()))
    for mark in ACTION_MARKS:
        t = result.marks.get(mark)
        if t is None:
            continue
        exported = [a for a in exported_actions if a.get("name") == _exported_action_name(mark, exported_actions)]
        activity = _unpaused(exported[0]) if exported else _harness_activity("action", names[mark], {"step": mark})
        # The engine marks an action just before running it and goes on at once: the next thing it records
        # after the mark is when the action had finished.
        end = next((other for other in later if other > t), t)
        run = {
            "activity": activity,
            "output": None,
            "start": _wall(result, t),
            "status": "succeeded",
            "end": _wall(result, end),
            "duration": round(end - t, 6),
        }
        timed.append((t, run))
    return [run for _, run in sorted(timed, key=lambda item: item[0])]


def _exported_action_name(mark: str, actions: list[Json]) -> str | None:
    """The exported experiment's action for a mark: its first action injects, its last removes."""
    if not actions:
        return None
    if mark == "fault injected":
        return str(actions[0]["name"])
    if mark == "fault removed":
        return str(actions[-1]["name"])
    return None


def _rollbacks(result: DrillResult, end_t: float) -> list[Json]:
    runs = []
    for action in result.drill.rollbacks:
        name = getattr(action, "__name__", str(action))
        failed = [f for f in result.failures if f.startswith(f"rollback {name} failed")]
        runs.append(
            {
                "activity": _harness_activity("action", name, {"step": "rollback"}),
                "output": {"error": failed[0]} if failed else None,
                "start": _wall(result, end_t),
                "status": "failed" if failed else "succeeded",
                "end": _wall(result, end_t),
                "duration": 0.0,  # the engine does not time its rollbacks
            }
        )
    return runs


def _measurements(result: DrillResult, summary: Json, status: str, deviated: bool) -> Json:
    recovery = summary["recovery_verification"]
    return {
        "name": EXTENSION_NAME,
        "drill": result.drill.name,
        "verdict": summary["verdict"],
        "chaostoolkit_status": status,
        "deviated": deviated,
        "failures": list(result.failures),
        "aborted": result.aborted,
        "requirements": list(result.drill.requirements),
        "severity": summary["severity"],
        "mttd_s": recovery["detection_signal_s"],
        "mttd_signal": recovery["detection_signal"],
        "mttd_alert_s": recovery["detection_alert_s"],
        "mttd_alert": recovery["detection_alert"],
        "mttr_s": recovery["recovery_s"],
        "alerts_resolved_s": recovery["alerts_resolved_s"],
        "error_budget": summary["error_budget"],
        "durability": recovery["durability"],
        "impact": summary["impact"],
        "marks": recovery["marks"],
        "target": result.target,
        "provenance": current(result.started_at).as_dict(),
        "report": "report.json",  # beside this journal: the incident report with every figure
    }


def _unpaused(activity: Json | None) -> Json | None:
    """An exported activity as the drill ran it: without the experiment's pauses (the engine waits its own way)."""
    if activity is None:
        return None
    copied = copy.deepcopy(activity)
    copied.pop("pauses", None)
    return copied
