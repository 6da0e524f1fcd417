"""A conformance check that cannot fail is a defect: for each requirement the suite checks, run its checks
against a deliberately non-conforming service and see them fail, naming that requirement.

HTTP-visible defects run against one mutant service whose defect changes between runs (remote-target mode,
`--base-url`). Defects that only show when a dependency breaks run the suite's own embedded stack with the
broken variant (`--stack-app`, `--stack-env`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.stack.local import LocalStack
from conformance.registry import load_registry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MUTANT_APP = "tests.conformance.mutant_app:app"

# (defect, requirement whose checks must then fail)
HTTP_DEFECTS = [
    ("no-request-id", "RB-OBS-REQUEST-ID"),
    ("no-traceparent", "RB-OBS-TRACE-CONTEXT"),
    ("no-version", "RB-TRIAGE-VERSION"),
    ("html-413", "RB-GUARD-BODY-413"),
    ("understated-batch-limit", "RB-GUARD-BATCH"),
    ("html-413", "RB-OPS-PAYLOAD-CHECK"),
    ("live-fails", "RB-HEALTH-LIVE"),
    ("live-fails", "RB-OPS-HEALTHCHECK"),
    ("ready-without-checks", "RB-HEALTH-READY"),
    ("ready-without-checks", "RB-TRIAGE-SCOPE"),
    ("health-needs-auth", "RB-HEALTH-OPEN"),
    ("any-api-key", "RB-AUTH-APIKEY"),
    ("any-api-key", "RB-OPS-VERDICTS"),  # the wrong key is accepted, so the check sees HEALTHY
    ("any-bearer-token", "RB-AUTH-JWT"),
    ("no-metrics", "RB-OBS-METRICS"),
    ("fresh-ids", "RB-DATA-DURABLE"),
    ("server-error-on-bad-json", "RB-API-CONTRACT"),
    ("method-as-label", "RB-SEC-CARDINALITY"),
    ("waits-for-slow-bodies", "RB-SEC-SLOW-CLIENT"),
    ("cursor-500", "RB-SEC-NO-500"),
    ("unbounded-pages", "RB-SEC-RESPONSE-BOUND"),
    ("silent-id-squatting", "RB-DATA-ID-CONFLICT"),
]

# (service environment or defect, requirement): only visible when the suite controls the stack
CONTROL_DEFECTS: list[tuple[dict[str, str], str | None, str]] = [
    ({"HEALTH_CHECK_TIMEOUT_S": "10"}, None, "RB-HEALTH-READY-DEGRADED"),
    ({}, "ready-ignores-draining", "RB-HEALTH-DRAIN"),
    ({}, "ready-ignores-schema", "RB-HEALTH-SCHEMA"),
    ({}, "stale-limits", "RB-GUARD-ROLLOUT"),
    ({"LOG_LEVEL": "WARNING"}, None, "RB-OBS-LOGS"),
    ({}, "live-checks-dependencies", "RB-HEALTH-LIVE"),
    ({"RATE_LIMIT_BACKEND": "memory"}, None, "RB-RL-REDIS"),
    ({"RATE_LIMIT_REDIS_TIMEOUT_S": "30"}, None, "RB-RL-DEGRADED"),
    (
        {"DB_REQUEST_TIMEOUT_S": "30", "DB_CONNECT_TIMEOUT_S": "30", "DB_STATEMENT_TIMEOUT_S": "30"},
        None,
        "RB-DB-FAILFAST",
    ),
    ({}, "overload-as-500", "RB-DB-OVERLOAD"),
    ({}, "never-recovers", "RB-DB-RECOVER"),
    ({}, "acknowledge-without-storing", "RB-DATA-DURABLE"),
]


def run_conformance(
    requirement: str, *args: str, env: dict[str, str] | None = None, report_dir: Path
) -> dict[str, object]:
    command = [
        sys.executable,
        "-m",
        "conformance",
        "--requirement",
        requirement,
        "--report-dir",
        str(report_dir),
        "-q",
        *args,
    ]
    # Its own process group, so that a timeout also stops what the suite started (Schemathesis, a stack).
    with subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            message = f"conformance --requirement {requirement} did not finish in 600 s:\n{stdout[-3000:]}"
            raise AssertionError(message) from None
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    report_path = report_dir / "requirements.json"
    assert report_path.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    matrix: dict[str, object] = json.loads(report_path.read_text())
    matrix["exit_code"] = result.returncode
    matrix["output"] = result.stdout[-12000:]
    return matrix


def outcome_of(matrix: dict[str, object], requirement: str) -> str:
    rows = matrix["requirements"]
    assert isinstance(rows, list)
    return str(next(row["outcome"] for row in rows if row["id"] == requirement))


@pytest.fixture(scope="module")
def mutant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    defect_file = tmp_path_factory.mktemp("mutant") / "defect"
    defect_file.write_text("none")
    with LocalStack(
        workers=1,
        application=MUTANT_APP,
        service_env={
            "CONFORMANCE_MUTATION_FILE": str(defect_file),
            "RATE_LIMIT_READ": "100000/minute",
            "RATE_LIMIT_WRITE": "100000/minute",
            "RATE_LIMIT_ANONYMOUS": "100000/minute",
            # Smaller budgets, so that the response-bound checks write a few MB rather than tens.
            "REQUEST_BODY_GRACE_S": "1.0",
            "LIST_PAGE_MAX_BYTES": "262144",
            "EVENT_ATTRIBUTES_MAX_BYTES": "16384",
        },
    ) as stack:
        yield stack, defect_file


def test_every_conformance_requirement_has_a_defect_that_fails_it() -> None:
    covered = {r for _, r in HTTP_DEFECTS} | {r for _, _, r in CONTROL_DEFECTS} | {"RB-AUTH-SECRETS"}
    by_conformance = {r.id for r in load_registry().requirements.values() if r.by_conformance}
    assert by_conformance - covered == set(), "requirements whose checks were never shown to fail"


@pytest.mark.parametrize(("defect", "requirement"), HTTP_DEFECTS, ids=[f"{d}->{r}" for d, r in HTTP_DEFECTS])
def test_a_service_with_this_defect_fails_the_requirement(
    mutant: tuple[LocalStack, Path], defect: str, requirement: str, tmp_path: Path
) -> None:
    stack, defect_file = mutant
    defect_file.write_text(defect)
    try:
        matrix = run_conformance(
            requirement,
            "--base-url",
            stack.api_url,
            report_dir=tmp_path,
            env={"API_KEY": stack.api_key, "JWT_SECRET": stack.service_env["JWT_SECRET"]},
        )
    finally:
        defect_file.write_text("none")
    assert matrix["exit_code"] != 0, matrix["output"]
    assert outcome_of(matrix, requirement) == "FAILED", matrix["output"]
    assert requirement in str(matrix["failed"])


def test_the_same_checks_pass_against_the_real_service(mutant: tuple[LocalStack, Path], tmp_path: Path) -> None:
    stack, defect_file = mutant
    defect_file.write_text("none")
    # One run of every requirement above (a run per requirement took 8 s each, 162 s in CI, mostly start-up).
    first, *others = sorted({r for _, r in HTTP_DEFECTS})
    matrix = run_conformance(
        first,
        *(argument for requirement in others for argument in ("--requirement", requirement)),
        "--base-url",
        stack.api_url,
        report_dir=tmp_path,
        env={"API_KEY": stack.api_key, "JWT_SECRET": stack.service_env["JWT_SECRET"]},
    )
    assert matrix["exit_code"] == 0, matrix["output"]
    outcomes = {requirement: outcome_of(matrix, requirement) for requirement in [first, *others]}
    assert all(outcome.startswith("passed") for outcome in outcomes.values()), (outcomes, matrix["output"])


@pytest.mark.parametrize(
    ("env", "defect", "requirement"), CONTROL_DEFECTS, ids=[r + (f"({d})" if d else "") for _, d, r in CONTROL_DEFECTS]
)
def test_an_embedded_stack_with_this_defect_fails_the_requirement(
    env: dict[str, str], defect: str | None, requirement: str, tmp_path: Path
) -> None:
    args = [arg for name, value in env.items() for arg in ("--stack-env", f"{name}={value}")]
    if defect:
        args += ["--stack-app", MUTANT_APP, "--stack-env", f"CONFORMANCE_MUTATION={defect}"]
        args += ["--stack-env", f"CONFORMANCE_MUTATION_STATE={tmp_path / 'mutant-state'}"]  # shared by the workers
    matrix = run_conformance(requirement, *args, report_dir=tmp_path)
    assert matrix["exit_code"] != 0, matrix["output"]
    assert outcome_of(matrix, requirement) == "FAILED", matrix["output"]


def test_a_service_that_starts_without_its_secrets_fails_rb_auth_secrets(tmp_path: Path) -> None:
    lax = f"{sys.executable} -m tests.conformance.lax_service"
    matrix = run_conformance("RB-AUTH-SECRETS", "--service-command", lax, report_dir=tmp_path)
    assert matrix["exit_code"] != 0, matrix["output"]
    assert outcome_of(matrix, "RB-AUTH-SECRETS") == "FAILED", matrix["output"]
