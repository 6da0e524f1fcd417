"""Log redaction and id generation."""

from __future__ import annotations

import uuid

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
