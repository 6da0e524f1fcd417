"""What a report says about the target and, for a fleet, the load balancer's view: every change of a replica's
own readiness and of its place in the balancer's rotation, on the report's clock (T0 = the fault), and the
measured time the balancer took to follow each readiness change (RB-FLEET-ROTATION)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from chaos.drills.fleet_watch import rotation_lags
from chaos.drills.result import DrillResult

MAX_ROWS = 200  # a report lists at most this many transitions (the JSON report has them all)


def target_line(result: DrillResult) -> str | None:
    target = result.target
    if not target:
        return None
    parts = [f"{target.get('name')} ({target.get('kind')})", str(target.get("base_url", ""))]
    if "image" in target:
        parts.append(f"image {target['image']}, {target.get('replicas')} replicas")
    return "- 대상 / Target: " + " · ".join(part for part in parts if part)


def balancer_data(result: DrillResult) -> dict[str, Any] | None:
    if not result.fleet:
        return None
    start, _ = result.fault_window
    lags = rotation_lags(result.fleet)
    return {
        "transitions": [asdict(t) | {"at": round(t.t - start, 3)} for t in result.fleet],
        "rotation_lags": [asdict(lag) | {"readiness_at": round(lag.readiness_at - start, 3)} for lag in lags],
        "out_after_readiness_503_s": [round(lag.balancer_after_s, 3) for lag in lags if lag.direction == "out"],
        "in_after_readiness_200_s": [round(lag.balancer_after_s, 3) for lag in lags if lag.direction == "in"],
    }


def balancer_section(result: DrillResult) -> list[str]:
    data = balancer_data(result)
    if data is None:
        return []
    lines = ["## 부하 분산기 / Load balancer view", ""]
    outs, ins = data["out_after_readiness_503_s"], data["in_after_readiness_200_s"]
    if outs or ins:
        lines.append(
            "Readiness → balancer: out of rotation "
            + (", ".join(f"{s:.2f} s" for s in outs) or "—")
            + " after a replica's readiness turned 503; back in "
            + (", ".join(f"{s:.2f} s" for s in ins) or "—")
            + " after it turned 200."
        )
        lines.append("")
    lines += ["| T | replica | seen by | state |", "|---|---|---|---|"]
    for row in data["transitions"][:MAX_ROWS]:
        lines.append(f"| T{row['at']:+.2f} s | {row['replica']} | {row['source']} | {row['state']} |")
    if len(data["transitions"]) > MAX_ROWS:
        lines.append(f"| … | {len(data['transitions']) - MAX_ROWS} more in report.json | | |")
    return [*lines, ""]


def measurement_lines(result: DrillResult) -> list[str]:
    labels = {
        "client_requests": "client requests from the fault on",
        "client_failures": "of them failed",
        "failed_in_flight": "failed while in flight on the killed replica",
        "operator_time_to_mitigate_s": "operator's time to mitigate (s)",
    }
    return [f"- {labels.get(key, key)}: {value}" for key, value in result.measurements.items()]
