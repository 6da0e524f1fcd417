"""Every drill run's Chaos Toolkit journal: what maps to what, and that drill reports write it."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.ctk.experiment import EXTENSION_NAME
from chaos.ctk.journal import chaostoolkit_journal, status_of
from chaos.drills.report.incident import summary, write_reports
from tests.ctk.finished_drills import finished
from tests.drills.drill_results import result


def _journal(name: str = "db-down", *, recovered: bool = True) -> dict[str, object]:
    done = finished(name, recovered=recovered)
    return chaostoolkit_journal(done, summary(done))


def _extension(journal: dict[str, object]) -> dict[str, object]:
    experiment = journal["experiment"]
    assert isinstance(experiment, dict)
    return next(ext for ext in experiment["extensions"] if ext["name"] == EXTENSION_NAME)


def test_a_passed_drill_is_completed_and_not_deviated() -> None:
    journal = _journal()
    assert (journal["status"], journal["deviated"]) == ("completed", False)
    steady = journal["steady_states"]
    assert isinstance(steady, dict)
    assert steady["before"]["steady_state_met"] is True
    assert steady["after"]["steady_state_met"] is True
    assert [probe["activity"]["name"] for probe in steady["before"]["probes"]] == [
        "readiness 200 ready",
        "liveness 200",
        "API read succeeds",
        "API write succeeds",
    ]
    # The exported experiment's own HTTP probe, and our attempts folded into one run.
    first = steady["before"]["probes"][0]
    assert first["activity"]["provider"]["type"] == "http"
    assert first["output"]["attempts"] == 1


def test_the_method_is_the_fault_its_expectations_and_its_removal_in_order() -> None:
    runs = _journal()["run"]
    assert isinstance(runs, list)
    names = [run["activity"]["name"] for run in runs]
    assert names[0] == "disable proxy postgres"
    assert names[-1] == "enable proxy postgres"
    assert "readiness 503 degraded naming database" in names[1:-1]
    assert [run["start"] for run in runs] == sorted(run["start"] for run in runs)
    assert all("pauses" not in run["activity"] for run in runs)  # the engine waited its own way


def test_a_drill_that_does_not_recover_deviates() -> None:
    journal = _journal(recovered=False)
    assert (journal["status"], journal["deviated"]) == ("completed", True)
    assert journal["steady_states"]["after"]["steady_state_met"] is False  # type: ignore[index]
    assert _extension(journal)["verdict"] == "FAILED"


def test_verdicts_map_onto_chaos_toolkit_statuses() -> None:
    cases = {
        "steady state was not met before the fault; nothing was injected": ("failed", False),
        "drill error: RuntimeError: boom": ("failed", True),
        "rollback restore_dependencies failed: refused": ("failed", True),
        "durability: 1 acknowledged events missing, 0 duplicated, 0 partial batches": ("completed", True),
    }
    for failure, expected in cases.items():
        done = result("db-down")
        done.failures.append(failure)
        assert status_of(done) == expected, failure
    aborted = result("db-down")
    aborted.aborted, aborted.failures = "error budget consumed > 5.0%", ["aborted: …"]
    assert status_of(aborted) == ("aborted", False)
    aborted.aborted = "interrupted (Ctrl-C or SIGTERM)"
    assert status_of(aborted) == ("interrupted", False)


def test_measurements_go_into_the_experiments_extension() -> None:
    done = finished("redis-down")
    data = summary(done)
    extension = _extension(chaostoolkit_journal(done, data))
    recovery = data["recovery_verification"]
    assert extension["mttd_s"] == recovery["detection_signal_s"] is not None
    assert extension["mttr_s"] == recovery["recovery_s"] is not None
    assert extension["severity"] == data["severity"]
    assert extension["error_budget"] == data["error_budget"]
    assert extension["durability"] == recovery["durability"]
    assert extension["requirements"] == list(done.drill.requirements)
    assert extension["verdict"] == "PASSED"
    assert len(str(extension["provenance"]["commit"])) >= 7  # type: ignore[index]


def test_a_drill_that_does_not_export_still_gets_a_journal() -> None:
    journal = _journal("instance-killed")
    experiment = journal["experiment"]
    assert isinstance(experiment, dict)
    assert any("not_exportable" in ext for ext in experiment["extensions"])
    runs = journal["steady_states"]["before"]["probes"]  # type: ignore[index]
    assert runs[0]["activity"]["provider"]["module"] == "chaos.drills.engine"


def test_drill_reports_write_the_chaos_toolkit_journal_beside_the_others(tmp_path: Path) -> None:
    write_reports(finished(), tmp_path, None)
    assert {"report.md", "report.json", "journal.json", "chaostoolkit-journal.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    journal = json.loads((tmp_path / "chaostoolkit-journal.json").read_text())
    assert journal["status"] == "completed"
    assert journal["experiment"]["title"].startswith("DB")
