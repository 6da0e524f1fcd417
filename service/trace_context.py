"""W3C Trace Context (Level 1, https://www.w3.org/TR/trace-context/): read `traceparent`/`tracestate`, start
this server's span, and format the `traceparent` that names it.

The service records no spans itself; it joins the caller's trace so that its log lines (`trace_id`,
`span_id`) and its answers can be found from a tracing system, beside the runbook's `X-Request-Id`.

What comes in is a client's text, so nothing here raises: a header that is not a valid traceparent starts a
new trace (the spec's "restart the trace"), and then `tracestate` is not even read (the spec: a vendor that
failed to parse traceparent MUST NOT parse tracestate). Every input is bounded before it is scanned, and the
patterns run in time linear in that bound.

- version 00: exactly `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>` (55 characters, lowercase hex);
- a higher version (not `ff`, which is forbidden): the version 00 fields are read from the first 55
  characters, which must be followed by the end or by `-` (the spec's rules for versions it does not know);
- an all-zero trace-id or parent-id is invalid;
- flags: only `sampled` (bit 0) is defined in Level 1, and the other bits are sent as 0;
- tracestate: up to 32 `key=value` members in at most 512 characters (the combined header, commas and
  whitespace included), keys unique, grammar as in the spec; otherwise it is dropped whole. Kept, it goes on
  unchanged apart from empty members and whitespace around members, which the spec lets a vendor remove.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

VERSION = "00"
SAMPLED = 0x01
TRACEPARENT_V00_LENGTH = 55
# A future version may append fields; nothing past the version 00 part is read, but the header is bounded so
# that a huge one costs no more than a short one (a length test).
TRACEPARENT_MAX_BYTES = 512
TRACESTATE_MAX_CHARS = 512
TRACESTATE_MAX_MEMBERS = 32
_OWS = b" \t"
_INVALID_TRACE_ID = "0" * 32
_INVALID_SPAN_ID = "0" * 16

_TRACEPARENT = re.compile(rb"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
# tracestate list-member (Level 1 §3.3.1.3): simple-key or tenant@system key, "=", value of printable ASCII
# without "," and "=", not ending in a space.
_KEY_CHARS = rb"[a-z0-9_\-*/]"
_TRACESTATE_MEMBER = re.compile(
    rb"(?P<key>[a-z]" + _KEY_CHARS + rb"{0,255}|[a-z0-9]" + _KEY_CHARS + rb"{0,240}@[a-z]" + _KEY_CHARS + rb"{0,13})"
    rb"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)


@dataclass(frozen=True, slots=True)
class Parent:
    """A valid incoming traceparent: the caller's trace and span."""

    trace_id: str
    parent_id: str
    flags: int


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The trace this request belongs to and this server's span in it."""

    trace_id: str
    span_id: str
    flags: int = 0
    parent_id: str | None = None  # the caller's span, when a valid traceparent came in
    tracestate: str | None = None  # passed on as it came (validated), never logged: it is vendors' data

    @property
    def traceparent(self) -> str:
        """This server's span, as the `traceparent` a callee (or the caller, on the response) reads."""
        return f"{VERSION}-{self.trace_id}-{self.span_id}-{self.flags:02x}"


def new_trace_id() -> str:
    trace_id = os.urandom(16).hex()
    while trace_id == _INVALID_TRACE_ID:  # 2**-128: only so that the invariant holds without exception
        trace_id = os.urandom(16).hex()
    return trace_id


def new_span_id() -> str:
    span_id = os.urandom(8).hex()
    while span_id == _INVALID_SPAN_ID:
        span_id = os.urandom(8).hex()
    return span_id


def parse_traceparent(value: bytes | None) -> Parent | None:
    """The caller's trace from one `traceparent` header value; None when it is absent or invalid."""
    if value is None or len(value) > TRACEPARENT_MAX_BYTES:
        return None
    value = value.strip(_OWS)
    if _TRACEPARENT.match(value) is None:
        return None
    # Matched: the first 55 bytes are ASCII, at fixed offsets (one decode, then slices).
    text = value[:TRACEPARENT_V00_LENGTH].decode("ascii")
    version, trace_id, parent_id = text[0:2], text[3:35], text[36:52]
    if version == VERSION:
        if len(value) != TRACEPARENT_V00_LENGTH:
            return None
    elif version == "ff" or (len(value) > TRACEPARENT_V00_LENGTH and value[TRACEPARENT_V00_LENGTH] != ord("-")):
        return None
    if trace_id == _INVALID_TRACE_ID or parent_id == _INVALID_SPAN_ID:
        return None
    return Parent(trace_id=trace_id, parent_id=parent_id, flags=int(text[53:55], 16) & SAMPLED)


def parse_tracestate(values: Sequence[bytes]) -> str | None:
    """The combined `tracestate` (every header of that name, in order) if valid and within bounds, else None."""
    if not values or sum(len(value) for value in values) + len(values) - 1 > TRACESTATE_MAX_CHARS:
        return None
    members: list[bytes] = []
    keys: set[bytes] = set()
    for value in values:
        for raw in value.split(b","):
            member = raw.strip(_OWS)
            if not member:
                continue  # empty members are allowed, and need not be passed on
            match = _TRACESTATE_MEMBER.fullmatch(member)
            if match is None or match["key"] in keys:
                return None
            keys.add(match["key"])
            members.append(member)
            if len(members) > TRACESTATE_MAX_MEMBERS:
                return None
    return b",".join(members).decode("ascii") if members else None


def continue_or_start(traceparents: Sequence[bytes], tracestates: Sequence[bytes]) -> TraceContext:
    """Join the caller's trace when exactly one valid traceparent came in; otherwise start a new trace."""
    # Two traceparent headers cannot both be right (combined, they would not parse either): a new trace.
    parent = parse_traceparent(traceparents[0]) if len(traceparents) == 1 else None
    if parent is None:
        return TraceContext(trace_id=new_trace_id(), span_id=new_span_id())
    return TraceContext(
        trace_id=parent.trace_id,
        span_id=new_span_id(),
        flags=parent.flags,
        parent_id=parent.parent_id,
        tracestate=parse_tracestate(tracestates),
    )
