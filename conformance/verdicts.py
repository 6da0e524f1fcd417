"""The operator commands' one verdict vocabulary and one table of exit codes (RB-OPS-VERDICTS).

Every command in scripts/ that checks something ends with one verdict line and the exit code of this table,
so that a shell, a CI job or an on-call engineer reads every command the same way. README.md ("Exit codes")
shows the same table; `exit_code_epilog` prints it in each command's `--help`.

Health (scripts/check_runtime_health.py) answers HEALTHY / DEGRADED / UNHEALTHY; a check of one property
(payload guards, a rollback's safety, a perf gate) answers passed / failed / inconclusive. Any command that
could not reach its target, or was not let in where the credentials are only its means to look, answers
"could not run": it says nothing about the target's health, and nothing was changed. A run stopped before its
verdict (Ctrl-C, SIGTERM, a game-day drill's abort condition) answers "aborted": what it changed was rolled back,
and what ran is reported. The harnesses (conformance, drills, perf gates) use the same codes.
"""

from __future__ import annotations

import argparse
import enum
import textwrap
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx


class Exit(enum.IntEnum):
    """The exit codes every operator command shares."""

    OK = 0  # HEALTHY / passed; also DEGRADED when --allow-ready-degraded allows it (every failing scope named)
    FAILED = 1  # UNHEALTHY / failed: the target answered and a check failed (or the action was refused)
    USAGE = 2  # bad arguments or configuration: unknown option, URL without a scheme, missing key or file
    COULD_NOT_RUN = 3  # nothing was checked or changed: target or database unreachable, its credentials refused
    INCONCLUSIVE = 4  # the command ran but its measurements cannot decide (e.g. a guard it cannot exercise)
    ABORTED = 5  # stopped before its verdict (Ctrl-C, SIGTERM, an abort condition); rolled back; what ran reported


# Codes 6 and up belong to one command, which lists them in its --help (check_migration_rollback.py: 6).
FIRST_COMMAND_SPECIFIC = 6


class Health(enum.StrEnum):
    """The verdict of a health check."""

    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"  # failing scopes, all of them allowed in degraded mode: exit 0 only when allowed
    UNHEALTHY = "UNHEALTHY"
    COULD_NOT_RUN = "COULD NOT RUN"


class Outcome(enum.StrEnum):
    """The verdict of a check of one property."""

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    COULD_NOT_RUN = "could not run"
    ABORTED = "aborted"


OUTCOME_EXIT: Mapping[Outcome, Exit] = {
    Outcome.PASSED: Exit.OK,
    Outcome.FAILED: Exit.FAILED,
    Outcome.INCONCLUSIVE: Exit.INCONCLUSIVE,
    Outcome.COULD_NOT_RUN: Exit.COULD_NOT_RUN,
    Outcome.ABORTED: Exit.ABORTED,
}

# When the parts of one run disagree, the overall outcome is the first of these that any part has: a failed
# guard is news whatever else happened; "aborted" next, since the run was stopped before it could say more;
# "could not run" beats "inconclusive" because it has a cause to fix.
_SEVERITY = (Outcome.FAILED, Outcome.ABORTED, Outcome.COULD_NOT_RUN, Outcome.INCONCLUSIVE, Outcome.PASSED)


def overall(outcomes: list[Outcome]) -> Outcome:
    """The outcome of a run made of several checks (passed only when every one passed)."""
    for outcome in _SEVERITY:
        if outcome in outcomes:
            return outcome
    return Outcome.INCONCLUSIVE  # nothing was checked at all


def health_exit(verdict: Health, *, degraded_allowed: bool) -> Exit:
    if verdict is Health.HEALTHY or (verdict is Health.DEGRADED and degraded_allowed):
        return Exit.OK
    if verdict is Health.COULD_NOT_RUN:
        return Exit.COULD_NOT_RUN
    return Exit.FAILED


EXIT_TABLE = """\
Exit status (the same for every command, operator and harness alike; README.md, "Exit codes"):
  0  HEALTHY / passed; DEGRADED only with --allow-ready-degraded, and every failing scope is named
  1  UNHEALTHY / failed: the target answered and a check failed (or the action was refused)
  2  usage or configuration error: bad arguments, a URL without a scheme, a missing key or secret file
  3  could not run: nothing was checked or changed: the target or its database is unreachable, or refuses
     the credentials the command only uses to get in (a database password; an API key where the API is not
     what is checked; the health check's `auth` scope checks the key, so a refused key there is 1)
  4  inconclusive: it ran, but what it saw cannot decide
  5  aborted: stopped before its verdict (Ctrl-C, SIGTERM, or a drill's abort condition); what it changed was
     rolled back; what ran is reported"""


def exit_code_epilog(command_specific: Mapping[int, str] | None = None, *, extra: str = "") -> str:
    """The table for a command's --help, with the codes only this command uses (6 and up) after it."""
    lines = [EXIT_TABLE]
    for code, meaning in sorted((command_specific or {}).items()):
        if code < FIRST_COMMAND_SPECIFIC:
            raise ValueError(
                f"exit code {code} is in the shared table; a command's own codes start at {FIRST_COMMAND_SPECIFIC}"
            )
        lines.append(textwrap.fill(meaning, width=110, initial_indent=f"  {code}  ", subsequent_indent=" " * 5))
    text = "\n".join(lines)
    return f"{extra}\n\n{text}" if extra else text


def base_url(parser: argparse.ArgumentParser, value: str) -> str:
    """`--base-url` as given, without a trailing slash; anything but http(s)://host[:port][/path] is a usage
    error (exit 2): `localhost:8000` parses as scheme `localhost`, and would otherwise fail as "unreachable"."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        parser.error(
            f"--base-url {value!r} is not an http(s) URL with a host: write the scheme, e.g. http://127.0.0.1:8000"
        )
    try:
        parts.port  # noqa: B018 - validates the port; urlsplit parses lazily
    except ValueError as error:
        parser.error(f"--base-url {value!r}: {error}")
    return value.rstrip("/")


def unreachable_reason(error: httpx.HTTPError, *, timeout_s: float) -> str:
    """Why a request got no answer, in words an operator acts on (no traceback)."""
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout_s:g} s ({type(error).__name__})"
    if isinstance(error, httpx.ConnectError):
        cause = str(error) or type(error).__name__
        return f"cannot connect ({cause})"
    return f"{type(error).__name__}: {error}"
