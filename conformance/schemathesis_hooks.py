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

What the fuzzing writes is marked as the suite's own (conformance/suite_events.py): before an ingest case is
sent, each event's valid `source` becomes `rb-conformance-schemathesis` and its valid `occurred_at` a moment on
2001-01-01 (UTC), the same for the same generated value. Only valid values are replaced, by valid ones, so a
case keeps exactly the invalidity it was generated with and tests what it tested; an invalid value is left as
generated (a conforming service refuses the case and stores nothing). Without this, a run left events with
sources like `0` and years from 0013 to 8690 in the target.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

from conformance.suite_events import SCHEMATHESIS_SOURCE, in_window

INGEST_OPERATION = ("POST", "/api/v1/events")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")

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


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Mark the events an ingest case would store as the suite's own (see the module docstring)."""
    if (case.operation.method.upper(), case.operation.path) != INGEST_OPERATION or not isinstance(case.body, dict):
        return
    source_rule = _source_rule(case.operation.schema.raw_schema)
    items = case.body.get("items") if "items" in case.body else [case.body]
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            _mark(item, source_rule)


def _mark(event: dict[str, Any], source_rule: Callable[[str], bool]) -> None:
    """Replace only values that are valid already: a case keeps exactly the invalidity it was generated with
    (a negative case whose body is valid, its mutation being elsewhere, can be stored too)."""
    source, occurred_at = event.get("source"), event.get("occurred_at")
    if isinstance(source, str) and source_rule(source):
        event["source"] = SCHEMATHESIS_SOURCE
    if isinstance(occurred_at, str) and _is_timestamp(occurred_at):
        event["occurred_at"] = in_window(occurred_at)


def _source_rule(document: dict[str, Any]) -> Callable[[str], bool]:
    """The document's own rule for an event's `source` (pattern and length), so the hook never drifts from it."""
    schema = document.get("components", {}).get("schemas", {}).get("EventIn", {}).get("properties", {})
    rule = schema.get("source", {})
    pattern = re.compile(rule.get("pattern", r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"))
    shortest, longest = int(rule.get("minLength", 1)), int(rule.get("maxLength", 128))
    return lambda value: shortest <= len(value) <= longest and pattern.search(value) is not None


def _is_timestamp(value: str) -> bool:
    """RFC 3339 with an offset, in years 1-9999 after conversion to UTC (what the service accepts)."""
    if not RFC3339.fullmatch(value):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
        return moment.tzinfo is not None and 1 <= moment.astimezone(UTC).year <= 9999
    except (ValueError, OverflowError):
        return False
