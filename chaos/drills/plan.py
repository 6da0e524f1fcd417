"""`python -m chaos run … --plan`: every action a run would take, its target and blast radius, its abort
conditions and how its fault expires — printed, with nothing done."""

from __future__ import annotations

from chaos.drills.model import Drill
from chaos.drills.result import NotApplicable
from chaos.targets.spec import TargetSpec


def _name(action: object) -> str:
    return str(getattr(action, "__name__", action)).strip("_").replace("_", " ")


def plan_lines(
    runnable: list[Drill], skipped: list[NotApplicable], target: TargetSpec, *, hold_s: float, operator: bool
) -> list[str]:
    where = target.base_url or f"a throwaway {target.backend} stack the run starts and removes"
    lines = [f"plan for target {target.name} ({target.kind}): {where}", ""]
    for number, drill in enumerate(runnable, 1):
        dwell = max(drill.dwell_s, hold_s)
        lines += [
            f"{number}. {drill.name} — {drill.title}",
            f"   blast radius: {drill.blast}",
            f"   needs: {', '.join(sorted(drill.requires)) or 'the basic contract'}",
        ]
        if drill.setup is not None:
            lines.append(f"   setup: {_name(drill.setup)}")
        lines += [
            "   steady state: readiness 200, liveness 200, a read and a write succeed"
            + (", no symptom alert firing" if target.kind == "throwaway" or target.prometheus_url else ""),
            f"   inject: {drill.confirmed_cause}",
            *(f"   expect under fault: {probe.name}" for probe in drill.expected),
            *(f"   expect alert: {name}" for name in drill.expected_alerts),
            (
                f"   keep the fault in place {dwell:.0f} s after it is observed (--hold)"
                if hold_s > drill.dwell_s
                else f"   keep the fault in place at least {dwell:.0f} s from its injection, until a read and a "
                "write were answered under it"
            ),
        ]
        if operator:
            lines.append("   page the operator and wait for the runbook's mitigation (time-limited; then roll back)")
        if drill.mitigation.apply is not None:
            lines.append(f"   mitigation: {drill.mitigation.description}")
        lines += [
            f"   remove: {_name(drill.remove)}; rollbacks: {', '.join(_name(a) for a in drill.rollbacks) or 'none'}",
            f"   abort (then roll back at once) when: {'; '.join(drill.abort.describe())}",
            "   faults expire by themselves: proxy toxics and disabled proxies carry a lease; container faults a "
            "watchdog (docs/DEPLOYMENT.md)",
            "",
        ]
    for not_run in skipped:
        lines.append(f"-  {not_run.drill.name}: {not_run.reason}")
    if not runnable:
        lines.append("nothing to run: no selected drill applies to this target")
    return lines
