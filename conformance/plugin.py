"""pytest plugin of the conformance suite: requirement markers, the coverage check, remote-target rules,
and the requirement matrix (Markdown, JSON; JUnit properties through pytest's --junitxml).

Loaded by conformance/checks/conftest.py, so `pytest conformance/checks` and `python -m conformance` behave
the same.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conformance.registry import ID_PATTERN, Registry, RegistryError, load_registry
from conformance.suite_events import SOURCE_PREFIX, WINDOW_END, WINDOW_START

REQUIREMENT_MARK = "requirement"
NEEDS_CONTROL_MARK = "needs_control"
NOT_APPLICABLE = "not applicable to a remote target"


FIGURE_PREFIX = "figure:"  # record_property("figure:<what>", value): a measured figure for the report


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{REQUIREMENT_MARK}(*ids): the runbook requirement IDs this test proves")
    config.addinivalue_line("markers", f"{NEEDS_CONTROL_MARK}: breaks or restarts parts of the stack; {NOT_APPLICABLE}")
    config.stash[_RESULTS] = defaultdict(RequirementOutcome)


_RESULTS = pytest.StashKey[defaultdict[str, RequirementOutcome]]()
_REGISTRY = pytest.StashKey[Registry]()


def _drill_names() -> list[str]:
    try:
        from chaos.drills import drill_names  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return []
    names: list[str] = drill_names()
    return names


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        registry = load_registry()
    except RegistryError as error:
        raise pytest.UsageError(str(error)) from None
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
        raise pytest.UsageError(f"unknown requirement ID(s): {', '.join(unknown_only)}")
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
        raise pytest.UsageError("requirement coverage is incomplete:\n  " + "\n  ".join(problems))
    config.stash[_REGISTRY] = registry
    if config.getoption("base_url"):
        skip = pytest.mark.skip(reason=NOT_APPLICABLE)
        for item in items:
            if item.get_closest_marker(NEEDS_CONTROL_MARK):
                item.add_marker(skip)
    for item in items:
        for requirement_id in requirement_ids(item):
            item.user_properties.append(("requirement", requirement_id))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and (report.failed or report.skipped)):
        if report.passed:
            outcome = "passed"
        elif report.skipped:
            reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
            outcome = NOT_APPLICABLE if NOT_APPLICABLE in reason else "skipped"
        else:
            outcome = "failed"
        results = item.config.stash[_RESULTS]
        figures = {
            name.removeprefix(FIGURE_PREFIX): value
            for name, value in item.user_properties
            if isinstance(name, str) and name.startswith(FIGURE_PREFIX)
        }
        for requirement_id in requirement_ids(item):
            results[requirement_id].tests[item.nodeid] = outcome
            results[requirement_id].figures.update(figures)
    return report


def build_matrix(registry: Registry, results: Mapping[str, RequirementOutcome], target: str) -> dict[str, Any]:
    rows = []
    for requirement in registry.requirements.values():
        result = results.get(requirement.id, RequirementOutcome())
        outcome = result.outcome
        if not outcome and requirement.by_conformance:
            outcome = "not run (not selected)"  # a full run refuses to start unless every such ID has tests
        elif not outcome:
            elsewhere = [*(f"drill {d}" for d in requirement.drills), *(f"gate {g}" for g in requirement.gates)]
            outcome = "verified by " + ", ".join(elsewhere)
        rows.append(
            {
                "id": requirement.id,
                "section": requirement.section,
                "statement": requirement.statement,
                "verified_by": list(requirement.verified_by),
                "tests": result.tests,
                "outcome": outcome,
                "figures": result.figures,
            }
        )
    failed = [row["id"] for row in rows if row["outcome"] == "FAILED"]
    return {"target": target, "failed": failed, "requirements": rows}


def render_markdown(matrix: dict[str, Any]) -> str:
    lines = [
        "# Requirement matrix",
        "",
        f"Target: {matrix['target']}",
        "",
        f"Written to it: events with a source beginning `{SOURCE_PREFIX}` and occurred_at in "
        f"[{WINDOW_START}, {WINDOW_END}) (conformance/suite_events.py).",
        "",
        "| ID | Requirement | Tests | Outcome |",
        "|---|---|---|---|",
    ]
    for row in matrix["requirements"]:
        statement = row["statement"].replace("|", "\\|")
        tests = "<br>".join(f"`{test.split('::', 1)[-1]}` {result}" for test, result in row["tests"].items()) or "—"
        outcome = f"**{row['outcome']}**" if row["outcome"] == "FAILED" else row["outcome"]
        lines.append(f"| {row['id']} | {statement} | {tests} | {outcome} |")
    lines += ["", f"Failed: {', '.join(matrix['failed']) or 'none'}", ""]
    lines += _hostile_input_section(matrix)
    return "\n".join(lines)


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


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    registry = config.stash.get(_REGISTRY, None)
    if registry is None:
        return
    results = config.stash[_RESULTS]
    matrix = build_matrix(registry, results, _target_description(config))
    terminalreporter.section("requirement matrix")
    width = max(len(row["id"]) for row in matrix["requirements"])
    for row in matrix["requirements"]:
        terminalreporter.write_line(f"{row['id']:<{width}}  {row['outcome']}")
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
