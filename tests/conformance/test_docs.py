"""RB-OPS-QUALITY-GATES and RB-OPS-CHANGELOG, and the operator documents' promise that every command they
name exists and runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.gates import render_markdown
from conformance.registry import load_registry

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
COMMAND_DOCS = ("RUNBOOK.md", "QUALITY_GATES.md")


def inline_commands(text: str) -> list[str]:
    """Inline code spans that are commands: python …, .venv/bin/…, make …, VAR=… python …"""
    spans = re.findall(r"`([^`\n]+)`", text)
    pattern = re.compile(r"^(?:[A-Z_]+=\S+ )*(?:python|\.venv/bin/\S+|make) ")
    return sorted({span for span in spans if pattern.match(span)})


def test_quality_gates_doc_is_generated_from_the_registry() -> None:
    expected = render_markdown(load_registry().gates)
    actual = (DOCS / "QUALITY_GATES.md").read_text(encoding="utf-8")
    assert actual == expected, "regenerate with: .venv/bin/python -m conformance.gates docs > docs/QUALITY_GATES.md"


def test_changelog_keeps_an_unreleased_section() -> None:
    text = (DOCS / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    assert "Keep a Changelog" in text


def test_runbook_keeps_the_original_structure_in_korean() -> None:
    text = (DOCS / "RUNBOOK.md").read_text(encoding="utf-8")
    for heading in (
        "## 목표",
        "## 심각도 수준",
        "## 인시던트 대응 체크리스트",
        "## 인시던트 시나리오 템플릿",
        "## SEV 보고 형식",
        "## 롤백 전략",
        "## 운영 점검",
        "### DB 장애 템플릿",
        "### Redis/rate_limit_backend 장애 템플릿",
        "### 배포/릴리스 장애 템플릿",
        "### 과부하(트래픽 급증) 템플릿",
    ):
        assert heading in text, heading
    assert (
        "BENCH_PROFILE=staging BENCH_FAIL_THRESHOLD_MS=250 BENCH_FAIL_P95_THRESHOLD_MS=400 python "
        "scripts/benchmark_queries.py" in text
    )


def _makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE))


def _check_command(command: str) -> None:
    if " && " in command:  # a one-liner: every part must work
        for part in command.split(" && "):
            _check_command(part)
        return
    words = shlex.split(command)
    if words[0] == ".":  # sourcing the virtualenv that `make setup` creates
        assert words[1:] == [".venv/bin/activate"], command
        assert "setup" in _makefile_targets(), command
        return
    while words and re.fullmatch(r"[A-Z_]+=\S+", words[0]):
        words = words[1:]
    if words[0] == "make":
        missing = [target for target in words[1:] if target not in _makefile_targets()]
        assert not missing, f"{command}: no Makefile target {missing}"
        return
    if words[0] == "python" or words[0].endswith("/python"):
        if words[1] == "-m":
            module = words[2]
            if module == "alembic":
                args = [sys.executable, "-m", "alembic", "--help"]
            else:
                args = [sys.executable, "-m", module, *[w for w in words[3:4] if not w.startswith("-")], "--help"]
        else:
            script = REPO / words[1]
            assert script.exists(), f"{command}: {words[1]} does not exist"
            args = [sys.executable, str(script), "--help"]
        result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"{command}: `{' '.join(args[1:])}` failed: {result.stderr[-500:]}"
        return
    if words[0].startswith(".venv/bin/"):
        assert (REPO / words[0]).exists() or words[0].endswith(("/pytest", "/python")), command
        return
    raise AssertionError(f"unrecognised command {command!r}")


@pytest.mark.parametrize("document", COMMAND_DOCS)
def test_every_command_in_the_operator_documents_exists_and_runs(document: str) -> None:
    commands = inline_commands((DOCS / document).read_text(encoding="utf-8"))
    assert commands, f"{document} names no command"
    for command in commands:
        _check_command(command)


SECRET_ON_ARGV = re.compile(r"--(?:api-key|database-url)(?:[ =](?!-))")


@pytest.mark.parametrize("document", COMMAND_DOCS)
def test_no_documented_command_puts_a_secret_on_the_command_line(document: str) -> None:
    for command in inline_commands((DOCS / document).read_text(encoding="utf-8")):
        assert not SECRET_ON_ARGV.search(command + " "), f"{command}: use the env var or the -file option"


def test_runbook_says_where_operator_secrets_come_from_and_how_the_rollback_runs() -> None:
    text = (DOCS / "RUNBOOK.md").read_text(encoding="utf-8")
    for flag in ("--api-key-file", "--database-url-file", "$API_KEY", "export API_KEY="):
        assert flag in text, flag
    assert "`python -m alembic downgrade -1`" in text, "what operators read stays the runbook's command"
    assert "`alembic downgrade <down_revision>`" in text, "... and the explicit form the tool runs is named"
    assert "종료 코드 3" in text, "the refusal when the revision changed is documented"
