"""One requirement matrix across the three harnesses: for every requirement ID in the registry, the latest outcome
that conformance, the drills and the gates obtained for it, when, on which commit and target, and whether that
evidence is still fresh.

The harnesses leave JUnit files behind (conformance.junit: the one verdict scheme); this module reads every
`junit.xml` under the report directories it is given, recognises each harness by its suite name, and, per
verification method the registry names (`conformance`, `drill:NAME`, `gate:NAME`), takes the newest run that
checked it. Drill runs live in one directory each, so a later run of one drill does not erase another drill's
evidence from an earlier run. A run that found the method "not applicable" on its target did not check it:
an older run that did check it wins, and "not applicable" shows only when no run checked it at all.

Evidence is fresh when it was produced by the current commit (conformance.provenance) within
EVIDENCE_MAX_AGE_DAYS; anything else is *stale*: shown, never counted as passed (nor as failed). A requirement
passes only when every method the registry names has fresh passing evidence. Dirty work trees: evidence from a
dirty tree is fresh only while the current tree is dirty on the same commit (and within the bound: nothing records
*which* uncommitted changes ran, so the age bound is all that limits it); once the tree is clean or on another
commit, that evidence is stale. Clean evidence of the current commit stays fresh when the tree has since become
dirty: it proves the commit, and the commit column says so.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conformance import junit
from conformance.junit import CaseOutcome, ReadCase, ReadSuite
from conformance.provenance import UNKNOWN, Provenance, current
from conformance.registry import Registry, Requirement, load_registry
from conformance.verdicts import Exit

EVIDENCE_MAX_AGE_DAYS = 7.0  # older evidence is stale: a week of other commits' deployments, config and data
MAX_AGE_ENV = "RUNBOOK_EVIDENCE_MAX_AGE_DAYS"
JUNIT_FILE = "junit.xml"
PERF_GATE = "perf-queries"  # the gate whose command (make perf-gate) writes the runbook-perf-gate suite
SHORT_COMMIT = 10
STATEMENT_LIMIT = 90


class Harness(enum.StrEnum):
    CONFORMANCE = "conformance"
    DRILLS = "drills"
    GATES = "gates"


SUITE_HARNESS = {
    "runbook-conformance": Harness.CONFORMANCE,
    "runbook-drills": Harness.DRILLS,
    "runbook-perf-gate": Harness.GATES,
    "runbook-gates": Harness.GATES,
}


class Outcome(enum.StrEnum):
    """What one verification method's latest evidence says."""

    PASSED = "passed"
    FAILED = "failed"
    COULD_NOT_RUN = "could not run"  # <error> of a drill or gate: the stack, target or tool did not come up
    ABORTED = "aborted"
    INCONCLUSIVE = "inconclusive"  # a paired comparison whose interval was too wide to decide
    NOT_APPLICABLE = "not applicable"
    NO_EVIDENCE = "no evidence"


class Verdict(enum.StrEnum):
    """A requirement's overall verdict across the methods the registry names for it."""

    PASSED = "passed"  # every method: fresh and passed
    FAILED = "failed"  # a method's fresh evidence failed
    COULD_NOT_RUN = "could not run"  # a drill's or gate's fresh run could not start: no verdict either way
    ABORTED = "aborted"  # a method's fresh run stopped before its verdict
    INCONCLUSIVE = "inconclusive"  # a method's fresh run measured, but could not decide (a paired comparison)
    STALE = "stale"  # some evidence is from another commit or too old: it neither passes nor fails
    NO_EVIDENCE = "no evidence"
    NOT_APPLICABLE = "not applicable"  # the only runs that looked could not check it on their target


# Of several non-passing methods, the verdict names the first kind present: the most actionable one.
_NOT_PASSED_ORDER = (
    Verdict.COULD_NOT_RUN,
    Verdict.ABORTED,
    Verdict.INCONCLUSIVE,
    Verdict.STALE,
    Verdict.NO_EVIDENCE,
    Verdict.NOT_APPLICABLE,
)


def max_age_days(override: float | None = None) -> float:
    """The freshness bound: `override`, else $RUNBOOK_EVIDENCE_MAX_AGE_DAYS, else EVIDENCE_MAX_AGE_DAYS."""
    if override is not None:
        value = override
    else:
        raw = os.environ.get(MAX_AGE_ENV, "").strip()
        try:
            value = float(raw) if raw else EVIDENCE_MAX_AGE_DAYS
        except ValueError:
            raise ValueError(f"{MAX_AGE_ENV}={raw!r} is not a number of days") from None
    if not value > 0:
        raise ValueError(f"the evidence age bound must be a positive number of days, not {value:g}")
    return value


@dataclass(frozen=True, slots=True)
class Source:
    """One harness run, as its JUnit file recorded it."""

    harness: Harness
    path: Path
    suite: ReadSuite
    at: datetime | None
    commit: str
    dirty: bool
    target: str

    @property
    def short_commit(self) -> str:
        if not self.commit or self.commit == UNKNOWN:
            return UNKNOWN
        return self.commit[:SHORT_COMMIT] + ("+dirty" if self.dirty else "")


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _source(harness: Harness, path: Path, suite: ReadSuite) -> Source:
    properties = suite.properties
    commit = properties.get("commit", "").strip()
    dirty = properties.get("dirty", "").strip().lower() in ("true", "1", "yes") or commit.endswith("+dirty")
    target = properties.get("target") or properties.get("target_name") or properties.get("base_url") or ""
    return Source(harness, path, suite, _parse_time(suite.timestamp), commit.removesuffix("+dirty"), dirty, target)


def find_sources(directories: Iterable[Path]) -> tuple[list[Source], list[str]]:
    """Every harness run recorded under `directories` (a JUnit file itself is accepted too), newest first, and
    the files that could not be read (each with why)."""
    sources: list[Source] = []
    problems: list[str] = []
    paths: set[Path] = set()
    for directory in directories:
        paths.update([directory] if directory.is_file() else directory.rglob(JUNIT_FILE))
    for path in sorted(paths):
        try:
            suites = junit.read(path)
        except (ET.ParseError, OSError) as error:
            problems.append(f"{path}: not readable as JUnit XML ({error})")
            continue
        for suite in suites:
            harness = SUITE_HARNESS.get(suite.name)
            if harness is not None:  # other JUnit files (a plain pytest run's) are not a harness's evidence
                sources.append(_source(harness, path, suite))
    oldest = datetime.min.replace(tzinfo=UTC)
    # Newest first; equal timestamps: the later path (run ids sort by time) first.
    sources.sort(key=lambda source: (source.at or oldest, str(source.path)), reverse=True)
    return sources, problems


def staleness(source: Source, now: Provenance, max_age: timedelta) -> str:
    """Why `source` cannot count for the current code ("" when it is fresh)."""
    if not source.commit or source.commit == UNKNOWN:
        return "commit unknown"
    if now.commit == UNKNOWN:
        return "current commit unknown"
    shortest = min(len(source.commit), len(now.commit))
    if shortest < 7 or source.commit[:shortest] != now.commit[:shortest]:
        return f"other commit (now {now.short_commit})"
    if source.dirty and not now.dirty:
        return "ran on a dirty work tree; the tree is clean now"
    if source.at is None:
        return "no timestamp"
    age = datetime.fromisoformat(now.at) - source.at
    if age > max_age:
        return f"{age / timedelta(days=1):.1f} days old (bound {max_age / timedelta(days=1):g})"
    return ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """The latest evidence for one verification method of one requirement."""

    method: str  # conformance, drill:NAME, gate:NAME (as the registry writes it)
    outcome: Outcome
    by: tuple[str, ...] = ()  # the tests, drills or gates (perf: queries) whose cases produced it
    source: Source | None = None
    stale: str = ""  # why it does not count ("" = fresh)

    @property
    def harness(self) -> Harness:
        if self.method.startswith("drill:"):
            return Harness.DRILLS
        return Harness.GATES if self.method.startswith("gate:") else Harness.CONFORMANCE

    @property
    def fresh(self) -> bool:
        return self.source is not None and not self.stale

    def as_dict(self) -> dict[str, Any]:
        source = self.source
        return {
            "method": self.method,
            "outcome": str(self.outcome),
            "at": source.at.isoformat() if source and source.at else None,
            "commit": source.short_commit if source else None,
            "target": source.target if source else None,
            "stale": bool(self.stale),
            "stale_reason": self.stale or None,
            "by": list(self.by),
            "file": str(source.path) if source else None,
        }

    def describe(self) -> str:
        """One line: outcome, when, commit, target, by what; stale evidence says so first."""
        name = self.method.replace(":", " ", 1) if self.harness is not Harness.CONFORMANCE else ""
        if self.source is None:
            return f"{name}: no evidence" if name else "no evidence"
        source = self.source
        when = source.at.strftime("%Y-%m-%d %H:%MZ") if source.at else "no time"
        detail = f"{when}, {source.short_commit}" + (f", {source.target}" if source.target else "")
        by = _describe_by(self)
        text = f"{self.outcome} ({detail}){by}"
        if self.stale:
            text = f"STALE {text} [{self.stale}]"
        return f"{name}: {text}" if name else text


def _describe_by(evidence: Evidence) -> str:
    if evidence.harness is Harness.CONFORMANCE:
        count = len(evidence.by)
        return f" by {count} test{'s' if count != 1 else ''}" if count else ""
    if evidence.method.endswith("*") or evidence.method == f"gate:{PERF_GATE}":
        return f" by {', '.join(evidence.by)}" if evidence.by else ""
    return ""


def _case_outcome(harness: Harness, cases: Sequence[ReadCase]) -> Outcome:
    outcomes = {case.outcome for case in cases}
    # pytest's <error> is a check that broke in its setup or teardown: conformance's own matrix calls it failed
    # (conformance.plugin), and so does this one; a drill's or gate's <error> is a run that could not start.
    error = Outcome.FAILED if harness is Harness.CONFORMANCE else Outcome.COULD_NOT_RUN
    for case_outcome, outcome in (
        (CaseOutcome.FAILED, Outcome.FAILED),
        (CaseOutcome.ERROR, error),
        (CaseOutcome.ABORTED, Outcome.ABORTED),
        (CaseOutcome.INCONCLUSIVE, Outcome.INCONCLUSIVE),
        (CaseOutcome.PASSED, Outcome.PASSED),  # with the rest not applicable: passed where it could run
    ):
        if case_outcome in outcomes:
            return outcome
    return Outcome.NOT_APPLICABLE


def _cases_for(method: str, requirement: Requirement, source: Source) -> list[ReadCase]:
    """The cases of `source` that check `method` of `requirement`."""
    kind, _, name = method.partition(":")
    cases = source.suite.cases
    if kind == "conformance":
        if source.harness is not Harness.CONFORMANCE:
            return []
        return [case for case in cases if requirement.id in case.requirements]
    if kind == "drill" and source.harness is Harness.DRILLS:
        return [case for case in cases if fnmatch.fnmatchcase(case.name, name)]
    if kind == "gate" and source.suite.name == "runbook-gates":
        return [case for case in cases if fnmatch.fnmatchcase(case.name, name)]
    if kind == "gate" and source.suite.name == "runbook-perf-gate":
        gate = source.suite.properties.get("gate", PERF_GATE)
        return list(cases) if fnmatch.fnmatchcase(gate, name) else []
    return []


def latest_evidence(
    method: str, requirement: Requirement, sources: Sequence[Source], now: Provenance, max_age: timedelta
) -> Evidence:
    """The newest run (sources are newest first) that checked `method`; not-applicable runs only when no run
    checked it."""
    not_applicable: Evidence | None = None
    for source in sources:
        cases = _cases_for(method, requirement, source)
        if not cases:
            continue
        outcome = _case_outcome(source.harness, cases)
        by = tuple(dict.fromkeys(case.name for case in cases))
        evidence = Evidence(method, outcome, by, source, staleness(source, now, max_age))
        if outcome is not Outcome.NOT_APPLICABLE:
            return evidence
        not_applicable = not_applicable or evidence
    return not_applicable or Evidence(method, Outcome.NO_EVIDENCE)


def verdict(evidence: Sequence[Evidence]) -> Verdict:
    """Passed only when every method's evidence is fresh and passed; a fresh failure is failed; stale evidence
    is neither."""
    if any(item.fresh and item.outcome is Outcome.FAILED for item in evidence):
        return Verdict.FAILED
    kinds: set[Verdict] = set()
    for item in evidence:
        if item.source is None:
            kinds.add(Verdict.NO_EVIDENCE)
        elif item.stale:
            kinds.add(Verdict.STALE)
        elif item.outcome is Outcome.NOT_APPLICABLE:
            kinds.add(Verdict.NOT_APPLICABLE)
        elif item.outcome is not Outcome.PASSED:  # any other outcome decides nothing: never a pass
            kinds.add(Verdict(item.outcome.value))
    return next((kind for kind in _NOT_PASSED_ORDER if kind in kinds), Verdict.PASSED)


@dataclass(frozen=True, slots=True)
class Row:
    requirement: Requirement
    evidence: tuple[Evidence, ...]  # one per method the registry names, in its order
    verdict: Verdict

    def of(self, harness: Harness) -> list[Evidence]:
        return [item for item in self.evidence if item.harness is harness]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.requirement.id,
            "statement": short_statement(self.requirement.statement),
            "verified_by": list(self.requirement.verified_by),
            **{harness.value: [item.as_dict() for item in self.of(harness)] for harness in Harness},
            "verdict": str(self.verdict),
        }

    def display(self) -> dict[str, str]:
        """The row as text cells (for a table renderer that knows nothing of the structure): id first."""
        cells = {"id": self.requirement.id, "requirement": short_statement(self.requirement.statement)}
        for harness in Harness:
            cells[harness.value] = "; ".join(item.describe() for item in self.of(harness)) or "—"
        cells["verdict"] = str(self.verdict)
        return cells


def short_statement(statement: str) -> str:
    return statement if len(statement) <= STATEMENT_LIMIT else statement[: STATEMENT_LIMIT - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Matrix:
    rows: tuple[Row, ...]
    sources: tuple[Source, ...]
    problems: tuple[str, ...]  # files that could not be read
    now: Provenance
    max_age_days: float

    @property
    def exit_code(self) -> Exit:
        verdicts = {row.verdict for row in self.rows}
        if Verdict.FAILED in verdicts:
            return Exit.FAILED
        return Exit.OK if verdicts == {Verdict.PASSED} else Exit.INCONCLUSIVE

    def row(self, requirement_id: str) -> Row:
        return next(row for row in self.rows if row.requirement.id == requirement_id)

    def as_rows(self) -> list[dict[str, Any]]:
        return [row.as_dict() for row in self.rows]

    def display_rows(self) -> list[dict[str, str]]:
        return [row.display() for row in self.rows]


def build(
    directories: Iterable[Path],
    *,
    registry: Registry | None = None,
    now: Provenance | None = None,
    max_age: float | None = None,
) -> Matrix:
    """The cross-harness matrix of every requirement in the registry, from the JUnit files under
    `directories`, judged against `now` (default: this checkout's provenance, now)."""
    registry = registry or load_registry()
    now = now or current()
    days = max_age_days(max_age)
    bound = timedelta(days=days)
    sources, problems = find_sources(directories)
    rows = []
    for requirement in registry.requirements.values():
        evidence = tuple(
            latest_evidence(method, requirement, sources, now, bound) for method in requirement.verified_by
        )
        rows.append(Row(requirement, evidence, verdict(evidence)))
    return Matrix(tuple(rows), tuple(sources), tuple(problems), now, days)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(matrix: Matrix) -> str:
    counts = {kind: sum(1 for row in matrix.rows if row.verdict is kind) for kind in Verdict}
    lines = [
        "# Evidence matrix: every requirement across conformance, drills and gates",
        "",
        f"Judged against commit {matrix.now.short_commit} at {matrix.now.at}. Evidence is fresh when it comes "
        f"from this commit and is at most {matrix.max_age_days:g} days old (`{MAX_AGE_ENV}`); stale evidence is "
        "shown, never counted as passed. A requirement passes only when every harness the registry names for it "
        "has fresh passing evidence (docs/EVIDENCE.md).",
        "",
        "Verdicts: " + ", ".join(f"{kind} {count}" for kind, count in counts.items() if count),
        "",
        "| ID | Requirement | Conformance | Drills | Gates | Verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in matrix.rows:
        values = [row.requirement.id, _cell(short_statement(row.requirement.statement))]
        values += ["<br>".join(_cell(item.describe()) for item in row.of(harness)) or "—" for harness in Harness]
        values.append(f"**{row.verdict}**" if row.verdict is Verdict.FAILED else str(row.verdict))
        lines.append("| " + " | ".join(values) + " |")
    lines += [
        "",
        "## Runs read",
        "",
        "| harness | suite | started | commit | target | file |",
        "|---|---|---|---|---|---|",
    ]
    for source in matrix.sources:
        started = source.at.isoformat() if source.at else "—"
        lines.append(
            f"| {source.harness} | {source.suite.name} | {started} | {source.short_commit} | "
            f"{_cell(source.target or '—')} | `{source.path}` |"
        )
    if not matrix.sources:
        lines.append("| — | no harness JUnit file found | | | | |")
    if matrix.problems:
        lines += ["", "## Files not read", "", *(f"- {problem}" for problem in matrix.problems)]
    return "\n".join(lines) + "\n"


MARKDOWN_FILE = "evidence-matrix.md"
JSON_FILE = "evidence-matrix.json"


def write_reports(matrix: Matrix, directory: Path) -> Path:
    """evidence-matrix.md and evidence-matrix.json (the rows) in `directory`; returns the Markdown's path."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = json.dumps(matrix.as_rows(), indent=2, ensure_ascii=False) + "\n"
    (directory / JSON_FILE).write_text(rows, encoding="utf-8")
    markdown = directory / MARKDOWN_FILE
    markdown.write_text(render_markdown(matrix), encoding="utf-8")
    return markdown
