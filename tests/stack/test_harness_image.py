"""The harness image (deploy/harness/Dockerfile, built by `make docker-prepare`) runs remote conformance against a
deployment, as a CI system that prefers images runs it: here a Docker stack this module starts, reached over the
host's loopback (`docker run --network host`), with the API key passed from the environment (`-e API_KEY`),
never on the command line. Its reports, written into a mounted directory, name the commit the image was built
from; it runs as a non-root user and carries the harness dependencies, not the dev tools.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.stack.docker import DockerStack
from chaos.stack.images.prepare import HARNESS_IMAGE, checkout_commit
from conformance.verdicts import Exit

pytestmark = pytest.mark.docker

RUN_TIMEOUT_S = 600
NOT_INSTALLED_IN_THE_IMAGE = ("ruff", "mypy", "playwright")  # requirements/dev.txt: dev tools only
INSTALLED_IN_THE_IMAGE = ("conformance", "chaos", "service", "schemathesis", "pytest", "httpx")


def _image_config(image: str) -> dict[str, Any]:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config}}", image],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{image} is not in the engine: `make docker-prepare` builds it ({result.stderr.strip()})")
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture(scope="module")
def image_config() -> dict[str, Any]:
    return _image_config(HARNESS_IMAGE)


@pytest.fixture(scope="module")
def stack() -> Iterator[DockerStack]:
    with DockerStack(workers=1, progress=print) as running:
        yield running


def docker_run(
    *arguments: str, env: dict[str, str] | None = None, mounts: dict[Path, str] | None = None, entrypoint: str = ""
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm --network host … IMAGE ARGUMENTS`, each name in `env` passed as `-e NAME` (its value
    travels in the docker CLI's environment, not its argv). The container is named, and removed afterwards
    even when the CLI was killed by the timeout (then `--rm` alone would leave it running)."""
    name = f"rb-harness-test-{uuid.uuid4().hex[:12]}"
    command = ["docker", "run", "--rm", "--name", name, "--network", "host"]
    for variable in env or {}:
        command += ["-e", variable]
    for host_path, container_path in (mounts or {}).items():
        command += ["-v", f"{host_path}:{container_path}"]
    if entrypoint:
        command += ["--entrypoint", entrypoint]
    try:
        return subprocess.run(
            [*command, HARNESS_IMAGE, *arguments],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60, check=False)


def test_the_image_bakes_the_commit_it_was_built_from(image_config: dict[str, Any]) -> None:
    env = dict(entry.split("=", 1) for entry in image_config["Env"])
    assert env.get("RUNBOOK_COMMIT") == checkout_commit(), (
        f"{HARNESS_IMAGE} was built from {env.get('RUNBOOK_COMMIT')}, the checkout is at {checkout_commit()}: "
        "`make docker-prepare` rebuilds it"
    )
    assert image_config["Labels"]["org.opencontainers.image.revision"] == env["RUNBOOK_COMMIT"]


def test_the_image_runs_as_a_non_root_user_with_the_harness_and_without_dev_tools(
    image_config: dict[str, Any],
) -> None:
    assert image_config["User"] == "10001:10001"
    assert image_config["Entrypoint"] == ["runbook-harness"]
    uid = docker_run("-u", entrypoint="id")
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() == "10001"
    probe = "import importlib.util as u, json, sys; print(json.dumps({m: bool(u.find_spec(m)) for m in sys.argv[1:]}))"
    found = docker_run("-c", probe, *NOT_INSTALLED_IN_THE_IMAGE, *INSTALLED_IN_THE_IMAGE, entrypoint="python")
    assert found.returncode == 0, found.stderr
    present = json.loads(found.stdout)
    assert [module for module in NOT_INSTALLED_IN_THE_IMAGE if present[module]] == []
    assert [module for module in INSTALLED_IN_THE_IMAGE if not present[module]] == []


def test_the_entrypoint_names_its_commands_and_refuses_others_as_usage() -> None:
    listed = docker_run()
    assert listed.returncode == 0, listed.stderr
    for command in ("conformance", "health", "payload-guards", "bench", "chaos"):
        assert f"  {command} " in listed.stdout, command
    helped = docker_run("conformance", "--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: runbook-conformance "), helped.stdout[:200]
    unknown = docker_run("migrate-everything")
    assert unknown.returncode == Exit.USAGE
    assert "unknown command 'migrate-everything'" in unknown.stderr


def test_remote_conformance_from_the_image_passes_and_its_reports_name_the_commit(
    stack: DockerStack, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o777)  # the image's user (uid 10001) writes here; whoever runs the test removes it afterwards
    secrets = {"API_KEY": stack.endpoints.api_key, "JWT_SECRET": stack.service_env["JWT_SECRET"]}
    result = docker_run(
        "conformance",
        "--base-url",
        stack.endpoints.api_url,
        "--report-dir",
        "/harness/reports",  # the mount itself, so no directory of uid 10001's is left for the host to remove
        "-q",
        env=secrets,
        mounts={reports: "/harness/reports"},
    )
    assert result.returncode == Exit.OK, result.stdout[-4000:] + result.stderr[-2000:]

    commit = checkout_commit().removesuffix("+dirty")
    root = ET.parse(reports / "junit.xml").getroot()  # noqa: S314 - the report the image just wrote
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, "junit.xml has a testsuite"
    assert suite.get("name") == "runbook-conformance"
    properties = {prop.get("name"): prop.get("value") for prop in suite.findall("properties/property")}
    assert properties.get("commit") == commit, f"the junit testsuite's properties: {properties}"
    matrix = (reports / "requirements.json").read_text()
    assert commit in matrix, "requirements.json names the commit its outcomes were obtained on"
    outcomes = {row["id"]: row["outcome"] for row in json.loads(matrix)["requirements"]}
    assert outcomes["RB-HEALTH-LIVE"].startswith("passed"), outcomes["RB-HEALTH-LIVE"]
    for name, secret in secrets.items():
        for report in reports.iterdir():
            assert secret not in report.read_text(errors="replace"), f"{name} in {report.name}"


def test_a_key_the_deployment_refuses_is_could_not_run(stack: DockerStack) -> None:
    result = docker_run("conformance", "--base-url", stack.endpoints.api_url, env={"API_KEY": "not-the-key"})
    assert result.returncode == Exit.COULD_NOT_RUN, result.stdout[-2000:] + result.stderr[-2000:]
    assert "not-the-key" not in result.stdout + result.stderr
