"""`python -m chaos targets` and `python -m chaos run … --target/--plan`: what applies where, printed before
anything runs, and "not applicable" never counted as a pass (RB-DRILL-TARGET)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chaos.drills.catalog import DRILLS
from chaos.drills.run import applicable
from chaos.targets.catalog import BUILTIN, EXAMPLES, offered

REPO = Path(__file__).resolve().parents[2]
STAGING = str(EXAMPLES / "staging.example.toml")
FLEET = {"instance-killed", "instance-partitioned", "rolling-deploy", "release-bad-image"}


def chaos(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_every_drill_declares_what_it_needs_and_the_fleet_drills_need_a_fleet() -> None:
    for target in BUILTIN.values():
        _, skipped = applicable(list(DRILLS), offered(target), target.name)
        assert {s.drill.name for s in skipped} >= FLEET, target.name
        assert all("not applicable to this target" in s.reason for s in skipped)
    local_runnable, _ = applicable(list(DRILLS), offered(BUILTIN["local"]), "local")
    assert {d.name for d in DRILLS} - {d.name for d in local_runnable} == FLEET  # everything else runs locally


def test_targets_lists_each_target_with_what_it_offers() -> None:
    listed = chaos("targets", "-v")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    assert "local [built in]" in out
    assert "docker [built in]" in out
    assert "staging-example [" in out
    assert "offers: proxy-faults\n" in out
    assert "– instance-killed: lacks balancer-view, replicas" in out
    unreadable = chaos("targets", "no-such-target.toml")
    assert unreadable.returncode == 2
    assert "cannot read the target file" in unreadable.stderr


def test_plan_prints_actions_blast_radius_and_aborts_and_does_nothing() -> None:
    planned = chaos("run", "all", "--target", STAGING, "--plan", "--hold", "2m")
    assert planned.returncode == 0, planned.stderr
    out = planned.stdout
    assert "plan for target staging-example (deployment): http://127.0.0.1:18080" in out
    assert "1. db-down" in out
    assert "blast radius: every replica's PostgreSQL connections" in out
    assert "inject: fault proxy `postgres` disabled" in out
    assert "remove: enable proxy postgres; rollbacks: restore dependencies" in out
    assert "keep the fault in place 120 s after it is observed (--hold)" in out
    assert "abort (then roll back at once) when: error budget consumed > 5.0%" in out
    for name in FLEET | {"db-hung-sigstop", "overload-spike", "release-bad-code"}:
        assert f"-  {name}: not applicable to this target (staging-example lacks" in out, name


def test_a_run_where_nothing_applies_starts_nothing_and_is_not_a_pass(tmp_path: Path) -> None:
    run = chaos("run", "instance-*", "--report-dir", str(tmp_path), "--no-prometheus")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "no selected drill applies to target local" in run.stderr
    assert "starting the stack" not in run.stdout
    summary = next(tmp_path.glob("*/summary.json")).read_text()
    assert summary.count('"verdict": "NOT APPLICABLE"') == 2
    assert "PASSED" not in summary


def test_bad_arguments_exit_2_with_the_reason() -> None:
    both = chaos("run", "db-down", "--target", "local", "--backend", "docker", "--plan")
    assert both.returncode == 2
    assert "--target and --backend exclude each other" in both.stderr
    hold = chaos("run", "db-down", "--hold", "forever")
    assert hold.returncode == 2
    assert "not a duration: 'forever'" in hold.stderr
    missing = chaos("run", "db-down", "--target", "nowhere")
    assert missing.returncode == 2
    assert "no target 'nowhere'" in missing.stderr
