"""The part of Schemathesis' console output that says why a run failed (RB-API-CONTRACT's message)."""

from __future__ import annotations

import re

SECTION = re.compile(r"=+ (ERRORS|FAILURES) =+")
SHOWN_LINES = 80
SHOWN_LINE_CHARACTERS = 300
TAIL_LINES = 40


def failures_section(output: str) -> str:
    """Schemathesis' ERRORS and FAILURES sections, up to its SUMMARY (or its last lines when it has neither),
    each line cut short: a failing case can carry a body of megabytes. An error (a refused connection, a
    timeout, a case that could not be generated) fails a run as a failure does, and its cause is only in the
    ERRORS section, which comes first."""
    lines = output.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if SECTION.fullmatch(line.strip())), max(0, len(lines) - TAIL_LINES)
    )
    end = next((i for i, line in enumerate(lines) if i > start and "SUMMARY" in line), len(lines))
    return "\n".join(line[:SHOWN_LINE_CHARACTERS] for line in lines[start:end][:SHOWN_LINES])
