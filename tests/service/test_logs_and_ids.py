"""Log redaction and id generation."""

from __future__ import annotations

import uuid

from service.bounds import LOG_FIELD_MAX_CHARS, clipped, metric_method
from service.ids import uuid7
from service.logs import REDACTED, SecretRedactor


def test_redactor_removes_known_secrets_tokens_and_url_passwords() -> None:
    redact = SecretRedactor(["hunter2-long-secret"])
    text = redact(
        "key=hunter2-long-secret auth='Bearer abc.def-ghi' url=postgresql://u:p4ss@h:5432/d "
        "jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    )
    assert "hunter2" not in text
    assert "abc.def-ghi" not in text
    assert "p4ss" not in text
    assert "eyJ" not in text
    assert text.count(REDACTED) == 4
    assert "postgresql://u:" in text  # the user stays: it helps triage and is not a secret


def test_uuid7_is_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(200)]
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in ids)
    millis = [value.int >> 80 for value in ids]
    assert millis == sorted(millis)
    assert len(set(ids)) == len(ids)


def test_redaction_still_finds_secrets_among_crafted_repetitions() -> None:
    """The linear patterns (no backtracking) redact what the old ones did, around input built to defeat them."""
    redact = SecretRedactor()
    crafted = "://a:" * 50 + " redis://:pw-one@cache " + "eyJ" * 50 + " eyJa.eyJb.c " + "bearer " * 20 + "Bearer tok3n"
    text = redact(crafted)
    assert "pw-one" not in text
    assert "eyJa.eyJb.c" not in text
    assert "tok3n" not in text
    assert text.startswith("://a:" * 50), "text that is not a secret is left alone"


def test_client_text_in_log_lines_is_clipped() -> None:
    assert clipped("a" * 100) == "a" * 100
    long = clipped("/" + "x" * 20_000)
    assert len(long) < LOG_FIELD_MAX_CHARS + 30
    assert long.endswith(f"…(+{20_001 - LOG_FIELD_MAX_CHARS} chars)")
    assert metric_method("GET") == "GET"
    assert metric_method("get") == "OTHER"  # methods are case-sensitive (RFC 9110)
    assert metric_method("X" * 16_000) == "OTHER"
