"""Schemathesis hooks of RB-API-CONTRACT (`SCHEMATHESIS_HOOKS=conformance.schemathesis_hooks`).

With `--checks all`, Schemathesis also demands that every schema-valid request be accepted. The OpenAPI
document states every rule it can (bodies required, no NUL in strings, nesting depth, lengths, patterns,
ranges); a few rules are not expressible in JSON Schema, and a refusal that follows from one of them is not
a contract violation. Exactly these, and only when the answer names that rule:

- `since` earlier than `until` (and, for stats, at most 10,080 buckets between them): a rule across two or
  three parameters, stated in their descriptions;
- a timestamp whose UTC time falls outside years 1–9999 (`9999-12-31T23:00:00-05:00`): a rule across the
  date and its offset;
- the limits on an event's `attributes` as a whole — 2,000 keys and values in all, 8 levels of nesting,
  EVENT_ATTRIBUTES_MAX_BYTES of JSON: rules over a recursive structure, stated in its description (each
  container's own limits are in the schema);
- a cursor: opaque and signed, so only one this API issued is valid (RB-SEC-NO-500 asks for exactly that);
- the size of the whole body (413 `PAYLOAD_TOO_LARGE` over MAX_REQUEST_BODY_BYTES): a limit on the encoding,
  not on any value in it, documented as the operation's 413;
- a stats answer larger than LIST_PAGE_MAX_BYTES (422 `STATS_TOO_LARGE`): it depends on what is stored, not on
  the request.

Every other refusal of schema-valid data still fails the check. With `CONFORMANCE_SCHEMATHESIS_DROPPED=FILE`, each
dropped failure is appended to FILE as one line (operation, code, reason), to see what was excused.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

CROSS_FIELD_MESSAGES = (
    "`since` must be earlier than `until`",
    "buckets; at most",
    "is outside the supported range",
    "values in all",
    "levels deep",
    "bytes as compact JSON (EVENT_ATTRIBUTES_MAX_BYTES)",
)


def _problem(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except Exception:  # not JSON: never one of the exempt refusals
        return {}
    return body if isinstance(body, dict) else {}


def _only_cross_field_errors(problem: dict[str, Any]) -> bool:
    errors = problem.get("errors")
    if problem.get("code") != "VALIDATION_FAILED" or not isinstance(errors, list) or not errors:
        return False
    return all(
        isinstance(error, dict) and any(message in str(error.get("msg", "")) for message in CROSS_FIELD_MESSAGES)
        for error in errors
    )


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a schema-valid request refused for a rule JSON Schema cannot state."""
    if not isinstance(failure, RejectedPositiveData):
        return True
    problem = _problem(response)
    if problem.get("code") == "INVALID_CURSOR" and (case.query or {}).get("cursor"):
        return _dropped(case, problem, "opaque cursor")
    if problem.get("code") == "PAYLOAD_TOO_LARGE":
        return _dropped(case, problem, "body over MAX_REQUEST_BODY_BYTES")
    if problem.get("code") == "STATS_TOO_LARGE":
        return _dropped(case, problem, "stats answer over LIST_PAGE_MAX_BYTES for the stored events")
    if _only_cross_field_errors(problem):
        return _dropped(case, problem, "; ".join(str(error.get("msg")) for error in problem["errors"]))
    return True


def _dropped(case: Any, problem: dict[str, Any], reason: str) -> bool:
    log = os.environ.get("CONFORMANCE_SCHEMATHESIS_DROPPED")
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"{case.operation.label}\t{problem.get('code')}\t{reason[:200]}\n")
    return False
