"""The requirement registry: statements from REQUIREMENTS.md, verification methods and gates from
requirements.yaml, and the coverage check that ties them to tests, drills and gates."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CATALOG = HERE / "REQUIREMENTS.md"
REGISTRY = HERE / "requirements.yaml"
ID_PATTERN = re.compile(r"RB-[A-Z0-9]+(?:-[A-Z0-9]+)*")
_ROW = re.compile(r"^\| (RB-[A-Z0-9-]+) \| (.+) \|\s*$")


class RegistryError(Exception):
    """The registry, the catalog, or the tests disagree; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    statement: str
    section: str
    verified_by: tuple[str, ...]

    @property
    def by_conformance(self) -> bool:
        return "conformance" in self.verified_by

    @property
    def drills(self) -> tuple[str, ...]:
        return tuple(method.removeprefix("drill:") for method in self.verified_by if method.startswith("drill:"))

    @property
    def gates(self) -> tuple[str, ...]:
        return tuple(method.removeprefix("gate:") for method in self.verified_by if method.startswith("gate:"))


@dataclass(frozen=True, slots=True)
class Gate:
    name: str
    what: str
    command: str


@dataclass(frozen=True, slots=True)
class Registry:
    requirements: dict[str, Requirement]
    gates: dict[str, Gate] = field(default_factory=dict)

    def unknown_requirements(self, tested: Mapping[str, Iterable[str]]) -> list[str]:
        """Tests that name an ID the registry does not have."""
        return [
            f"{unknown}: named by {sorted(tested[unknown])} but not in the registry"
            for unknown in sorted(set(tested) - set(self.requirements))
        ]

    def coverage_problems(self, tested: Mapping[str, Iterable[str]], drills: Iterable[str]) -> list[str]:
        """Everything that keeps the registry from being fully covered: `tested` maps requirement IDs to the
        conformance tests that name them; `drills` are the names in the drill catalog."""
        problems: list[str] = []
        drill_names = set(drills)
        for requirement in self.requirements.values():
            if requirement.by_conformance and not list(tested.get(requirement.id, ())):
                problems.append(f"{requirement.id}: registry says conformance, but no test names it")
            for drill in requirement.drills:
                if drill not in drill_names:
                    problems.append(f"{requirement.id}: drill {drill!r} is not in the drill catalog")
            for gate in requirement.gates:
                if gate not in self.gates:
                    problems.append(f"{requirement.id}: gate {gate!r} is not defined in requirements.yaml")
        return problems


def parse_catalog(text: str) -> dict[str, tuple[str, str]]:
    """ID → (statement, section heading) from the Markdown catalog's tables."""
    section = ""
    found: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        match = _ROW.match(line)
        if match:
            found[match.group(1)] = (match.group(2).strip(), section)
    return found


@cache
def load_registry(catalog_path: Path = CATALOG, registry_path: Path = REGISTRY) -> Registry:
    catalog = parse_catalog(catalog_path.read_text(encoding="utf-8"))
    raw = yaml.safe_load(registry_path.read_text(encoding="utf-8"))
    problems: list[str] = []
    methods: dict[str, list[str]] = raw.get("requirements") or {}
    for missing in sorted(set(catalog) - set(methods)):
        problems.append(f"{missing}: in {catalog_path.name} but not in {registry_path.name}")
    for extra in sorted(set(methods) - set(catalog)):
        problems.append(f"{extra}: in {registry_path.name} but not in {catalog_path.name}")
    requirements: dict[str, Requirement] = {}
    for requirement_id, verified_by in methods.items():
        if not ID_PATTERN.fullmatch(requirement_id):
            problems.append(f"{requirement_id}: not a requirement ID")
        if not verified_by:
            problems.append(f"{requirement_id}: no verification method")
            continue
        for method in verified_by:
            if method != "conformance" and not re.fullmatch(r"(drill|gate):[a-z0-9*-]+", method):
                problems.append(f"{requirement_id}: unknown verification method {method!r}")
        if requirement_id in catalog:
            statement, section = catalog[requirement_id]
            requirements[requirement_id] = Requirement(requirement_id, statement, section, tuple(verified_by))
    gates = {
        name: Gate(name, str(spec["what"]), str(spec["command"])) for name, spec in (raw.get("gates") or {}).items()
    }
    if problems:
        raise RegistryError("the requirement registry is inconsistent:\n  " + "\n  ".join(problems))
    return Registry(requirements, gates)
