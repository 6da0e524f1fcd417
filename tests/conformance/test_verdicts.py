"""The operator commands' shared verdicts and exit codes (conformance/verdicts.py, RB-OPS-VERDICTS)."""

from __future__ import annotations

import argparse

import pytest

from conformance.verdicts import (
    EXIT_TABLE,
    Exit,
    Health,
    Outcome,
    base_url,
    exit_code_epilog,
    health_exit,
    overall,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://staging.example/api", "https://staging.example/api"),
    ],
)
def test_an_http_url_is_kept_without_its_trailing_slash(given: str, expected: str) -> None:
    assert base_url(argparse.ArgumentParser(), given) == expected


@pytest.mark.parametrize("given", ["127.0.0.1:8000", "localhost:8000", "ftp://host", "http://", "http://h:99999"])
def test_anything_else_is_a_usage_error(given: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        base_url(argparse.ArgumentParser(), given)
    assert exited.value.code == Exit.USAGE
    assert "--base-url" in capsys.readouterr().err


def test_a_run_passes_only_when_every_part_passed() -> None:
    assert overall([Outcome.PASSED, Outcome.PASSED]) is Outcome.PASSED
    assert overall([Outcome.PASSED, Outcome.INCONCLUSIVE]) is Outcome.INCONCLUSIVE
    assert overall([Outcome.INCONCLUSIVE, Outcome.COULD_NOT_RUN]) is Outcome.COULD_NOT_RUN
    assert overall([Outcome.COULD_NOT_RUN, Outcome.FAILED, Outcome.PASSED]) is Outcome.FAILED
    assert overall([]) is Outcome.INCONCLUSIVE, "nothing checked is not a pass"


def test_degraded_exits_0_only_when_allowed() -> None:
    assert health_exit(Health.HEALTHY, degraded_allowed=False) == Exit.OK
    assert health_exit(Health.DEGRADED, degraded_allowed=True) == Exit.OK
    assert health_exit(Health.DEGRADED, degraded_allowed=False) == Exit.FAILED
    assert health_exit(Health.UNHEALTHY, degraded_allowed=True) == Exit.FAILED
    assert health_exit(Health.COULD_NOT_RUN, degraded_allowed=True) == Exit.COULD_NOT_RUN


def test_every_shared_code_is_in_the_table_and_a_command_cannot_redefine_one() -> None:
    for code in Exit:
        assert f"\n  {int(code)}  " in EXIT_TABLE
    assert "  5  its own" in exit_code_epilog({5: "its own"})
    with pytest.raises(ValueError, match="shared table"):
        exit_code_epilog({3: "something else"})
