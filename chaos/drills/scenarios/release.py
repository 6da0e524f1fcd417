"""Release drills (배포/릴리스 장애): deploy a bad candidate, let post-deploy verification catch it, and roll
back in the runbook's order — configuration first; otherwise the previous release redeployed and, where the
migration is declared data-safe, `python -m alembic downgrade -1` (RB-ROLLBACK-APP, -CONFIG, -SCHEMA).

A release is a (code, environment, schema revision) triple. The previous good release is the repository's
HEAD checked out to a temporary git worktree; the bad candidate is a second worktree of HEAD plus a new
schema revision and a bug. Rollbacks always put the stack back on its own code, environment and schema.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from chaos.drills import probes
from chaos.drills.model import INCIDENT_REQUIREMENTS, Drill, DrillContext, Mitigation, Observation, Probe
from chaos.stack.base import Capability
from chaos.stack.migrations import REPO_ROOT, alembic_scripts, head_revision
from chaos.stack.service import SERVICE_APPLICATION

# A release replaces the service with another checkout of the code: only a backend that can do that runs it.
DEPLOYS_CHECKOUTS: Capability = "deploy-checkout"
CANDIDATE_APP = "service._release_candidate:app"
CANDIDATE_BUG = '''"""Release candidate (written by the release drill): ingest crashes."""

from service.asgi import app as _app


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/api/v1/events":
        raise RuntimeError("release candidate bug: ingest crashes before it stores anything")
    await _app(scope, receive, send)
'''
CANDIDATE_MIGRATION = '''"""Release candidate (written by the release drill): a nullable column for notes on events.

Revision ID: {revision}
Revises: {down_revision}
Create Date: {date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None

# The column is new in this release and nothing reads it yet: dropping it loses nothing the previous release
# knew about, so the downgrade is declared reversible and data-safe.
downgrade_reversible: bool = True
downgrade_data_safe: bool = True
# Only a nullable column: the previous release serves this schema unchanged, and stays ready on it.
expand_only: bool = True


def upgrade() -> None:
    op.add_column("events", sa.Column("drill_note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "drill_note")
'''


@dataclass
class Release:
    """(code, environment, schema revision): what a deploy puts in place."""

    name: str
    code_root: Path
    env: dict[str, str] = field(default_factory=dict)
    application: str = SERVICE_APPLICATION  # MODULE:ATTR the release serves

    @property
    def schema_revision(self) -> str:
        return head_revision(self.code_root)


def alembic(code_root: Path, database_url: str, *args: str) -> None:
    """`python -m alembic …` from a release's own checkout, as the runbook says."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=code_root,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database_url},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"alembic {' '.join(args)} failed in {code_root}: {result.stderr[-1500:]}")


def database_revision(code_root: Path, database_url: str) -> str:
    """The database's alembic revision ("" when it has none), read directly: `alembic current` would spend a
    few seconds of interpreter start-up on one row, inside the measured recovery. (`code_root` names the
    release whose view is asked; every release keeps the revision in the same table.)"""

    async def read() -> str:
        connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            if not await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
                return ""
            return str(await connection.fetchval("SELECT version_num FROM alembic_version") or "")
        finally:
            await connection.close()

    return asyncio.run(read())


# git locks the repository's worktree list while it adds or removes one: release drills in lanes side by side
# (chaos.drills.lanes) take turns, so a busy lock never sends one to the copy fallback.
_WORKTREES = threading.Lock()


def checkout(ref: str, purpose: str) -> tuple[Path, str]:
    """A clean checkout of `ref` in a temporary git worktree (a copy of the tree when git cannot)."""
    directory = Path(tempfile.mkdtemp(prefix=f"rb-release-{purpose}-"))
    directory.rmdir()
    with _WORKTREES:
        result = subprocess.run(
            ["git", "worktree", "add", "--detach", str(directory), ref],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode == 0:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", ref], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        return directory, f"{ref} ({commit})"
    shutil.copytree(REPO_ROOT, directory, ignore=shutil.ignore_patterns(".venv", ".git", "reports", "__pycache__"))
    return directory, "working tree copy (no git worktree available)"


def remove_checkout(directory: Path) -> None:
    with _WORKTREES:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(directory)], cwd=REPO_ROOT, capture_output=True, check=False
        )
    shutil.rmtree(directory, ignore_errors=True)


def deploy(ctx: DrillContext, release: Release) -> None:
    ctx.stack.require(DEPLOYS_CHECKOUTS)
    ctx.state.pop("deployed", None)  # unknown until the rollout completes
    ctx.stack.rolling_restart_service(release.env, code_root=release.code_root, application=release.application)
    ctx.state["deployed"] = (release.code_root, release.application)
    ctx.record(f"deployed {release.name} (code {release.code_root.name}, schema {release.schema_revision})")


# -- post-deploy verification: health + the core API paths -------------------------------------------------
def verification_fails() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        failures = _verification_failures(ctx)
        return Observation(bool(failures), failures, "; ".join(failures) or "everything passed")

    return Probe(
        "post-deploy verification detects the bad release", "health or a core API path fails", observe, timeout_s=15
    )


def verification_passes() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        failures = _verification_failures(ctx)
        return Observation(not failures, failures, "; ".join(failures) or "health and core API paths pass")

    return Probe("post-deploy verification passes", "live/ready 200, list, get, ingest succeed", observe, timeout_s=20)


def _verification_failures(ctx: DrillContext) -> list[str]:
    failures = []
    with ctx.client(timeout=5) as client:
        for path in ("/health/live", "/health/ready"):
            status = client.get(path).status_code
            if status != 200:
                failures.append(f"{path} {status}")
        listing = client.get("/api/v1/events", params={"limit": 1}, headers=ctx.auth)
        if listing.status_code != 200:
            failures.append(f"list {listing.status_code}")
        event = {"source": "post-deploy-check", "type": "release.verify", "occurred_at": datetime.now(UTC).isoformat()}
        ingest = client.post("/api/v1/events", json=event, headers=ctx.auth)
        if ingest.status_code not in (200, 201):
            failures.append(f"ingest {ingest.status_code}")
        else:
            event_id = ingest.json()["ids"][0]
            fetched = client.get(f"/api/v1/events/{event_id}", headers=ctx.auth)
            if fetched.status_code != 200:
                failures.append(f"get {fetched.status_code}")
    return failures


def health_alone_passes() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        with ctx.client() as client:
            statuses = [client.get(path).status_code for path in ("/health/live", "/health/ready")]
        return Observation(statuses == [200, 200], statuses, f"live {statuses[0]}, ready {statuses[1]}")

    return Probe(
        "health endpoints alone still pass",
        "live and ready 200: only the API path check catches it",
        observe,
        timeout_s=5,
    )


# -- the runbook's rollback order ------------------------------------------------------------------------------
def runbook_rollback(ctx: DrillContext) -> None:
    """설정 롤백 first; otherwise the previous release redeployed, then `alembic downgrade -1` if data-safe
    (run as its explicit form, and only if the revision is still the one whose declaration was read)."""
    previous: Release = ctx.state["previous"]
    candidate: Release = ctx.state["candidate"]
    changed = {k for k in set(previous.env) | set(candidate.env) if previous.env.get(k) != candidate.env.get(k)}
    if changed:
        ctx.record(f"configuration rollback first: restoring {', '.join(sorted(changed))}")
        deploy(
            ctx,
            Release(
                "the candidate's code with the previous configuration",
                candidate.code_root,
                previous.env,
                candidate.application,
            ),
        )
        if not _verification_failures(ctx):
            ctx.record("verification passes after the configuration rollback: no code or schema action needed")
            return
        ctx.record("still failing after the configuration rollback: the cause is in the code")
    else:
        ctx.record("configuration unchanged in this release: nothing to roll back there")
    deploy(ctx, previous)
    stack = ctx.stack
    revision = database_revision(candidate.code_root, stack.database_url)
    if revision == previous.schema_revision:
        ctx.record(f"schema already at the previous release's revision {revision}")
        return
    script = alembic_scripts(candidate.code_root).get_revision(revision)
    reversible = bool(getattr(script.module, "downgrade_reversible", False)) if script else False
    data_safe = bool(getattr(script.module, "downgrade_data_safe", False)) if script else False
    down_revision = script.down_revision if script else None
    if reversible and data_safe and isinstance(down_revision, str):
        now_at = schema_downgrade(candidate.code_root, stack.database_url, checked=revision, target=down_revision)
        ctx.record(
            f"`python -m alembic downgrade -1`, run as its explicit form `alembic downgrade {down_revision}` after "
            f"re-reading the revision: {revision} → {now_at} (declared reversible and data-safe)"
        )
    else:
        ctx.record(
            f"schema left at {revision}: its downgrade is not declared data-safe (the previous release "
            "runs on it; expand-only change)"
        )


def schema_downgrade(code_root: Path, database_url: str, *, checked: str, target: str) -> str:
    """`alembic downgrade <target>`: the explicit form of `downgrade -1` from `checked`, the revision whose
    declaration was read. The revision is read again right before; if it changed meanwhile, `downgrade -1`
    would undo a revision nobody checked, so nothing is run."""
    now = database_revision(code_root, database_url)
    if now != checked:
        raise RuntimeError(
            f"schema rollback refused: the database's revision changed since its declaration was checked "
            f"({checked} checked, now {now or 'none'}); nothing was downgraded"
        )
    alembic(code_root, database_url, "downgrade", target)
    return database_revision(code_root, database_url)


def restore_stack(ctx: DrillContext) -> None:
    """Rollback: the stack's own code, environment and schema, whatever happened; checkouts removed."""
    stack = ctx.stack
    stack.require(DEPLOYS_CHECKOUTS)
    baseline: dict[str, str] = ctx.state.get("baseline_env", {})
    candidate: Release | None = ctx.state.get("candidate")
    if candidate is not None:
        target = head_revision(REPO_ROOT)
        if database_revision(candidate.code_root, stack.database_url) != target:
            alembic(candidate.code_root, stack.database_url, "downgrade", target)
    if _serves_the_stacks_own_release(ctx, baseline):
        ctx.record("the stack already serves its own code, configuration and schema, and passes verification")
    else:
        stack.rolling_restart_service(baseline, code_root=REPO_ROOT, application=SERVICE_APPLICATION)
    for directory in ctx.state.pop("checkouts", []):
        remove_checkout(directory)


def _serves_the_stacks_own_release(ctx: DrillContext, baseline: dict[str, str]) -> bool:
    """Whether the last rollout, which completed, put the stack's own release back (the configuration
    rollback deploys exactly that) and it passes verification: then a rollout to the same release would
    only restart it."""
    if ctx.state.get("deployed") != (REPO_ROOT, SERVICE_APPLICATION):
        return False
    if any(ctx.stack.service_env.get(name) != value for name, value in baseline.items()):
        return False
    if database_revision(REPO_ROOT, ctx.stack.database_url) != head_revision(REPO_ROOT):
        return False
    try:
        return not _verification_failures(ctx)
    except httpx.HTTPError:
        return False


def _remember_baseline(ctx: DrillContext, *names: str) -> None:
    ctx.state["baseline_env"] = {name: ctx.stack.service_env[name] for name in names if name in ctx.stack.service_env}
    ctx.state.setdefault("checkouts", [])


# -- release-bad-config -------------------------------------------------------------------------------------------
def _bad_config_setup(ctx: DrillContext) -> None:
    _remember_baseline(ctx, "DATABASE_URL")
    env = dict(ctx.state["baseline_env"])
    ctx.state["previous"] = Release("the running release", REPO_ROOT, env)
    broken_url = env["DATABASE_URL"].rsplit(":", 1)
    port_and_db = broken_url[1].split("/", 1)
    wrong = f"{broken_url[0]}:1/{port_and_db[1]}"  # port 1: nothing listens there
    ctx.state["candidate"] = Release(
        "the candidate with a changed DATABASE_URL (wrong port)", REPO_ROOT, {"DATABASE_URL": wrong}
    )


def _deploy_candidate(ctx: DrillContext) -> None:
    candidate: Release = ctx.state["candidate"]
    ctx.mark("rollout started")
    ctx.record(f"rollout of {candidate.name} begins")
    if candidate.code_root != ctx.state["previous"].code_root:
        alembic(candidate.code_root, ctx.stack.database_url, "upgrade", "head")
        ctx.record(f"migrated the schema to {candidate.schema_revision} (`python -m alembic upgrade head`)")
    deploy(ctx, candidate)
    ctx.mark("fault injected")  # detection is measured from the moment the bad release serves


RELEASE_REQUIREMENTS = (
    "RB-ROLLBACK-APP",
    "RB-ROLLBACK-CONFIG",
    "RB-ROLLBACK-SCHEMA",
    "RB-OPS-CHANGELOG",
    *INCIDENT_REQUIREMENTS,
)

RELEASE_BAD_CONFIG = Drill(
    name="release-bad-config",
    title="배포/릴리스 장애 / a release with a configuration fault (wrong DATABASE_URL)",
    scenario="release",
    requirements=RELEASE_REQUIREMENTS,
    description="deploy the same code with DATABASE_URL pointing at a port where nothing listens; post-deploy "
    "verification fails; the configuration is rolled back first, and that is enough",
    setup=_bad_config_setup,
    inject=_deploy_candidate,
    remove=lambda ctx: None,
    expected=(verification_fails(), probes.ready_degraded("database"), probes.api_fails_fast("read")),
    mitigation=Mitigation(
        description="롤백 전략 — 설정 롤백: the environment change is reverted first (rolling restart with the "
        "previous DATABASE_URL), before any code or schema action.",
        risk="None for data; requests during the bad release got 503 with Retry-After.",
        apply=runbook_rollback,
        verify=(verification_passes(),),
    ),
    suspected_cause="post-deploy verification failed right after the rollout: the release is the suspect",
    confirmed_cause="the candidate's DATABASE_URL names a port where no database listens",
    follow_up=(),
    rollbacks=(restore_stack,),
    dwell_s=1.0,
    tags={"dependency": "release", "fault": "config"},
    requires=frozenset({DEPLOYS_CHECKOUTS, "service-reconfigure"}),
)


# -- release-bad-code -----------------------------------------------------------------------------------------
def _bad_code_setup(ctx: DrillContext) -> None:
    _remember_baseline(ctx, "DATABASE_URL")
    previous_root, previous_ref = checkout("HEAD", "previous")
    ctx.state["checkouts"].append(previous_root)
    candidate_root, _ = checkout("HEAD", "candidate")
    ctx.state["checkouts"].append(candidate_root)
    head = head_revision(candidate_root)
    revision = f"{head}_drill"
    (candidate_root / "migrations" / "versions" / f"{revision}_release_drill_note.py").write_text(
        CANDIDATE_MIGRATION.format(revision=revision, down_revision=head, date=datetime.now(UTC).date())
    )
    (candidate_root / "service" / "_release_candidate.py").write_text(CANDIDATE_BUG)
    ctx.state["previous"] = Release(f"previous release {previous_ref}", previous_root)
    ctx.state["candidate"] = Release(
        f"candidate {previous_ref} + schema {revision} + ingest bug", candidate_root, application=CANDIDATE_APP
    )
    database = database_revision(REPO_ROOT, ctx.stack.database_url)
    if database != head_revision(previous_root):
        alembic(previous_root, ctx.stack.database_url, "upgrade", "head")
    deploy(ctx, ctx.state["previous"])


RELEASE_BAD_CODE = Drill(
    name="release-bad-code",
    title="배포/릴리스 장애 / a release with a schema change and broken code",
    scenario="release",
    requirements=RELEASE_REQUIREMENTS,
    description="from the previous release (HEAD in a worktree), migrate to the candidate's new revision and "
    "deploy candidate code whose ingest crashes; post-deploy verification fails; no configuration changed, so "
    "the previous release is redeployed and the data-safe migration downgraded",
    setup=_bad_code_setup,
    inject=_deploy_candidate,
    remove=lambda ctx: None,
    expected=(verification_fails(), health_alone_passes()),
    mitigation=Mitigation(
        description="롤백 전략 — 애플리케이션 롤백 (직전 정상 릴리스 재배포), then 스키마 롤백 with "
        "`python -m alembic downgrade -1` because the revision is declared reversible and data-safe.",
        risk="Writes during the bad release failed (500) and must be retried by clients; the candidate's new "
        "column is dropped (it held nothing the previous release uses).",
        apply=runbook_rollback,
        verify=(verification_passes(),),
    ),
    suspected_cause="post-deploy verification: ingest fails right after the rollout while health stays green",
    confirmed_cause="the candidate's ingest path crashes (RuntimeError) before it stores anything",
    follow_up=(),
    rollbacks=(restore_stack,),
    dwell_s=1.0,
    server_errors_expected=True,
    tags={"dependency": "release", "fault": "code+schema"},
    requires=frozenset({DEPLOYS_CHECKOUTS, "service-reconfigure"}),
)

RELEASE_DRILLS = (RELEASE_BAD_CONFIG, RELEASE_BAD_CODE)
