"""REF of `--baseline REF` → a running baseline service beside the candidate, on the same PostgreSQL, Redis and
dataset, with the same environment; stopped (and its files removed) when the comparison ends.

REF is one of (tried in this order):
- an http(s) URL: a baseline someone runs already. Loopback only, or a URL a profile names
  (conformance/perf/targets.py check_target). It serves its own database, so it needs a candidate that
  shares it: a `target = "url"` profile (the paired run checks both report the same schema revision and
  newest event). With an embedded profile it is refused: the embedded stack's data is seeded anew.
- a directory: a checkout (or exported tree) whose own `service` package is run, e.g. this checkout to
  compare a build with itself, or a tree prepared by hand;
- `image:TAG`, or anything with a ':' (git ref names cannot contain one): a Docker image, run with
  `docker run --network host` so it reaches the stack's loopback PostgreSQL/Redis and listens on a loopback
  port. No Docker engine answering is "could not run" (exit 3), not a skip;
- a git ref (HEAD~1, a tag, a commit): `git archive` of its commit into a temporary directory. `git archive`
  reads the object database only: unlike `git worktree add` it leaves no administrative files in .git to
  clean up when the run is killed, and the checkout's work tree and index are never touched.

A tree (git ref or directory) is served the way chaos/stack/service.py ServiceProcess serves a release drill's
code: `python -m service` with that tree as working directory and PYTHONPATH, so its own `service` package
is imported (not this checkout's), with this environment's interpreter and dependencies.

The baseline's schema must be the database's: a tree's alembic head (or an image's or URL's readiness
`expected_schema_revision`) must equal the database's revision, else the comparison cannot run (exit 3,
"baseline REF needs schema X, the database has Y"). It never migrates the database down to fit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chaos.lifecycle import answers_ok, free_port
from chaos.stack.migrations import REPO_ROOT, head_revision
from chaos.stack.service import ServiceProcess
from conformance import provenance
from conformance.perf.console import Progress, stderr
from conformance.perf.errors import TargetError, UsageError
from conformance.perf.targets import check_target
from conformance.tls import shared_tls_context

IMAGE_PREFIX = "image:"
DOCKER_TIMEOUT_S = 15.0
LIVE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BaselineRef:
    """What `--baseline` named, and how it is run."""

    given: str
    kind: str  # "url" | "directory" | "image" | "git"
    target: str  # the normalised URL, the directory, the image tag, or the commit (40 hex digits)


@dataclass
class RunningBaseline:
    base_url: str
    version: dict[str, object]  # what ran: kind, ref, commit / image id, dirty
    schema_revision: str | None = None
    notes: list[str] = field(default_factory=list)


def _git(*args: str, cwd: Path = REPO_ROOT) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def parse_baseline(ref: str, *, named_urls: tuple[str, ...] = ()) -> BaselineRef:
    """Which kind of baseline REF is (see the module docstring); UsageError when it is none of them."""
    ref = ref.strip()
    if not ref:
        raise UsageError("--baseline needs a value: a git ref, a directory, image:TAG, or a loopback URL")
    if ref.startswith(("http://", "https://")):
        return BaselineRef(ref, "url", check_target(ref, named_by_profile=named_urls))
    if Path(ref).is_dir():
        return BaselineRef(ref, "directory", str(Path(ref).resolve()))
    if ref.startswith(IMAGE_PREFIX) or ":" in ref:
        return BaselineRef(ref, "image", ref.removeprefix(IMAGE_PREFIX))
    commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if not commit:
        raise UsageError(
            f"--baseline {ref!r} is not a URL, a directory, an image (image:TAG or NAME:TAG), or a commit of this "
            "repository (git rev-parse finds none; a shallow clone may lack it: git fetch --deepen=2)"
        )
    return BaselineRef(ref, "git", commit)


def database_revision(database_url: str) -> str | None:
    """The database's alembic revision (None when it has none)."""
    import asyncpg

    async def read() -> str | None:
        connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            if not await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
                return None
            value = await connection.fetchval("SELECT version_num FROM alembic_version")
            return str(value) if value else None
        finally:
            await connection.close()

    return asyncio.run(read())


def require_same_schema(ref: BaselineRef, needs: str | None, database_has: str | None) -> None:
    if needs != database_has:
        raise TargetError(
            f"baseline {ref.given} needs schema {needs or '(none)'}, the database has {database_has or '(none)'}: "
            "the two builds cannot share one database (the paired run never migrates down); compare against a "
            "ref with the same migrations"
        )


def readiness(base_url: str) -> dict[str, object]:
    """The baseline's /health/ready body (any status: a degraded one still names its schema)."""
    try:
        response = httpx.get(f"{base_url}/health/ready", timeout=5, verify=shared_tls_context())
        body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise TargetError(f"the baseline at {base_url} does not answer /health/ready: {error}") from None
    return body if isinstance(body, dict) else {}


def tree_version(ref: BaselineRef, root: Path) -> dict[str, object]:
    if root == REPO_ROOT:
        return {"kind": ref.kind, "ref": ref.given, **provenance.current().as_dict()}
    if ref.kind == "git":
        return {"kind": "git", "ref": ref.given, "commit": ref.target, "dirty": False}
    commit = _git("rev-parse", "HEAD", cwd=root)
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", cwd=root)) if commit else False
    return {"kind": ref.kind, "ref": ref.given, "commit": commit or provenance.UNKNOWN, "dirty": dirty}


def export_commit(commit: str, directory: Path) -> None:
    """`git archive COMMIT` unpacked into `directory` (which exists)."""
    with tempfile.TemporaryFile() as archive:
        done = subprocess.run(
            ["git", "archive", "--format=tar", commit], cwd=REPO_ROOT, stdout=archive, stderr=subprocess.PIPE
        )
        if done.returncode != 0:
            raise TargetError(f"git archive {commit[:12]} failed: {done.stderr.decode(errors='replace')[-500:]}")
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(directory, filter="data")


@contextlib.contextmanager
def _served_tree(
    ref: BaselineRef, root: Path, env: Mapping[str, str], workers: int, database_url: str, progress: Progress
) -> Iterator[RunningBaseline]:
    if not (root / "service" / "__main__.py").is_file():
        raise TargetError(f"baseline {ref.given}: {root} has no service package (service/__main__.py)")
    try:
        needs: str | None = head_revision(root)
    except Exception as error:
        raise TargetError(f"baseline {ref.given}: cannot read its migrations: {error}") from None
    has = database_revision(database_url)
    require_same_schema(ref, needs, has)
    progress(f"baseline: serving {ref.given} from {root} ({workers} worker(s), schema {needs})")
    with serve_tree(root, env, workers, label=f"baseline {ref.given}") as base_url:
        yield RunningBaseline(base_url, tree_version(ref, root), needs)


@contextlib.contextmanager
def serve_tree(
    root: Path, env: Mapping[str, str], workers: int, *, label: str, application: str | None = None
) -> Iterator[str]:
    """`python -m service` of the tree at `root` (its base URL while the block runs). The paired run serves
    the candidate with this too, so that both sides are started alike and only their code differs."""
    # Its own package first: the working directory is sys.path[0] under `python -m`, and PYTHONPATH keeps it
    # first for anything the service starts itself; this checkout's editable install only comes after both.
    tree_env = {**env, "PYTHONPATH": str(root)}
    service = ServiceProcess(tree_env, workers=workers, code_root=root, application=application)
    try:
        service.start()
    except Exception as error:
        service.close()
        raise TargetError(f"{label} did not start: {error}") from None
    try:
        yield service.base_url
    finally:
        service.close()


def _docker(*args: str, env: Mapping[str, str] | None = None, timeout: float = DOCKER_TIMEOUT_S) -> str:
    try:
        done = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else {**os.environ, **env},
        )
    except FileNotFoundError:
        raise TargetError(
            "a baseline image needs Docker: no `docker` command here (apt-get install docker.io)"
        ) from None
    except subprocess.TimeoutExpired:
        raise TargetError(f"docker {args[0]} got no answer within {timeout:g} s") from None
    if done.returncode != 0:
        raise TargetError(f"docker {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def docker_engine_answers() -> str:
    """The engine's version; TargetError when no Docker engine answers."""
    try:
        return _docker("version", "--format", "{{.Server.Version}}")
    except TargetError as error:
        raise TargetError(f"a baseline image needs a Docker engine and none answers ({error}); start dockerd") from None


@contextlib.contextmanager
def _served_image(
    ref: BaselineRef, env: Mapping[str, str], workers: int, database_url: str, progress: Progress
) -> Iterator[RunningBaseline]:
    engine = docker_engine_answers()
    inspected = json.loads(_docker("image", "inspect", ref.target))[0]
    image_env = dict(item.split("=", 1) for item in inspected.get("Config", {}).get("Env") or [] if "=" in item)
    port = free_port()
    name = f"rb-paired-baseline-{os.getpid()}-{port}"
    # `-e NAME` without a value takes it from the docker client's environment: secrets never reach a command line.
    passed = [arg for key in env for arg in ("-e", key)]
    command = ["run", "-d", "--rm", "--network", "host", "--name", name, *passed, ref.target]
    command += ["python", "-m", "service", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    progress(f"baseline: docker run {ref.target} (engine {engine}) on 127.0.0.1:{port}")
    _docker(*command, env=env, timeout=60)
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + LIVE_TIMEOUT_S
        while not answers_ok(f"{base_url}/health/live"):
            if time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", "--tail", "30", name], capture_output=True, text=True)
                raise TargetError(f"baseline image {ref.target} did not come up: {logs.stdout[-1500:]}")
            time.sleep(0.2)
        ready = readiness(base_url)
        needs = ready.get("expected_schema_revision")
        require_same_schema(ref, str(needs) if needs else None, database_revision(database_url))
        version: dict[str, object] = {
            "kind": "image",
            "ref": ref.given,
            "image_id": inspected.get("Id"),
            "commit": image_env.get(provenance.COMMIT_ENV, provenance.UNKNOWN),
            "version": ready.get("version"),
        }
        yield RunningBaseline(base_url, version, str(needs) if needs else None)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60, check=False)


@contextlib.contextmanager
def running_baseline(
    ref: BaselineRef,
    *,
    env: Mapping[str, str],
    workers: int,
    database_url: str,
    progress: Progress = stderr,
) -> Iterator[RunningBaseline]:
    """The baseline REF served beside the candidate on `database_url` with the candidate's `env` (a URL
    baseline is not started here: see conformance/perf/regression.py)."""
    if ref.kind == "url":
        raise UsageError("a URL baseline is already running: it is not started beside an embedded stack")
    if ref.kind == "image":
        with _served_image(ref, env, workers, database_url, progress) as running:
            yield running
        return
    if ref.kind == "directory":
        with _served_tree(ref, Path(ref.target), env, workers, database_url, progress) as running:
            yield running
        return
    directory = Path(tempfile.mkdtemp(prefix="rb-paired-baseline-"))
    try:
        progress(f"baseline: git archive {ref.given} ({ref.target[:12]}) into {directory}")
        export_commit(ref.target, directory)
        with _served_tree(ref, directory, env, workers, database_url, progress) as running:
            yield running
    finally:
        shutil.rmtree(directory, ignore_errors=True)
