"""docker-compose.prod.yml, the Dockerfile and the CI override, read as files (RB-OPS-COMPOSE; no Docker needed).

What compose does with them for real (healthy stack, migration, refusal without secrets) is tested by
tests/docker/test_compose_prod.py on a Docker engine. Here: the structure the runbook asks for, the secrets
without defaults, ports on 127.0.0.1 only, and compose's variable interpolation applied by a small model of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos import docker_images
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.prod.yml"
CI_OVERRIDE = REPO / "chaos" / "images" / "compose.ci.yml"
DOCKERFILE = REPO / "Dockerfile"
SECRETS = ("POSTGRES_PASSWORD", "API_KEY", "JWT_SECRET")
GOOD_SECRETS = {"POSTGRES_PASSWORD": "pw0123456789", "API_KEY": "k" * 20, "JWT_SECRET": "j" * 40}


class MissingVariable(Exception):
    pass


_VARIABLE = re.compile(
    r"\$(?:\$"  # $$: a literal $
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"  # ${NAME}, ${NAME:-x}, ${NAME:?x}
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"  # $NAME
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        unset_or_empty = value is None or value == ""
        if op in (":?", "?") and (value is None or (op == ":?" and unset_or_empty)):
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and (value is None or (op == ":-" and unset_or_empty)):
            return arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def load(env: dict[str, str], *files: Path) -> dict[str, Any]:
    """The files interpolated with `env` and merged (services' mappings merged key by key, like compose)."""
    merged: dict[str, Any] = {}
    for path in files or (COMPOSE,):
        _merge(merged, yaml.safe_load(interpolate(path.read_text(), env)))
    return merged


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The file as YAML, before interpolation."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    return load(dict(GOOD_SECRETS))


def test_the_runbook_services_are_there(raw: dict[str, Any]) -> None:
    assert set(raw["services"]) == {"postgres", "redis", "migrate", "api"}
    assert raw["services"]["postgres"]["image"] == "postgres:15"
    assert raw["services"]["redis"]["image"] == "redis:7"


def test_api_and_migrate_are_built_from_the_repo_dockerfile_as_one_image(raw: dict[str, Any]) -> None:
    api, migrate = raw["services"]["api"], raw["services"]["migrate"]
    for service in (api, migrate):
        assert service["build"]["context"] == "."
        assert (REPO / service["build"].get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert api["image"] == migrate["image"]
    assert migrate["command"] == ["python", "-m", "alembic", "upgrade", "head"]
    assert migrate["restart"] == "no"


def test_startup_order_waits_for_health_and_the_migration(raw: dict[str, Any]) -> None:
    services = raw["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["api"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    for name in ("postgres", "redis", "api"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert not check.get("disable"), name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "/health/live" in " ".join(services["api"]["healthcheck"]["test"])


def test_secrets_are_required_and_have_no_default_anywhere() -> None:
    text = COMPOSE.read_text()
    for name in SECRETS:
        references = re.findall(rf"\$\{{{name}([^}}]*)\}}", text)
        assert references, f"{name} is not used"
        assert all(reference.startswith(":?") for reference in references), (name, references)
        assert not re.search(rf"\${name}\b", text), f"${name} without braces cannot be required"
    rendered = load(dict(GOOD_SECRETS))
    api_env = rendered["services"]["api"]["environment"]
    assert api_env["API_KEY"] == GOOD_SECRETS["API_KEY"]
    assert api_env["JWT_SECRET"] == GOOD_SECRETS["JWT_SECRET"]
    assert rendered["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == GOOD_SECRETS["POSTGRES_PASSWORD"]
    for service in ("api", "migrate"):
        url = rendered["services"][service]["environment"]["DATABASE_URL"]
        assert url == f"postgresql://events:{GOOD_SECRETS['POSTGRES_PASSWORD']}@postgres:5432/events"


@pytest.mark.parametrize("missing", SECRETS)
@pytest.mark.parametrize("how", ["unset", "empty"])
def test_interpolation_refuses_without_each_secret(missing: str, how: str) -> None:
    env = dict(GOOD_SECRETS)
    if how == "unset":
        del env[missing]
    else:
        env[missing] = ""
    with pytest.raises(MissingVariable, match=rf"^{missing}: {missing} is required"):
        load(env)


def test_only_the_api_is_published_and_only_on_loopback(rendered: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in rendered["services"].items()}
    assert {name for name, ports in published.items() if ports} == {"api"}
    for port in published["api"]:
        assert isinstance(port, str)
        assert port.startswith("127.0.0.1:"), port
    assert published["api"] == ["127.0.0.1:8000:8000"]
    assert load({**GOOD_SECRETS, "API_PORT": "18080"})["services"]["api"]["ports"] == ["127.0.0.1:18080:8000"]


def test_the_database_and_redis_sit_on_an_internal_network(rendered: dict[str, Any]) -> None:
    assert rendered["networks"]["backend"] == {"internal": True}
    for name in ("postgres", "redis", "migrate"):
        assert rendered["services"][name]["networks"] == ["backend"], name
    assert set(rendered["services"]["api"]["networks"]) == {"backend", "edge"}


def test_the_api_container_is_locked_down(rendered: dict[str, Any]) -> None:
    api = rendered["services"]["api"]
    assert api["read_only"] is True
    assert api["tmpfs"] == ["/tmp"]  # noqa: S108 - the container's own /tmp (multiprocess metrics)
    assert api["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in api["security_opt"]
    # drain (DRAIN_DELAY_S) + hypercorn's graceful_timeout must fit before compose's SIGKILL
    assert int(api["stop_grace_period"].removesuffix("s")) >= 2 + 10


def test_optional_settings_default_to_the_service_defaults(raw: dict[str, Any]) -> None:
    api_env: dict[str, str] = raw["services"]["api"]["environment"]
    defaults = 0
    for name, value in api_env.items():
        match = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", str(value))
        if not match:
            continue
        assert match.group(1) == name
        field = Settings.model_fields[name.lower()]
        assert type(field.default)(match.group(2)) == field.default, name
        defaults += 1
    assert defaults >= 4


def test_the_dockerfile_builds_a_slim_non_root_service_image() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    keywords = [parts[0] for parts in instructions]
    assert instructions[0] == ["ARG", "BASE_IMAGE=python:3.11-slim"]
    assert instructions[1] == ["FROM", "${BASE_IMAGE}"]
    assert keywords.count("FROM") == 1
    user = next(parts[1] for parts in instructions if parts[0] == "USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") > max(i for i, keyword in enumerate(keywords) if keyword == "RUN")
    assert re.search(r"HEALTHCHECK .*\n?.*/health/live", text)
    cmd = next(parts[1] for parts in instructions if parts[0] == "CMD")
    assert cmd == '["python", "-m", "service", "--bind", "0.0.0.0:8000"]'
    assert ["EXPOSE", "8000"] in instructions


def test_the_build_context_leaves_out_the_checkout_clutter() -> None:
    rules = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"  # an allowlist: nothing goes in unless named
    allowed = {rule.removeprefix("!").rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set(re.findall(r"^COPY (\S+(?: \S+)*) \S+$", DOCKERFILE.read_text(), re.MULTILINE))
    sources = {source for line in copied for source in line.split()}
    assert sources <= allowed, sources - allowed
    assert not allowed & {".venv", ".git", "tests", "reports"}


def test_the_ci_override_only_swaps_in_the_local_images() -> None:
    override: dict[str, Any] = yaml.safe_load(CI_OVERRIDE.read_text())
    production = yaml.safe_load(COMPOSE.read_text())
    assert set(override) == {"services"}
    assert set(override["services"]) <= set(production["services"])
    assert override["services"]["postgres"] == {"image": docker_images.IMAGES["postgres"].local}
    assert override["services"]["redis"] == {"image": docker_images.IMAGES["redis"].local}
    for name in ("api", "migrate"):
        assert override["services"][name] == {"build": {"args": {"BASE_IMAGE": docker_images.IMAGES["python"].local}}}
    merged = load(dict(GOOD_SECRETS), COMPOSE, CI_OVERRIDE)
    assert merged["services"]["api"]["build"] == {
        "context": ".",
        "dockerfile": "Dockerfile",
        "args": {"BASE_IMAGE": docker_images.IMAGES["python"].local},
    }
    assert merged["services"]["api"]["ports"] == ["127.0.0.1:8000:8000"]


def test_image_choice_prefers_what_the_engine_has() -> None:
    postgres = docker_images.IMAGES["postgres"]
    assert docker_images.resolve("postgres", lambda image: True) == postgres.public
    assert docker_images.resolve("postgres", lambda image: image == postgres.local) == postgres.local
    assert docker_images.resolve("postgres", lambda image: False) == postgres.public  # pulled where possible
    assert not docker_images.available("postgres", lambda image: False)
