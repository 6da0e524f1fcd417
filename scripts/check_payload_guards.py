"""Check the oversized-payload guards of a running deployment without writing data (RB-OPS-PAYLOAD-CHECK).

    python scripts/check_payload_guards.py --base-url http://localhost:8000 [--api-key-file PATH]

The runbook's 운영 점검 asks to confirm that an oversized request gets `413 PAYLOAD_TOO_LARGE` and that the
batch ingest limit blocks an over-limit list. This sends exactly those two requests:

  body   a body one byte over MAX_REQUEST_BODY_BYTES          → expect 413 PAYLOAD_TOO_LARGE
  batch  INGEST_MAX_BATCH_ITEMS + 1 items, under the body size → expect 413 INGEST_BATCH_TOO_LARGE

Nothing can be written even where a guard is missing: the oversized body is not JSON (a broken guard yields
400), and every batch item carries a field the API rejects (a broken batch guard yields 422). The limits are
read from /health/live (`limits`), or given with --max-body-bytes / --max-batch-items. The batch check needs
an API key (the batch guard sits behind authentication). Exit 0 when both guards hold, 1 otherwise, 2 on bad
usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conformance.secret_options import add_secret_option, parse_without_echo, secret_epilog, secret_from


@dataclass
class GuardResult:
    guard: str
    passed: bool | None  # None: could not be checked here
    detail: str
    request_id: str | None = None


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
        return None, request_id, f"{type(error).__name__}: {error}"
    return response, response.headers.get("x-request-id", request_id), ""


def check_guards(
    base_url: str, *, api_key: str | None, max_body: int | None, max_items: int | None, timeout: float
) -> list[GuardResult]:
    results: list[GuardResult] = []
    auth = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        if max_body is None or max_items is None:
            limits = client.get("/health/live").json().get("limits", {})
            max_body = max_body if max_body is not None else limits.get("max_request_body_bytes")
            max_items = max_items if max_items is not None else limits.get("ingest_max_batch_items")
        if max_body is None:
            results.append(GuardResult("body", None, "body limit unknown: pass --max-body-bytes"))
        else:
            response, request_id, error = _post(client, b"#" * (max_body + 1), auth)
            if response is None:
                results.append(GuardResult("body", False, error, request_id))
            else:
                code = _problem_code(response)
                passed = response.status_code == 413 and code == "PAYLOAD_TOO_LARGE"
                results.append(
                    GuardResult("body", passed, f"{max_body + 1} bytes → {response.status_code} {code}", request_id)
                )
        if max_items is None:
            results.append(GuardResult("batch", None, "batch limit unknown: pass --max-batch-items"))
        elif not api_key:
            results.append(GuardResult("batch", None, "needs an API key (API_KEY or --api-key-file)"))
        else:
            # `not_a_field` makes every item invalid, so a missing batch guard means 422, never a write.
            item = {
                "source": "payload-check",
                "type": "guard.check",
                "occurred_at": "2026-01-01T00:00:00Z",
                "not_a_field": True,
            }
            body = json.dumps({"items": [item] * (max_items + 1)}, separators=(",", ":")).encode()
            if max_body is not None and len(body) > max_body:
                results.append(
                    GuardResult("batch", None, f"{max_items + 1} items need {len(body)} bytes, over the body limit")
                )
            else:
                response, request_id, error = _post(client, body, auth)
                if response is None:
                    results.append(GuardResult("batch", False, error, request_id))
                else:
                    code = _problem_code(response)
                    passed = response.status_code == 413 and code == "INGEST_BATCH_TOO_LARGE"
                    detail = f"{max_items + 1} items → {response.status_code} {code}"
                    results.append(GuardResult("batch", passed, detail, request_id))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        allow_abbrev=False,
        epilog=secret_epilog("The API key", option="api-key", env="API_KEY"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base-url", required=True, help="the deployment, e.g. http://localhost:8000")
    add_secret_option(parser, "the API key", option="api-key", env="API_KEY")
    parser.add_argument("--max-body-bytes", type=int, help="MAX_REQUEST_BODY_BYTES (default: from /health/live)")
    parser.add_argument("--max-batch-items", type=int, help="INGEST_MAX_BATCH_ITEMS (default: from /health/live)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parse_without_echo(parser, argv)
    api_key = secret_from(parser, args, option="api-key", env="API_KEY")
    try:
        results = check_guards(
            args.base_url.rstrip("/"),
            api_key=api_key,
            max_body=args.max_body_bytes,
            max_items=args.max_batch_items,
            timeout=args.timeout,
        )
    except (httpx.HTTPError, ValueError) as error:
        print(f"cannot read the limits from {args.base_url}/health/live: {error}", file=sys.stderr)
        return 1
    held = all(result.passed for result in results)
    if args.json:
        print(json.dumps({"guards_hold": held, "results": [asdict(r) for r in results]}, indent=2))
    else:
        for result in results:
            mark = {True: "PASS", False: "FAIL", None: "N/A "}[result.passed]
            request = f"  request_id={result.request_id}" if result.request_id else ""
            print(f"{mark}  {result.guard:6} {result.detail}{request}")
        print("guards hold" if held else "GUARDS NOT VERIFIED")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
