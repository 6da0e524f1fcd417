"""Our journals against Chaos Toolkit's own: the installed chaostoolkit-lib runs a tiny experiment, and the
journal it writes is the reference for the keys and value types of ours (top level, steady states, runs,
rollbacks). chaostoolkit-lib has no journal reader; what it does read of a journal — the experiment and its
extensions — is read by chaostoolkit-lib itself, in .venv-ctk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos.ctk.journal import chaostoolkit_journal
from chaos.drills.report.incident import summary
from tests.ctk.chaostoolkit import ctk_command, ctk_python, run_experiment
from tests.ctk.finished_drills import finished


def _process(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    provider = {"type": "process", "path": str(ctk_command("python")), "arguments": ["-c", "print('ok')"]}
    return {"type": kind, "name": name, "provider": provider, **extra}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The journal chaostoolkit-lib itself writes for an experiment with every section."""
    workdir = tmp_path_factory.mktemp("ctk-reference")
    experiment = {
        "title": "reference journal",
        "description": "one probe in the hypothesis, an action and a probe in the method, one rollback",
        "steady-state-hypothesis": {"title": "exits 0", "probes": [_process("probe", "steady", tolerance=0)]},
        "method": [_process("action", "act"), _process("probe", "look")],
        "rollbacks": [_process("action", "undo")],
    }
    path = workdir / "reference.json"
    path.write_text(json.dumps(experiment))
    run = run_experiment(path, workdir, {})
    assert run.journal["status"] == "completed", run.output
    return run.journal


def _same_shape(ours: Any, theirs: Any, where: str) -> None:
    """Every key of theirs is in ours with a value of the same JSON type. A null on either side says nothing of
    the type; a run's output and a probe's tolerance may be any JSON value (they differ by provider and probe),
    and of a provider only its `type` is common to every kind."""
    if theirs is None or ours is None:
        return
    number = (int, float)
    if isinstance(theirs, bool) or isinstance(ours, bool):
        assert isinstance(ours, bool), f"{where}: {ours!r} vs {theirs!r}"
        assert isinstance(theirs, bool), f"{where}: {ours!r} vs {theirs!r}"
        return
    if isinstance(theirs, number):
        assert isinstance(ours, number), f"{where}: a number in Chaos Toolkit's journal, {ours!r} in ours"
        return
    assert type(ours) is type(theirs), (
        f"{where}: {type(theirs).__name__} in Chaos Toolkit's, {type(ours).__name__} in ours"
    )
    if isinstance(theirs, dict):
        for key, value in theirs.items():
            assert key in ours, f"{where}: key {key!r} missing (Chaos Toolkit's has {sorted(theirs)})"
            if key in ("output", "tolerance"):  # by provider and probe: any JSON value (chaoslib.types.Tolerance)
                continue
            if key == "provider":
                assert isinstance(ours[key], dict), f"{where}.provider"
                assert "type" in ours[key], f"{where}.provider"
                continue
            _same_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(theirs, list) and theirs and ours:
        for number_, item in enumerate(ours):
            _same_shape(item, theirs[min(number_, len(theirs) - 1)], f"{where}[{number_}]")


def _ours(name: str = "db-down") -> dict[str, Any]:
    done = finished(name)
    return chaostoolkit_journal(done, summary(done))


@pytest.mark.parametrize("drill", ["db-down", "redis-slow", "overload-spike"])
def test_our_journal_has_chaos_toolkits_keys_and_types(reference: dict[str, Any], drill: str) -> None:
    ours = _ours(drill)
    assert set(ours) == set(reference), "top-level keys differ"
    _same_shape(ours, {key: value for key, value in reference.items() if key != "experiment"}, "journal")
    for key in ("title", "description", "steady-state-hypothesis", "method", "rollbacks"):
        assert key in ours["experiment"], f"experiment.{key}"
    for phase in ("before", "after"):
        assert set(ours["steady_states"][phase]) == set(reference["steady_states"][phase])
        for probe in ours["steady_states"][phase]["probes"]:
            assert set(probe) == set(reference["steady_states"][phase]["probes"][0]), f"steady_states.{phase}"
    for section in ("run", "rollbacks"):
        assert ours[section], f"our {section} is empty"
        keys = {frozenset(run) for run in reference[section]}
        for run in ours[section]:
            assert frozenset(run) in keys, f"{section}: {sorted(run)} vs Chaos Toolkit's {[sorted(k) for k in keys]}"
    statuses = {run["status"] for section in ("run", "rollbacks") for run in reference[section]}
    assert {run["status"] for run in ours["run"]} <= statuses | {"failed"}


def test_chaostoolkit_lib_reads_our_journals_experiment_and_measurements(tmp_path: Path) -> None:
    path = tmp_path / "chaostoolkit-journal.json"
    path.write_text(json.dumps(_ours("db-down"), default=str))
    code = """
import json, os, sys
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.extension import get_extension
journal = json.load(open(sys.argv[1]))
os.environ["API_KEY"] = "only-for-validation"
ensure_experiment_is_valid(journal["experiment"])
ours = get_extension(journal["experiment"], "executable-runbook")
print(json.dumps({"status": journal["status"], "deviated": journal["deviated"], "mttr_s": ours["mttr_s"],
                  "verdict": ours["verdict"]}))
"""
    read = json.loads(ctk_python(code, str(path)).strip().splitlines()[-1])
    assert read == {"status": "completed", "deviated": False, "mttr_s": 0.4, "verdict": "PASSED"}
