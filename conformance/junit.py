"""The one verdict scheme every harness writes: JUnit XML (the xunit2 family CI systems read), requirement IDs
as testcase properties, and the run's provenance (commit, version, target) as testsuite properties.

Conformance gets its file from pytest's --junitxml (conformance/plugin.py adds the same properties); the drills
and the perf gates write theirs with this builder, and conformance.evidence reads all of them back. The XML is
built with ElementTree, so every text is escaped; control characters that XML 1.0 cannot carry are replaced.
"""

from __future__ import annotations

import enum
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REQUIREMENT_PROPERTY = "requirement"  # the name conformance/plugin.py records each requirement ID under
FIGURE_PREFIX = "figure:"  # a testcase property `figure:<what>` is a measured figure (conformance's record_property)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MESSAGE_LIMIT = 2000  # a failure message is a summary; the reports hold the whole story


class CaseOutcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # <failure>: the check ran and its assertion did not hold
    ABORTED = "aborted"  # <error type="aborted">: stopped before its verdict (a safeguard, Ctrl-C, SIGTERM)
    ERROR = "error"  # <error>: could not run it (the target, the tool)
    INCONCLUSIVE = "inconclusive"  # <error type="inconclusive">: it ran, but what it measured cannot decide
    NOT_APPLICABLE = "not applicable"  # <skipped>: the target does not offer what it needs; never a pass


@dataclass(frozen=True, slots=True)
class Case:
    classname: str
    name: str
    time_s: float
    outcome: CaseOutcome
    requirements: Sequence[str] = ()
    message: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)  # figures, beside the requirement IDs
    output: str = ""  # <system-out>: the case's own lines (a table row, a report path)


@dataclass(frozen=True, slots=True)
class Suite:
    name: str  # runbook-conformance, runbook-drills, runbook-perf-gate, runbook-gates
    timestamp: str  # the run's start, ISO 8601 UTC
    properties: Mapping[str, str]  # commit, dirty, version, target, and anything the run wants to say


def _text(value: object, limit: int | None = None) -> str:
    text = _NOT_XML.sub("\ufffd", str(value))
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _properties(parent: ET.Element, pairs: Iterable[tuple[str, str]]) -> None:
    pairs = list(pairs)
    if not pairs:
        return
    element = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(element, "property", name=_text(name), value=_text(value))


def build(suite: Suite, cases: Sequence[Case]) -> ET.ElementTree[ET.Element]:
    counts = {outcome: sum(1 for case in cases if case.outcome is outcome) for outcome in CaseOutcome}
    root = ET.Element("testsuites")
    element = ET.SubElement(
        root,
        "testsuite",
        name=_text(suite.name),
        tests=str(len(cases)),
        failures=str(counts[CaseOutcome.FAILED]),
        errors=str(counts[CaseOutcome.ERROR] + counts[CaseOutcome.ABORTED] + counts[CaseOutcome.INCONCLUSIVE]),
        skipped=str(counts[CaseOutcome.NOT_APPLICABLE]),
        time=f"{sum(case.time_s for case in cases):.3f}",
        timestamp=_text(suite.timestamp),
    )
    _properties(element, suite.properties.items())
    for case in cases:
        testcase = ET.SubElement(
            element, "testcase", classname=_text(case.classname), name=_text(case.name), time=f"{case.time_s:.3f}"
        )
        _properties(
            testcase, [(REQUIREMENT_PROPERTY, rid) for rid in case.requirements] + list(case.properties.items())
        )
        message = _text(case.message, MESSAGE_LIMIT)
        if case.outcome is CaseOutcome.FAILED:
            ET.SubElement(testcase, "failure", message=message).text = _text(case.message)
        elif case.outcome is CaseOutcome.ABORTED:
            ET.SubElement(testcase, "error", type="aborted", message=message).text = _text(case.message)
        elif case.outcome is CaseOutcome.INCONCLUSIVE:
            ET.SubElement(testcase, "error", type="inconclusive", message=message).text = _text(case.message)
        elif case.outcome is CaseOutcome.ERROR:
            ET.SubElement(testcase, "error", message=message).text = _text(case.message)
        elif case.outcome is CaseOutcome.NOT_APPLICABLE:
            ET.SubElement(testcase, "skipped", message=_text(f"not applicable: {case.message}", MESSAGE_LIMIT))
        if case.output:
            ET.SubElement(testcase, "system-out").text = _text(case.output)
    ET.indent(root)
    return ET.ElementTree(root)


def write(path: Path, suite: Suite, cases: Sequence[Case]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    build(suite, cases).write(path, encoding="utf-8", xml_declaration=True)
    return path


@dataclass(frozen=True, slots=True)
class ReadCase:
    """A testcase as conformance.evidence reads it back (from any harness's file, pytest's included)."""

    classname: str
    name: str
    outcome: CaseOutcome
    requirements: tuple[str, ...]
    message: str


@dataclass(frozen=True, slots=True)
class ReadSuite:
    name: str
    timestamp: str
    properties: dict[str, str]
    cases: tuple[ReadCase, ...]


def _read_outcome(testcase: ET.Element) -> tuple[CaseOutcome, str]:
    for tag, outcome in (("failure", CaseOutcome.FAILED), ("error", CaseOutcome.ERROR)):
        found = testcase.find(tag)
        if found is not None:
            kind = found.get("type") if tag == "error" else None
            if kind in (CaseOutcome.ABORTED, CaseOutcome.INCONCLUSIVE):
                outcome = CaseOutcome(kind)
            return outcome, found.get("message") or (found.text or "")
    skipped = testcase.find("skipped")
    if skipped is not None:
        return CaseOutcome.NOT_APPLICABLE, skipped.get("message") or ""
    return CaseOutcome.PASSED, ""


def read(path: Path) -> list[ReadSuite]:
    """Every testsuite in a JUnit file (ours or pytest's), with its properties and cases."""
    root = ET.parse(path).getroot()  # noqa: S314 - our own reports, not input from a client
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    found = []
    for suite in suites:
        properties = {p.get("name", ""): p.get("value", "") for p in suite.findall("properties/property")}
        cases = []
        for testcase in suite.findall("testcase"):
            outcome, message = _read_outcome(testcase)
            requirements = tuple(
                p.get("value", "")
                for p in testcase.findall("properties/property")
                if p.get("name") == REQUIREMENT_PROPERTY
            )
            cases.append(
                ReadCase(testcase.get("classname", ""), testcase.get("name", ""), outcome, requirements, message)
            )
        found.append(ReadSuite(suite.get("name", ""), suite.get("timestamp", ""), properties, tuple(cases)))
    return found
