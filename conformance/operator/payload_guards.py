"""Check the oversized-payload guards of a running deployment without writing data (RB-OPS-PAYLOAD-CHECK,
RB-OPS-VERDICTS).

    API_KEY=… python scripts/check_payload_guards.py --base-url http://localhost:8000   # or --api-key-file PATH

The runbook's 운영 점검 asks to confirm that an oversized request gets `413 PAYLOAD_TOO_LARGE` and that the
batch ingest limit blocks an over-limit list. This sends exactly those two requests:

  body   a body one byte over MAX_REQUEST_BODY_BYTES          → expect 413 PAYLOAD_TOO_LARGE
  batch  INGEST_MAX_BATCH_ITEMS + 1 items, under the body size → expect 413 INGEST_BATCH_TOO_LARGE

Nothing can be written even where a guard is missing: the oversized body is not JSON (a broken guard yields
400), and every batch item carries a field the API rejects (a broken batch guard yields 422). The limits are
read from /health/live (`limits`), or given with --max-body-bytes / --max-batch-items. The batch guard sits
behind authentication, so the API key is required (without one: exit 2).

Each guard, and then the whole run, is `passed`, `failed` (the deployment answered, and not with the guard's
413), `inconclusive` (the guard cannot be exercised: its limit is unknown, or an over-limit batch does not fit
under the body limit) or `could not run` (no answer, or the API key refused: the guard was never reached).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from chaos.invocation import program_name
from conformance.secret_options import add_secret_option, parse_without_echo, secret_epilog, secret_from
from conformance.tls import shared_tls_context
from conformance.verdicts import OUTCOME_EXIT, Outcome, base_url, exit_code_epilog, overall, unreachable_reason


@dataclass
class GuardResult:
    guard: str
    outcome: Outcome
    detail: str
    request_id: str | None = None

    @property
    def passed(self) -> bool | None:
        """The earlier JSON field: True / False, None when the guard could not be checked."""
        return {Outcome.PASSED: True, Outcome.FAILED: False}.get(self.outcome)


class CouldNotRun(Exception):
    """Nothing could be checked; the message says why in one line."""


def _problem_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _post(client: httpx.Client, content: bytes, headers: dict[str, str]) -> tuple[httpx.Response | None, str, str]:
    request_id = f"payload-check-{uuid.uuid4().hex[:12]}"
    try:
        response = client.post(
            "/api/v1/events",
            content=content,
            headers={"Content-Type": "application/json", "X-Request-Id": request_id, **headers},
        )
    except httpx.HTTPError as error:
        return None, request_id, unreachable_reason(error, timeout_s=client.timeout.read or 0)
    return response, response.headers.get("x-request-id", request_id), ""


def _judge(guard: str, sent: str, response: httpx.Response, request_id: str, expected_code: str) -> GuardResult:
    code = _problem_code(response)
    detail = f"{sent} → {response.status_code} {code}"
    if response.status_code == 413 and code == expected_code:
        return GuardResult(guard, Outcome.PASSED, detail, request_id)
    if response.status_code in (401, 403):
        return GuardResult(
            guard, Outcome.COULD_NOT_RUN, f"{detail}: the API key is refused, the guard was not reached", request_id
        )
    if response.status_code == 429:
        return GuardResult(guard, Outcome.COULD_NOT_RUN, f"{detail}: rate limited, try again later", request_id)
    return GuardResult(guard, Outcome.FAILED, f"{detail} (expected 413 {expected_code})", request_id)


def _limits(client: httpx.Client, base: str, timeout: float) -> dict[str, Any]:
    try:
        response = client.get("/health/live")
    except httpx.HTTPError as error:
        raise CouldNotRun(
            f"{base} does not answer /health/live: {unreachable_reason(error, timeout_s=timeout)}"
        ) from None
    try:
        limits = response.json().get("limits", {})
    except (ValueError, AttributeError):
        limits = None
    if response.status_code != 200 or not isinstance(limits, dict):
        raise CouldNotRun(
            f"{base}/health/live answered {response.status_code} without the limits: "
            "pass --max-body-bytes and --max-batch-items"
        )
    return limits


def check_guards(
    base: str, *, api_key: str, max_body: int | None, max_items: int | None, timeout: float
) -> list[GuardResult]:
    """Both guards' results; raises CouldNotRun when the deployment does not answer at all."""
    results: list[GuardResult] = []
    auth = {"X-API-Key": api_key}
    with httpx.Client(verify=shared_tls_context(), base_url=base, timeout=timeout) as client:
        if max_body is None or max_items is None:
            limits = _limits(client, base, timeout)
            max_body = max_body if max_body is not None else limits.get("max_request_body_bytes")
            max_items = max_items if max_items is not None else limits.get("ingest_max_batch_items")
        if max_body is None:
            results.append(GuardResult("body", Outcome.INCONCLUSIVE, "body limit unknown: pass --max-body-bytes"))
        else:
            response, request_id, error = _post(client, b"#" * (max_body + 1), auth)
            if response is None:
                results.append(GuardResult("body", Outcome.COULD_NOT_RUN, error, request_id))
            else:
                results.append(_judge("body", f"{max_body + 1} bytes", response, request_id, "PAYLOAD_TOO_LARGE"))
        if max_items is None:
            results.append(GuardResult("batch", Outcome.INCONCLUSIVE, "batch limit unknown: pass --max-batch-items"))
            return results
        # `not_a_field` makes every item invalid, so a missing batch guard means 422, never a write.
        item = {
            "source": "payload-check",
            "type": "guard.check",
            "occurred_at": "2026-01-01T00:00:00Z",
            "not_a_field": True,
        }
        body = json.dumps({"items": [item] * (max_items + 1)}, separators=(",", ":")).encode()
        if max_body is not None and len(body) > max_body:
            detail = f"{max_items + 1} items need {len(body)} bytes, over the body limit"
            results.append(GuardResult("batch", Outcome.INCONCLUSIVE, detail))
            return results
        response, request_id, error = _post(client, body, auth)
        if response is None:
            results.append(GuardResult("batch", Outcome.COULD_NOT_RUN, error, request_id))
        else:
            results.append(_judge("batch", f"{max_items + 1} items", response, request_id, "INGEST_BATCH_TOO_LARGE"))
    return results


SUMMARY = {
    Outcome.PASSED: "passed: both guards hold",
    Outcome.FAILED: "failed: a guard does not hold",
    Outcome.INCONCLUSIVE: "inconclusive: a guard could not be exercised",
    Outcome.COULD_NOT_RUN: "could not run: a guard was not reached",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program_name("conformance.operator.payload_guards"),
        description=__doc__,
        allow_abbrev=False,
        epilog=exit_code_epilog(extra=secret_epilog("The API key", option="api-key", env="API_KEY")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base-url", required=True, help="the deployment, e.g. http://localhost:8000")
    add_secret_option(parser, "the API key", option="api-key", env="API_KEY")
    parser.add_argument("--max-body-bytes", type=int, help="MAX_REQUEST_BODY_BYTES (default: from /health/live)")
    parser.add_argument("--max-batch-items", type=int, help="INGEST_MAX_BATCH_ITEMS (default: from /health/live)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parse_without_echo(parser, argv)
    base = base_url(parser, args.base_url)
    api_key = secret_from(parser, args, option="api-key", env="API_KEY")
    if api_key is None:
        parser.error("the batch guard sits behind authentication: set API_KEY, or use --api-key-file PATH")
    try:
        results = check_guards(
            base, api_key=api_key, max_body=args.max_body_bytes, max_items=args.max_batch_items, timeout=args.timeout
        )
    except CouldNotRun as reason:
        results, verdict, line = [], Outcome.COULD_NOT_RUN, f"could not run: {reason}; nothing was checked"
    else:
        verdict = overall([result.outcome for result in results])
        line = SUMMARY[verdict]
    code = OUTCOME_EXIT[verdict]
    if args.json:
        document = {
            "verdict": str(verdict),
            "guards_hold": verdict is Outcome.PASSED,
            "exit_code": int(code),
            "results": [{**asdict(r), "outcome": str(r.outcome), "passed": r.passed} for r in results],
        }
        if not results:
            document["reason"] = line
        print(json.dumps(document, indent=2))
    else:
        for result in results:
            request = f"  request_id={result.request_id}" if result.request_id else ""
            print(f"{str(result.outcome).upper():13} {result.guard:6} {result.detail}{request}")
        print(line)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
