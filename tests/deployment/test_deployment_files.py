"""What `chaos deployment` writes and how it calls compose, without Docker: the target file parses and names
variables, never values; the env file is private and sources in a shell; compose gets its secrets in its
environment, never on its command line, and its output reaches no log with a secret in it."""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from chaos.deployment.compose import CHAOS_FILE, CI_FILES, PROD_FILE, ComposeError, ComposeProject, files_for
from chaos.deployment.lifecycle import (
    Deployment,
    DeploymentError,
    Ports,
    env_values,
    generate_secrets,
    read_env_file,
    render_target,
    write_env_file,
)

REPO = Path(__file__).resolve().parents[2]


def a_deployment(tmp_path: Path, project: str = "rbdeploy") -> Deployment:
    return Deployment(
        project=project,
        replicas=3,
        ports=Ports(18000, 18474, 15432, 19090, 18404),
        image="executable-runbook:latest",
        files=files_for(True),
        target_file=tmp_path / "target.toml",
        env_file=tmp_path / "target.env",
        up_s=1.0,
    )


def test_the_target_file_is_toml_with_urls_drivers_and_variable_names(tmp_path: Path) -> None:
    deployment = a_deployment(tmp_path)
    target = tomllib.loads(render_target(deployment))
    assert target["base_url"] == "http://127.0.0.1:18000"
    assert target["prometheus_url"] == "http://127.0.0.1:19090"
    assert target["description"] == "docker-compose.prod.yml + docker-compose.chaos.yml, project rbdeploy, 3 replicas"
    assert target["drivers"]["toxiproxy"]["api_url"] == "http://127.0.0.1:18474"
    assert target["drivers"]["docker"]["balancer_stats_url"] == "http://127.0.0.1:18404/stats;csv"
    assert target["drivers"]["docker"]["partition_network"] == "rbdeploy_backend"
    assert target["drivers"]["docker"]["probe_network"] == "rbdeploy_chaos"
    assert all(name.isupper() and name.startswith("RB_TARGET_") for name in target["credentials"].values())


def test_the_env_file_is_private_sources_in_a_shell_and_holds_every_named_variable(tmp_path: Path) -> None:
    deployment = a_deployment(tmp_path)
    generated = generate_secrets()
    values = env_values(deployment, generated)
    write_env_file(deployment.env_file, values)
    assert stat.S_IMODE(deployment.env_file.stat().st_mode) == 0o600
    assert read_env_file(deployment.env_file) == values
    target = tomllib.loads(render_target(deployment))
    for variable in target["credentials"].values():
        assert values[variable]
    assert (
        values["RB_TARGET_DATABASE_URL"]
        == f"postgresql://events:{generated['POSTGRES_PASSWORD']}@127.0.0.1:15432/events"
    )
    sourced = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; set +a; env', "sh", str(deployment.env_file)],
        capture_output=True,
        text=True,
        check=True,
        env={},
    ).stdout.splitlines()
    assert {f"{name}={value}" for name, value in values.items()} <= set(sourced)
    # rewritten in place, still private
    write_env_file(deployment.env_file, {**values, "API_REPLICAS": "4"})
    assert stat.S_IMODE(deployment.env_file.stat().st_mode) == 0o600
    with pytest.raises(DeploymentError, match="unquoted"):
        write_env_file(tmp_path / "bad.env", {"X": "two words"})


def test_secrets_go_into_the_compose_environment_never_onto_its_command_line() -> None:
    generated = generate_secrets()
    project = ComposeProject("rbdeploy", files_for(False), {**generated, "API_PORT": "18000"})
    # the arguments alone: this test runs in `make test`, before the Docker stages install compose
    argv = " ".join(project.arguments("up", "-d", "--build"))
    for value in generated.values():
        assert value not in argv
    assert argv == f"-p rbdeploy -f {PROD_FILE} -f {CHAOS_FILE} up -d --build"
    environment = project.environment()
    assert {name: environment[name] for name in generated} == generated
    leaked = f"error: password {generated['POSTGRES_PASSWORD']} and key {generated['API_KEY']}; port 18000"
    assert project.redact(leaked) == "error: password [redacted] and key [redacted]; port 18000"
    assert files_for(True) == (PROD_FILE, CHAOS_FILE, *CI_FILES)
    assert all(path.is_file() for path in files_for(True))


@pytest.mark.parametrize("name", ["", "Upper", "-dash", "a b", "x" * 64, "semi;colon"])
def test_project_names_compose_would_change_or_refuse_are_refused(name: str) -> None:
    with pytest.raises(ComposeError, match="project name"):
        ComposeProject(name, files_for(False))


def test_ports_are_distinct() -> None:
    ports = Ports.pick()
    assert len(set(ports.variables().values())) == 5


@pytest.mark.parametrize("replicas", ["0", "17", "two"])
def test_the_cli_refuses_a_replica_count_the_balancer_cannot_hold(replicas: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaos", "deployment", "up", "--replicas", replicas],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--replicas" in result.stderr


def test_the_cli_documents_up_and_down() -> None:
    for action, words in (("up", ("target.toml", "target.env", "--replicas")), ("down", ("twice", "--project"))):
        result = subprocess.run(
            [sys.executable, "-m", "chaos", "deployment", action, "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        for word in words:
            assert word in result.stdout, (action, word)
