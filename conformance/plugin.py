"""pytest plugin of the conformance suite: requirement markers, the coverage check, remote-target rules,
and the requirement matrix (Markdown, JSON; JUnit properties through pytest's --junitxml: requirement IDs per
testcase, and the run's commit, dirty, version and target per testsuite, which conformance.evidence reads).

Requirements the registry verifies by drills or gates are not checked by a conformance run: the matrix says so
("not checked by this run"), or, with `--evidence-from DIR`, shows those harnesses' latest outcome with its date,
commit and freshness (conformance.evidence) — never a pointer that could be read as an outcome.

Loaded by conformance/checks/conftest.py, so `pytest conformance/checks` and `python -m conformance` behave
the same.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _pytest.junitxml import xml_key  # the junitxml plugin's own key (see pytest_sessionstart)

from conformance import evidence
from conformance.junit import FIGURE_PREFIX, REQUIREMENT_PROPERTY
from conformance.provenance import current
from conformance.registry import ID_PATTERN, Registry, RegistryError, Requirement, load_registry
from conformance.suite_events import SOURCE_PREFIX, WINDOW_END, WINDOW_START

REQUIREMENT_MARK = "requirement"
NEEDS_CONTROL_MARK = "needs_control"
NOT_APPLICABLE = "not applicable to a remote target"


@dataclass
class RequirementOutcome:
    tests: dict[str, str] = field(default_factory=dict)  # test id → passed / failed / not applicable / skipped
    figures: dict[str, object] = field(default_factory=dict)  # what its checks measured, by name

    @property
    def outcome(self) -> str:
        outcomes = set(self.tests.values())
        if "failed" in outcomes:
            return "FAILED"
        if "passed" in outcomes:
            return "passed" if outcomes == {"passed"} else "passed (partly not applicable)"
        if outcomes and outcomes <= {NOT_APPLICABLE}:
            return "not applicable (remote target)"
        if outcomes:
            return "not run"
        return ""


def requirement_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers(REQUIREMENT_MARK):
        ids.extend(str(arg) for arg in mark.args)
    return ids


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "runbook conformance")
    group.addoption(
        "--base-url",
        default=os.environ.get("CONFORMANCE_BASE_URL"),
        help="check this running deployment instead of starting the embedded stack "
        "(credentials from API_KEY and, for JWT checks, JWT_SECRET); it must answer and accept them first",
    )
    group.addoption(
        "--prechecked",
        action="store_true",
        help="the --base-url target was checked already (python -m conformance does it before pytest starts)",
    )
    group.addoption("--report-dir", default=None, help="write requirements.md and requirements.json here")
    group.addoption(
        "--stack-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="start the embedded stack's service with this setting (repeatable)",
    )
    group.addoption("--stack-app", default=None, metavar="MODULE:ATTR", help="serve this ASGI app in the stack")
    group.addoption(
        "--service-command",
        default=None,
        help="how to run the service for start-up checks (default: python -m service)",
    )
    group.addoption(
        "--only-requirement",
        action="append",
        default=[],
        metavar="ID",
        help="run only the checks of this requirement (repeatable); the coverage check then skips conformance",
    )
    group.addoption(
        "--evidence-from",
        action="append",
        default=[],
        metavar="DIR",
        help="show the latest drill and gate outcomes found in this report directory's JUnit files (repeatable) "
        "for the requirements they verify, with date, commit and freshness (docs/EVIDENCE.md)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{REQUIREMENT_MARK}(*ids): the runbook requirement IDs this test proves")
    config.addinivalue_line("markers", f"{NEEDS_CONTROL_MARK}: breaks or restarts parts of the stack; {NOT_APPLICABLE}")
    config.stash[_RESULTS] = defaultdict(RequirementOutcome)
    config.pluginmanager.register(OutcomeCollector(config.stash[_RESULTS]), "conformance-outcomes")
    if is_shard_controller(config):
        # The controller of `-n N` collects nothing: the matrix is built from the reports its shards send, and
        # the registry and evidence it needs are read here (the shards check coverage and report a refusal).
        config.stash[_REGISTRY] = _registry()
        _read_evidence(config, config.stash[_REGISTRY])


_RESULTS = pytest.StashKey[defaultdict[str, RequirementOutcome]]()
_REGISTRY = pytest.StashKey[Registry]()
_EVIDENCE = pytest.StashKey[evidence.Matrix]()
_REFUSED = pytest.StashKey[str]()  # a shard's usage error (incomplete coverage), shown by the controller
SHARD_REFUSAL = "conformance_usage_error"  # the key of that error in a shard's `workeroutput`


def is_shard(config: pytest.Config) -> bool:
    """A pytest-xdist worker: one shard of `python -m conformance --jobs N`, with an embedded stack of its own."""
    return hasattr(config, "workerinput")


def is_shard_controller(config: pytest.Config) -> bool:
    """The process that runs pytest-xdist's shards (`-n N`, N ≥ 1) and receives their reports."""
    return not is_shard(config) and str(getattr(config.option, "dist", "no")) != "no"


def _registry() -> Registry:
    try:
        return load_registry()
    except RegistryError as error:
        raise pytest.UsageError(str(error)) from None


def _read_evidence(config: pytest.Config, registry: Registry) -> None:
    evidence_from = [Path(directory) for directory in config.getoption("evidence_from")]
    if not evidence_from:
        return
    missing = [str(directory) for directory in evidence_from if not directory.exists()]
    if missing:
        raise pytest.UsageError(f"--evidence-from: no such report directory: {', '.join(missing)}")
    try:
        config.stash[_EVIDENCE] = evidence.build(evidence_from, registry=registry)
    except ValueError as error:
        raise pytest.UsageError(f"--evidence-from: {error}") from None


def suite_properties(config: pytest.Config) -> dict[str, str]:
    """What the JUnit testsuite says about this run, as every harness's suite does (conformance.junit)."""
    provenance = current()
    return {
        "commit": provenance.commit,
        "dirty": "true" if provenance.dirty else "false",
        "version": provenance.version,
        "target": config.getoption("base_url") or "embedded stack",
    }


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stamps --junitxml's testsuite with the run's provenance (nothing without --junitxml). Not through the
    `record_testsuite_property` fixture: with shards, the fixture runs in the workers, and only the controller
    writes the file (pytest's junitxml plugin is off in xdist workers)."""
    xml = session.config.stash.get(xml_key, None)
    if xml is None:
        return
    for name, value in suite_properties(session.config).items():
        xml.add_global_property(name, value)


def _drill_names() -> list[str]:
    try:
        from chaos.drills import drill_names  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return []
    names: list[str] = drill_names()
    return names


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    registry = _registry()
    tested: dict[str, list[str]] = defaultdict(list)
    malformed = []
    for item in items:
        for requirement_id in requirement_ids(item):
            if not ID_PATTERN.fullmatch(requirement_id):
                malformed.append(f"{item.nodeid}: {requirement_id!r} is not a requirement ID")
            tested[requirement_id].append(item.nodeid)
    only = set(config.getoption("only_requirement"))
    unknown_only = sorted(only - set(registry.requirements))
    if unknown_only:
        _refuse(config, items, f"unknown requirement ID(s): {', '.join(unknown_only)}")
        return
    if only:
        selected = [item for item in items if only & set(requirement_ids(item))]
        config.hook.pytest_deselected(items=[item for item in items if item not in selected])
        items[:] = selected
    partial_run = bool(
        only or config.getoption("keyword") or config.getoption("markexpr") or config.getoption("lf", False)
    )
    # A partial run (--requirement, -k, -m) proves only what it selects; the full run proves coverage.
    problems = malformed + registry.unknown_requirements(tested)
    if not partial_run:
        problems += registry.coverage_problems(tested, _drill_names())
    if problems:
        _refuse(config, items, "requirement coverage is incomplete:\n  " + "\n  ".join(problems))
        return
    config.stash[_REGISTRY] = registry
    if not is_shard(config):
        _read_evidence(config, registry)
    if config.getoption("base_url"):
        skip = pytest.mark.skip(reason=NOT_APPLICABLE)
        for item in items:
            if item.get_closest_marker(NEEDS_CONTROL_MARK):
                item.add_marker(skip)
    for item in items:
        for requirement_id in requirement_ids(item):
            item.user_properties.append((REQUIREMENT_PROPERTY, requirement_id))


def _refuse(config: pytest.Config, items: list[pytest.Item], refusal: str) -> None:
    """Stop the run with a usage error (exit 4, `python -m conformance`'s 2). A usage error raised in a
    shard's collection would crash xdist's controller (an INTERNALERROR): a shard runs nothing instead and
    hands the refusal to the controller, which exits with it (pytest_testnodedown, pytest_sessionfinish)."""
    if not is_shard(config):
        raise pytest.UsageError(refusal)
    config.workeroutput[SHARD_REFUSAL] = refusal  # type: ignore[attr-defined]
    config.hook.pytest_deselected(items=list(items))
    items.clear()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """A shard ended (pytest-xdist): keep the usage error it refused to run with, if any."""
    refusal = getattr(node, "workeroutput", {}).get(SHARD_REFUSAL)
    if refusal:
        node.config.stash[_REFUSED] = str(refusal)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    refusal = session.config.stash.get(_REFUSED, None)
    if refusal:
        print(f"ERROR: {refusal}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


@dataclass
class OutcomeCollector:
    """A check's outcome for each requirement it proves, from its report: the requirement IDs and figures
    travel in its user_properties, so the reports a controller receives from its shards carry them too.
    An object registered per session (pytest_configure), because this hook is given no config."""

    results: defaultdict[str, RequirementOutcome]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not (report.when == "call" or (report.when == "setup" and (report.failed or report.skipped))):
            return
        if report.passed:
            outcome = "passed"
        elif report.skipped:
            reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
            outcome = NOT_APPLICABLE if NOT_APPLICABLE in reason else "skipped"
        else:
            outcome = "failed"
        figures = {
            name.removeprefix(FIGURE_PREFIX): value
            for name, value in report.user_properties
            if isinstance(name, str) and name.startswith(FIGURE_PREFIX)
        }
        for name, requirement_id in report.user_properties:
            if name == REQUIREMENT_PROPERTY:
                self.results[str(requirement_id)].tests[report.nodeid] = outcome
                self.results[str(requirement_id)].figures.update(figures)


NOT_CHECKED = "not checked by this run"


def _elsewhere(requirement: Requirement) -> str:
    """The drills and gates that verify `requirement`, as words: "drill db-down, gate drill-engine"."""
    return ", ".join([*(f"drill {d}" for d in requirement.drills), *(f"gate {g}" for g in requirement.gates)])


def _other_harnesses(requirement: Requirement, found: evidence.Matrix | None) -> tuple[str, list[dict[str, Any]]]:
    """What the drills and gates say about `requirement`: a summary (their verdict, or that this run did not
    check them) and their latest evidence (empty without --evidence-from)."""
    pointers = _elsewhere(requirement)
    if not pointers:
        return "", []
    if found is None:
        return f"{NOT_CHECKED} (verified by {pointers})", []
    items = [item for item in found.row(requirement.id).evidence if item.harness is not evidence.Harness.CONFORMANCE]
    each = ", ".join(
        f"{item.method.replace(':', ' ', 1)} {'stale ' if item.stale else ''}{item.outcome}" for item in items
    )
    return f"{evidence.verdict(items)} ({each})", [item.as_dict() for item in items]


def build_matrix(
    registry: Registry,
    results: Mapping[str, RequirementOutcome],
    target: str,
    found: evidence.Matrix | None = None,
    evidence_from: Sequence[Path] = (),
) -> dict[str, Any]:
    """The run's requirement matrix; `found` (conformance.evidence, from `evidence_from`) adds the drills' and
    gates' latest outcomes for the requirements they verify."""
    rows: list[dict[str, Any]] = []
    for requirement in registry.requirements.values():
        result = results.get(requirement.id, RequirementOutcome())
        outcome = result.outcome
        others, other_evidence = _other_harnesses(requirement, found)
        if not outcome and requirement.by_conformance:
            outcome = "not run (not selected)"  # a full run refuses to start unless every such ID has tests
        elif not outcome:
            outcome = others  # the drills' and gates' word, or that this run did not check it
        rows.append(
            {
                "id": requirement.id,
                "section": requirement.section,
                "statement": requirement.statement,
                "verified_by": list(requirement.verified_by),
                "tests": result.tests,
                "outcome": outcome,
                "figures": result.figures,
                "drills_and_gates": others,
                "evidence": other_evidence,
            }
        )
    failed = [row["id"] for row in rows if row["outcome"] == "FAILED"]
    matrix: dict[str, Any] = {"target": target, "provenance": current().as_dict(), "failed": failed}
    if found is not None:
        matrix["evidence_from"] = [str(directory) for directory in evidence_from]
        matrix["evidence_max_age_days"] = found.max_age_days
        matrix["evidence_failed"] = [
            row["id"] for row in rows if row["drills_and_gates"].startswith(str(evidence.Verdict.FAILED))
        ]
    matrix["requirements"] = rows
    return matrix


def _evidence_cell(row: Mapping[str, Any]) -> str:
    """The Markdown cell of the drills' and gates' word on a requirement."""
    if not row.get("drills_and_gates"):
        return "—"
    lines = [str(row["drills_and_gates"])]
    for item in row.get("evidence", ()):
        name = str(item["method"]).replace(":", " ", 1)
        if item["at"] is None:
            lines.append(f"{name}: no evidence")
            continue
        stale = f" **STALE** ({item['stale_reason']})" if item["stale"] else ""
        lines.append(f"{name}: {item['outcome']}, {item['at']}, {item['commit']}, {item['target'] or '—'}{stale}")
    return "<br>".join(line.replace("|", "\\|") for line in lines)


def render_markdown(matrix: dict[str, Any]) -> str:
    lines = [
        "# Requirement matrix",
        "",
        f"Target: {matrix['target']}",
        "",
        f"Written to it: events with a source beginning `{SOURCE_PREFIX}` and occurred_at in "
        f"[{WINDOW_START}, {WINDOW_END}) (conformance/suite_events.py).",
        "",
        _evidence_intro(matrix),
        "",
        "| ID | Requirement | Tests | Outcome | Drills and gates |",
        "|---|---|---|---|---|",
    ]
    for row in matrix["requirements"]:
        statement = row["statement"].replace("|", "\\|")
        tests = "<br>".join(f"`{test.split('::', 1)[-1]}` {result}" for test, result in row["tests"].items()) or "—"
        outcome = f"**{row['outcome']}**" if row["outcome"] == "FAILED" else row["outcome"]
        lines.append(f"| {row['id']} | {statement} | {tests} | {outcome} | {_evidence_cell(row)} |")
    lines += ["", f"Failed: {', '.join(matrix['failed']) or 'none'}", ""]
    if "evidence_failed" in matrix:
        lines += [f"Failed by the latest drill or gate evidence: {', '.join(matrix['evidence_failed']) or 'none'}", ""]
    lines += _hostile_input_section(matrix)
    return "\n".join(lines)


def _evidence_intro(matrix: Mapping[str, Any]) -> str:
    provenance = matrix.get("provenance") or {}
    commit = f"Commit: {provenance.get('commit', '?')}{' (dirty work tree)' if provenance.get('dirty') else ''}. "
    if "evidence_from" not in matrix:
        return commit + (
            f"Requirements verified by drills or gates are {NOT_CHECKED}; `--evidence-from DIR` shows their "
            "latest outcomes."
        )
    return commit + (
        f"Drill and gate outcomes: the latest found under {', '.join(matrix['evidence_from'])}; evidence from "
        f"another commit or older than {matrix['evidence_max_age_days']:g} days is STALE, never passed "
        "(docs/EVIDENCE.md)."
    )


def _hostile_input_section(matrix: dict[str, Any]) -> list[str]:
    """What the RB-SEC checks measured against this target: series counts, deadlines met, sizes."""
    rows = [row for row in matrix["requirements"] if row["section"].startswith("Hostile input")]
    if not rows:
        return []
    lines = ["## Hostile input", "", "| ID | Outcome | Measured |", "|---|---|---|"]
    for row in rows:
        measured = "<br>".join(f"{name}: {value}" for name, value in row.get("figures", {}).items()) or "—"
        lines.append(f"| {row['id']} | {row['outcome']} | {measured} |")
    return [*lines, ""]


def _target_description(config: pytest.Config) -> str:
    base_url = config.getoption("base_url")
    return f"remote deployment {base_url}" if base_url else "embedded stack (started by the suite)"


def _evidence_line(item: Mapping[str, Any]) -> str:
    name = str(item["method"]).replace(":", " ", 1)
    if item["at"] is None:
        return f"{name}: no evidence"
    stale = f" — STALE: {item['stale_reason']}" if item["stale"] else ""
    return f"{name}: {item['outcome']} {item['at']} {item['commit']} {item['target'] or ''}{stale}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    registry = config.stash.get(_REGISTRY, None)
    if registry is None or is_shard(config) or _REFUSED in config.stash:
        return
    results = config.stash[_RESULTS]
    found = config.stash.get(_EVIDENCE, None)
    evidence_from = [Path(directory) for directory in config.getoption("evidence_from")]
    matrix = build_matrix(registry, results, _target_description(config), found, evidence_from)
    terminalreporter.section("requirement matrix")
    width = max(len(row["id"]) for row in matrix["requirements"])
    for row in matrix["requirements"]:
        terminalreporter.write_line(f"{row['id']:<{width}}  {row['outcome']}")
        if row["drills_and_gates"] and row["drills_and_gates"] != row["outcome"]:
            terminalreporter.write_line(f"{'':<{width}}    drills and gates: {row['drills_and_gates']}")
        for item in row["evidence"]:
            terminalreporter.write_line(f"{'':<{width}}    {_evidence_line(item)}")
        for name, value in row["figures"].items():
            terminalreporter.write_line(f"{'':<{width}}    {name}: {value}")
    if matrix["failed"]:
        terminalreporter.write_line(f"\nFAILED requirements: {', '.join(matrix['failed'])}", red=True, bold=True)
    report_dir = config.getoption("report_dir")
    if report_dir:
        directory = Path(report_dir)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "requirements.md").write_text(render_markdown(matrix), encoding="utf-8")
        (directory / "requirements.json").write_text(json.dumps(matrix, indent=2, ensure_ascii=False), encoding="utf-8")
        terminalreporter.write_line(f"reports: {directory / 'requirements.md'}, {directory / 'requirements.json'}")
