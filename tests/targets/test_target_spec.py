"""Target files (chaos/targets/spec.py): what a drill run is pointed at, checked before anything runs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from chaos.targets.catalog import BUILTIN, EXAMPLES, offered, resolve
from chaos.targets.spec import TargetError, load_env_file, read_target

FULL = """
name = "local-deployment"
kind = "deployment"
description = "two replicas"
base_url = "http://127.0.0.1:18000/"
prometheus_url = "http://127.0.0.1:19090"
alert_clock_factor = 15

[credentials]
api_key = "RB_TEST_TARGET_API_KEY"
database_url = "RB_TEST_TARGET_DATABASE_URL"

[drivers.toxiproxy]
api_url = "http://127.0.0.1:18474"
proxies = { postgres = "pg", redis = "rd" }

[drivers.docker]
project = "rbdeploy"
service = "api"
dependencies = { postgres = "postgres", redis = "redis" }
partition_network = "rbdeploy_backend"
probe_network = "rbdeploy_probe"
balancer_stats_url = "http://127.0.0.1:18404/stats;csv"
image = "executable-runbook:latest"
candidate_image = "executable-runbook:candidate"
broken_image = "executable-runbook:broken"
"""


def write(tmp_path: Path, text: str, name: str = "target.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_full_deployment_target_offers_every_fleet_capability(tmp_path: Path) -> None:
    spec = read_target(write(tmp_path, FULL))
    assert (spec.name, spec.kind, spec.base_url) == ("local-deployment", "deployment", "http://127.0.0.1:18000")
    assert spec.alert_clock_factor == 15
    assert spec.toxiproxy is not None
    assert spec.toxiproxy.proxies == {"postgres": "pg", "redis": "rd"}
    assert spec.docker is not None
    assert spec.docker.project == "rbdeploy"
    assert spec.offers() == {
        "proxy-faults",
        "dependency-process",
        "replicas",
        "replica-partition",
        "image-deploy",
        "balancer-view",
    }


def test_without_a_docker_driver_a_deployment_offers_only_proxy_faults(tmp_path: Path) -> None:
    text = FULL[: FULL.index("[drivers.docker]")]
    assert read_target(write(tmp_path, text)).offers() == {"proxy-faults"}
    assert offered(resolve(str(EXAMPLES / "staging.example.toml"))) == {"proxy-faults"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('name = "local-deployment"', 'nme = "x"'), "`name` is required"),
        (('kind = "deployment"', 'kind = "cluster"'), "`kind` must be deployment or throwaway"),
        (('base_url = "http://127.0.0.1:18000/"', 'base_url = "ftp://x"'), "`base_url` must be an http(s) URL"),
        (('api_key = "RB_TEST_TARGET_API_KEY"', 'api_key = "s3cret value"'), "must name an environment variable"),
        (('service = "api"', 'service = "api"\nreplicas = 3'), "unknown key(s) replicas"),
        (("alert_clock_factor = 15", "alert_clock_factor = 0"), "`alert_clock_factor` must be between 1 and 3600"),
        (("alert_clock_factor = 15", 'alert_clock_factor = "15"'), "`alert_clock_factor` has the wrong type"),
        (('redis = "rd" }', 'redis = "rd", mysql = "m" }'), "unknown key(s) mysql"),
    ],
)
def test_a_wrong_file_is_refused_naming_the_file_and_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in FULL
    path = write(tmp_path, FULL.replace(old, new, 1))
    with pytest.raises(TargetError) as refused:
        read_target(path)
    assert message in str(refused.value)
    assert str(path) in str(refused.value)


def test_unreadable_oversized_and_non_toml_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="cannot read the target file"):
        read_target(tmp_path / "missing.toml")
    with pytest.raises(TargetError, match="not a TOML file"):
        read_target(write(tmp_path, "name = [unclosed"))
    with pytest.raises(TargetError, match="at most 65536 bytes"):
        read_target(write(tmp_path, "# " + "x" * 70_000))
    with pytest.raises(TargetError, match="no target 'nowhere'"):
        resolve("nowhere")


def test_credentials_come_from_the_environment_and_a_missing_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = read_target(write(tmp_path, FULL))
    monkeypatch.delenv("RB_TEST_TARGET_API_KEY", raising=False)
    with pytest.raises(TargetError, match="RB_TEST_TARGET_API_KEY, which is not set"):
        spec.secret("api_key")
    monkeypatch.setenv("RB_TEST_TARGET_API_KEY", "k" * 20)
    assert spec.secret("api_key") == "k" * 20
    assert spec.secret("jwt_secret") is None  # not named: not needed


def test_an_env_file_loads_only_when_only_its_owner_can_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "target.env"
    env.write_text(
        "# secrets\nRB_TEST_TARGET_API_KEY=abc123abc123abc123\nexport RB_TEST_TARGET_DATABASE_URL='postgresql://x'\n"
    )
    env.chmod(0o644)
    with pytest.raises(TargetError, match="readable by others"):
        load_env_file(env)
    env.chmod(0o600)
    monkeypatch.delenv("RB_TEST_TARGET_API_KEY", raising=False)
    monkeypatch.delenv("RB_TEST_TARGET_DATABASE_URL", raising=False)
    assert sorted(load_env_file(env)) == ["RB_TEST_TARGET_API_KEY", "RB_TEST_TARGET_DATABASE_URL"]
    assert os.environ["RB_TEST_TARGET_DATABASE_URL"] == "postgresql://x"
    env.write_text("not a line\n")
    with pytest.raises(TargetError, match=r"target.env:1: expected NAME=value"):
        load_env_file(env)


def test_the_built_in_targets_are_the_throwaway_stacks() -> None:
    assert {name: spec.backend for name, spec in BUILTIN.items()} == {"local": "local", "docker": "docker"}
    assert "deploy-checkout" in offered(BUILTIN["local"])
    assert "deploy-checkout" not in offered(BUILTIN["docker"])
    assert not {"replicas", "balancer-view"} & offered(BUILTIN["local"])
