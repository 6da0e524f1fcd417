"""What RB-API-CONTRACT's check shows when Schemathesis fails: the cause, whether a failure or an error.

A CI run failed on a Schemathesis *error* (no failure) and the message showed only the warnings and the
summary's head, not the error: the section was looked for by "FAILURES" alone and the last 40 lines shown
instead. The output below has the shape of that run's (Schemathesis 4.32), the traceback shortened.
"""

from __future__ import annotations

from conformance.schemathesis_output import failures_section

TRACEBACK = [f'      File "hypothesis/internal/frame_{n}.py", line {n}, in draw' for n in range(60)]

ERROR_RUN = "\n".join(
    [
        "Schemathesis v4.32.5",
        " 🚫  Fuzzing (in 4.08s)",
        "     ✅ 6 passed  🚫 1 error",
        "==================================== ERRORS ====================================",
        "______________________________ GET /api/v1/events ______________________________",
        "Runtime Error",
        "",
        "AST constructor recursion depth mismatch (before=216, after=199)",
        "",
        "    Traceback (most recent call last):",
        *TRACEBACK,
        "    SystemError: AST constructor recursion depth mismatch (before=216, after=199)",
        "",
        "Need more help?",
        "    Join our Discord server: https://discord.gg/R9ASRAmHnA",
        "",
        "=================================== WARNINGS ===================================",
        "",
        "Schema validation mismatch: 1 operation mostly rejected generated data due to validation errors",
        "",
        "  - GET /api/v1/events/stats",
        "",
        "=================================== SUMMARY ====================================",
        "",
        *[f"  summary line {n}" for n in range(28)],
        "Seed: 325594396915135094318521075527808504025",
        "",
        "========================= 1 error, 1 warning in 14.72s =========================",
    ]
)


def test_an_error_run_shows_the_error() -> None:
    shown = failures_section(ERROR_RUN)
    assert shown.startswith("=" * 36 + " ERRORS")
    assert "GET /api/v1/events" in shown
    assert "AST constructor recursion depth mismatch" in shown


def test_a_failing_run_shows_its_failures_and_not_the_summary() -> None:
    run = ERROR_RUN.replace(" ERRORS ", " FAILURES ").replace("Runtime Error", "Server error")
    shown = failures_section(run)
    assert "Server error" in shown
    assert "SUMMARY" not in shown
    assert "Seed:" not in shown


def test_every_shown_line_is_cut_short() -> None:
    run = ERROR_RUN.replace("Runtime Error", "Runtime Error " + "x" * 5_000_000)
    assert max(len(line) for line in failures_section(run).splitlines()) <= 300
