"""`python -m chaos export`: which drills become experiments, what they hold, and what is refused and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.cli import main as chaos_main
from chaos.ctk.configuration import Where
from chaos.ctk.experiment import NotExportable, experiment, exportable
from chaos.drills.catalog import DRILLS
from chaos.drills.model import Drill
from chaos.targets.catalog import resolve
from chaos.targets.spec import parse_target
from conformance.verdicts import Exit
from tests.ctk.chaostoolkit import ctk_python

EXPORTABLE = {"db-down", "db-refusing", "db-slow", "db-hung", "redis-down", "redis-slow"}
STAGING = Path(__file__).resolve().parents[2] / "targets" / "staging.example.toml"


def _drill(name: str) -> Drill:
    return next(drill for drill in DRILLS if drill.name == name)


def test_exactly_the_proxy_fault_drills_export_and_every_other_says_why() -> None:
    reasons = {drill.name: exportable(drill) for drill in DRILLS}
    assert {name for name, why in reasons.items() if why is None} == EXPORTABLE
    assert "server process" in str(reasons["db-hung-sigstop"])
    assert "fleet drill" in str(reasons["instance-killed"])
    assert "recorded" in str(reasons["redis-flapping"]) or "records" in str(reasons["redis-flapping"])
    assert "reconfigure" in str(reasons["overload-spike"]) or "environment" in str(reasons["overload-spike"])


def test_a_proxy_down_drill_disables_observes_enables_and_rolls_back() -> None:
    document = experiment(_drill("db-down"))
    method = document["method"]
    assert method[0]["provider"] == {
        "type": "python",
        "module": "chaostoxi.proxy.actions",
        "func": "disable_proxy",
        "arguments": {"proxy_name": "${postgres_proxy}"},
    }
    assert method[-1]["provider"]["func"] == "enable_proxy"
    assert document["rollbacks"][0]["provider"]["func"] == "enable_proxy"
    ready = next(a for a in method if a["name"] == "readiness 503 degraded naming database")
    assert ready["tolerance"] == 503
    assert ready["provider"]["url"] == "${base_url}/health/ready"
    hypothesis = document["steady-state-hypothesis"]["probes"]
    read = next(p for p in hypothesis if p["name"] == "API read succeeds")
    assert read["tolerance"] == 200
    assert read["provider"]["headers"] == {"X-API-Key": "${api_key}"}
    assert document["secrets"] == {"events-api": {"api_key": {"type": "env", "key": "API_KEY"}}}
    assert document["configuration"]["base_url"]["key"] == "EVENTS_API_URL"
    assert document["configuration"]["toxiproxy_url"]["key"] == "TOXIPROXY_URL"


def test_a_toxic_drill_creates_and_deletes_the_drills_own_toxic() -> None:
    method = experiment(_drill("db-slow"))["method"]
    assert method[0]["provider"]["func"] == "create_toxic"
    assert method[0]["provider"]["arguments"] == {
        "for_proxy": "${postgres_proxy}",
        "toxic_name": "drill-latency",
        "toxic_type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 600},
    }
    assert method[-1]["provider"]["func"] == "delete_toxic"
    assert method[-1]["provider"]["arguments"] == {"for_proxy": "${postgres_proxy}", "toxic_name": "drill-latency"}


def test_a_target_bakes_in_its_urls_and_proxy_names_but_only_names_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STAGING_API_KEY", "a-secret-value-never-written")
    document = experiment(_drill("redis-down"), Where(resolve(str(STAGING))))
    text = json.dumps(document)
    assert "a-secret-value-never-written" not in text
    assert document["configuration"]["base_url"] == "http://127.0.0.1:18080"
    assert document["configuration"]["toxiproxy_url"] == "http://127.0.0.1:18475"
    assert document["configuration"]["redis_proxy"] == "ratelimit"
    assert document["secrets"]["events-api"]["api_key"] == {"type": "env", "key": "STAGING_API_KEY"}


def test_a_target_without_a_toxiproxy_driver_cannot_take_a_proxy_fault(tmp_path: Path) -> None:
    bare = {"name": "bare", "kind": "deployment", "base_url": "http://127.0.0.1:18080", "credentials": {"api_key": "K"}}
    with pytest.raises(NotExportable, match="no Toxiproxy driver"):
        experiment(_drill("db-down"), Where(parse_target(bare, tmp_path / "bare.toml")))


def test_every_exported_experiment_is_valid_for_chaostoolkit_lib(tmp_path: Path) -> None:
    assert chaos_main(["export", "all", "--format", "chaostoolkit", "--output", str(tmp_path)]) == Exit.OK
    files = sorted(str(path) for path in tmp_path.glob("*.json"))
    assert {Path(f).stem for f in files} == EXPORTABLE
    code = """
import json, os, sys
from chaoslib.experiment import ensure_experiment_is_valid
os.environ["API_KEY"] = "only-for-validation"
for path in sys.argv[1:]:
    ensure_experiment_is_valid(json.load(open(path)))
print("valid", len(sys.argv) - 1)
"""
    assert ctk_python(code, *files).strip().endswith(f"valid {len(files)}")


def test_export_all_names_what_is_not_exportable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert chaos_main(["export", "all", "--format", "chaostoolkit", "--output", str(tmp_path)]) == Exit.OK
    err = capsys.readouterr().err
    for drill in DRILLS:
        if drill.name not in EXPORTABLE:
            assert f"{drill.name}: not exportable: " in err
    assert not (tmp_path / "instance-killed.json").exists()


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path)
    assert chaos_main(["export", "db-hung-sigstop", "--format", "chaostoolkit", "--output", out]) == Exit.COULD_NOT_RUN
    assert list(tmp_path.iterdir()) == []
    assert chaos_main(["export", "no-such-drill", "--format", "chaostoolkit", "--output", out]) == Exit.USAGE
    assert (
        chaos_main(["export", "db-down", "--format", "chaostoolkit", "--target", str(tmp_path / "x.toml")])
        == Exit.USAGE
    )
    with pytest.raises(SystemExit) as usage:
        chaos_main(["export", "db-down", "--format", "litmus"])
    assert usage.value.code == Exit.USAGE
    capsys.readouterr()
    assert chaos_main(["export", "redis-down", "--format", "chaostoolkit", "--output", "-"]) == Exit.OK
    assert json.loads(capsys.readouterr().out)["title"].startswith("Redis")
