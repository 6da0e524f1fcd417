"""Every bound the service puts on what a client can make it spend, in one place (README: Bounds).

Anything a client controls — the request line, headers, body size and pace, path length, cursors, the size of
what it stored — has a limit here or in `Settings`, and the limit is enforced where the input enters.

Metric labels (service/metrics.py):
- `method`: `METRIC_METHODS` (RFC 9110's methods); anything else is `OTHER` (`metric_method`,
  service/asgi_middleware.py).
- `route`: the route templates of the URL map, or `<unmatched>` (service/app.py, `route_of`).
- `status`: the statuses the service itself sends, and 499 for a client that left (service/asgi_middleware.py).
- every other label: a fixed set — dependency, rate-limit policy, backend, degraded mode, limit name, the
  running release.

Requests (hypercorn and service/asgi_middleware.py):
- request line and headers: 16 KiB (h11's `max_incomplete_event_size`), else 400/431 from hypercorn.
- header arrival: `REQUEST_HEADER_TIMEOUT_S` after the connection opened or the previous response ended, else
  the connection is closed (hypercorn's `keep_alive_timeout`, set from it by `python -m service`).
- body size: `MAX_REQUEST_BODY_BYTES`, declared or streamed, else 413 `PAYLOAD_TOO_LARGE`.
- body pace: the whole body within `REQUEST_BODY_TIMEOUT_S`, and never more than `REQUEST_BODY_GRACE_S`
  behind an average of `REQUEST_BODY_MIN_RATE_BPS`, else 408 `REQUEST_TIMEOUT` and the connection closed.
- framing: Content-Length together with Transfer-Encoding → 400 `AMBIGUOUS_FRAMING`, connection closed.
- what is still read of an upload after such an answer: `LINGER_MAX_BYTES` within `LINGER_MAX_S`.
- response delivery: a client that does not take a response within `RESPONSE_SEND_TIMEOUT_S` is disconnected.

Stored and returned data (service/events/):
- one event's `attributes`: `EVENT_ATTRIBUTES_MAX_BYTES` of compact JSON, and depth, value count and string
  length limits (schemas.py), else 422.
- a list page: `limit` ≤ 500 events and `LIST_PAGE_MAX_BYTES`; a page that would be larger ends early with a
  `next_cursor` to continue (repository.py).
- a stats answer: `MAX_STATS_BUCKETS` time buckets, and at most `LIST_PAGE_MAX_BYTES` of buckets, else 422.
- a cursor: ≤ 512 characters and HMAC-signed; one this API did not issue → 400 `INVALID_CURSOR` (cursor.py).

Answers and logs:
- validation errors listed in one problem body: `MAX_LISTED_ERRORS` (service/errors.py).
- client-supplied text in a log line (path, method): `LOG_FIELD_MAX_CHARS`; the redaction patterns run in
  linear time (service/logs.py).
- a JWT's subject: `MAX_SUBJECT_CHARS`, else 401 (service/auth.py).
"""

from __future__ import annotations

from typing import Final

# The methods of RFC 9110 (and PATCH, RFC 5789). h11 accepts any token as a method, up to its 16 KiB line
# limit; each distinct one would be a new series in every worker's metrics and in Prometheus.
METRIC_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
OTHER_METHOD: Final = "OTHER"

# Client-supplied text (path, method) is cut to this length in log lines, so a line costs the formatter and
# the redactor a bounded amount whatever the client sent.
LOG_FIELD_MAX_CHARS: Final = 1024

MAX_LISTED_ERRORS: Final = 50
MAX_SUBJECT_CHARS: Final = 256

# What one event adds to a list page beyond its attributes, at most: its other members (ids, names of ≤ 128
# ASCII characters, timestamps, the writer: a JWT subject of ≤ MAX_SUBJECT_CHARS even if every one is escaped).
EVENT_OVERHEAD_BYTES: Final = 2048
PAGE_ENVELOPE_BYTES: Final = 1024  # {"items": [...], "next_cursor": "..."}
# The most one bucket adds to a stats answer: a key of ≤ 128 ASCII characters, a timestamp, a count.
STATS_BUCKET_MAX_BYTES: Final = 256


def page_rows_budget(page_max_bytes: int, event_attributes_max_bytes: int) -> int:
    """Events are added to a list page while the ones before stay under this many bytes, so that with the last
    one (at most one event's worth) and the envelope the page stays within `page_max_bytes`."""
    return page_max_bytes - PAGE_ENVELOPE_BYTES - (event_attributes_max_bytes + EVENT_OVERHEAD_BYTES)


def metric_method(method: str) -> str:
    """The method as a metric label: one of `METRIC_METHODS`, else `OTHER`."""
    return method if method in METRIC_METHODS else OTHER_METHOD


def clipped(text: str, limit: int = LOG_FIELD_MAX_CHARS) -> str:
    """`text` cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"
