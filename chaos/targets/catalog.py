"""Which targets there are and how a drill run opens one.

The built-in targets are the two throwaway stacks the harness starts itself (`local`: processes, `docker`:
containers). A target file (chaos.targets.spec) describes anything else: `targets/*.toml` in the checkout
(examples), the file `python -m chaos deployment up` writes (reports/deployment/target.toml), or any path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from chaos.stack import make_stack
from chaos.stack.base import THROWAWAY_CAPABILITIES, Capability, Progress, StackBackend
from chaos.stack.migrations import REPO_ROOT
from chaos.targets.spec import TargetError, TargetSpec, read_target

BUILTIN: dict[str, TargetSpec] = {
    "local": TargetSpec(
        "local",
        "throwaway",
        None,
        "a throwaway stack of local processes: PostgreSQL, Redis, the fault proxy, the service (2 workers)",
        backend="local",
    ),
    "docker": TargetSpec(
        "docker",
        "throwaway",
        None,
        "the same throwaway stack as Docker containers on their own network",
        backend="docker",
    ),
}
EXAMPLES = REPO_ROOT / "targets"
DEPLOYMENT_TARGET = Path("reports/deployment/target.toml")


def resolve(name_or_path: str) -> TargetSpec:
    """A built-in target by name, or a target file by path; anything else is a `TargetError` saying what exists."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return read_target(path)
    known = ", ".join([*BUILTIN, *(str(p) for p in discover())])
    raise TargetError(f"no target {name_or_path!r}: name a built-in target or a .toml file (known: {known})")


def discover() -> Iterator[Path]:
    """Target files on disk: the examples shipped in targets/, then a local deployment's, if one is up."""
    yield from sorted(EXAMPLES.glob("*.toml"))
    if DEPLOYMENT_TARGET.exists():
        yield DEPLOYMENT_TARGET


def offered(spec: TargetSpec) -> frozenset[Capability]:
    """What a target offers drills, without opening it."""
    if spec.kind == "throwaway":
        from chaos.stack.local import LocalStack

        return LocalStack.capabilities if spec.backend == "local" else THROWAWAY_CAPABILITIES
    return spec.offers()


def open_target(spec: TargetSpec, *, service_env: Mapping[str, str], progress: Progress) -> StackBackend:
    """The backend for `spec`, not yet started: a new throwaway stack (2 workers), or the deployment."""
    if spec.kind == "throwaway":
        return make_stack(spec.backend, workers=2, service_env=service_env, progress=progress)
    from chaos.targets.deployment import DeploymentTarget

    return DeploymentTarget(spec, progress=progress)


__all__ = ["BUILTIN", "TargetError", "discover", "offered", "open_target", "resolve"]
