"""Structured JSON logs with the request id and trace context on every line of a request, and secrets scrubbed
before anything is written."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from itertools import islice

import orjson

from service.request_state import current_request

# Attributes every LogRecord has; anything else passed through `extra=` becomes a JSON field.
_OWN_ATTRIBUTE_COUNT = len(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# The patterns run over every log line, and a line can carry what a client sent (its path), so each runs in
# time linear in the line: possessive runs never backtrack, a JWT starts only where a run of its characters
# starts, and a URL password cannot contain "/" (RFC 3986), so a run stops at the next "://". (The earlier
# `(://[^:/@\s]+:)[^@\s]+(@)` was quadratic on a path of "://a:" repeated: each "://" scanned to the end;
# docs/BENCHMARKS.md.)
_BEARER = re.compile(r"(?i)(bearer\s++)[A-Za-z0-9._~+/=-]++")
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*+:)[^@\s/]++(@)")
REDACTED = "[REDACTED]"


class SecretRedactor:
    """Removes known secret values, bearer tokens, anything shaped like a JWT, and URL passwords."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # Each pattern runs only where its fixed part occurs: most lines (every access line) have none, and
        # a substring test costs far less than a regex scan of the whole line.
        if "bearer" in text.lower():
            text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}\g<2>", text)
        return text


_last_second: tuple[int, str] = (-1, "")


def _timestamp(created: float, msecs: float) -> str:
    """ISO 8601 UTC with milliseconds; the part up to the second is formatted once per second."""
    global _last_second
    second = int(created)
    if _last_second[0] != second:
        _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_last_second[1]}.{int(msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, trace_id and span_id (W3C trace
    context: this server's span), and any `extra` fields."""

    def __init__(self, redactor: SecretRedactor) -> None:
        super().__init__()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _timestamp(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        state = current_request.get()
        if state is not None:
            entry["request_id"] = state.request_id
            entry["trace_id"] = state.trace.trace_id
            entry["span_id"] = state.trace.span_id
        # The `extra` fields, in the order given: a LogRecord sets its own attributes first and `extra` after
        # them, so only the attributes past its own count are looked at (this runs for every access line).
        for key, value in islice(record.__dict__.items(), _OWN_ATTRIBUTE_COUNT, None):
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        text = orjson.dumps(entry, default=str).decode()
        return self._redact(text)


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Send every logger (ours, Quart's, hypercorn's) through one JSON handler on stderr.

    The records skip what the JSON lines never show (logging HOWTO, "Optimization"): the caller's file and
    line (a walk up the stack on every call), the thread and the process; that is a third of an access
    line's cost (docs/BENCHMARKS.md)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(SecretRedactor(secrets)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("hypercorn.error", "hypercorn.access", "quart.app", "quart.serving"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
