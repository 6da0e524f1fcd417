"""The W3C Trace Context parser (service/trace_context.py) on its own: what it accepts, what makes it start a
new trace, and that no input, however hostile, makes it raise."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.trace_context import (
    TRACESTATE_MAX_CHARS,
    TRACESTATE_MAX_MEMBERS,
    Parent,
    TraceContext,
    continue_or_start,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    parse_tracestate,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01".encode()
V00 = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]")


def test_a_valid_version_00_header_is_read() -> None:
    assert parse_traceparent(VALID) == Parent(trace_id=TRACE_ID, parent_id=PARENT_ID, flags=1)
    assert parse_traceparent(f"00-{TRACE_ID}-{PARENT_ID}-00".encode()) == Parent(TRACE_ID, PARENT_ID, 0)


def test_whitespace_around_the_value_is_ignored() -> None:
    assert parse_traceparent(b" \t" + VALID + b"\t ") == Parent(TRACE_ID, PARENT_ID, 1)


def test_only_the_sampled_flag_is_kept() -> None:
    """Level 1 defines bit 0 only; a vendor sends the others as 0."""
    assert parse_traceparent(f"00-{TRACE_ID}-{PARENT_ID}-ff".encode()) == Parent(TRACE_ID, PARENT_ID, 1)
    assert parse_traceparent(f"00-{TRACE_ID}-{PARENT_ID}-02".encode()) == Parent(TRACE_ID, PARENT_ID, 0)


@pytest.mark.parametrize(
    "value",
    [
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # uppercase hex
        f"00-{TRACE_ID}-{PARENT_ID.upper()}-01",
        f"00-{TRACE_ID}-{PARENT_ID}-0A",
        f"0A-{TRACE_ID}-{PARENT_ID}-01",
        f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01",  # wrong lengths
        f"00-{TRACE_ID}0-{PARENT_ID}-01",
        f"00-{TRACE_ID}-{PARENT_ID[:-1]}-01",
        f"00-{TRACE_ID}-{PARENT_ID}0-01",
        f"00-{TRACE_ID}-{PARENT_ID}-1",
        f"00-{TRACE_ID}-{PARENT_ID}-011",
        f"0-{TRACE_ID}-{PARENT_ID}-01",
        f"000-{TRACE_ID}-{PARENT_ID}-01",
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID}-{PARENT_ID}",
        f"00_{TRACE_ID}_{PARENT_ID}_01",  # wrong separators
        f"00-{TRACE_ID}-{PARENT_ID}-01\n",
        f"00-{TRACE_ID}-{PARENT_ID}-01,00-{TRACE_ID}-{PARENT_ID}-01",  # two values folded into one header
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero ids
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # version ff is forbidden
        f"ff-{TRACE_ID}-{PARENT_ID}-01-future",
        f"00-{TRACE_ID[:-1]}g-{PARENT_ID}-01",  # not hex
        f"00-{TRACE_ID}-{PARENT_ID[:-2]}-0-01",
        "",
        "-",
        "00",
    ],
)
def test_an_invalid_header_is_not_read(value: str) -> None:
    assert parse_traceparent(value.encode()) is None


@pytest.mark.parametrize(
    "raw",
    [
        ("00-" + "é" * 32 + f"-{PARENT_ID}-01").encode(),  # UTF-8 in place of hex
        ("00-" + "４" * 32 + f"-{PARENT_ID}-01").encode(),  # full-width digits: digits to str.isdigit, not hex
        ("00-" + "٤" * 32 + f"-{PARENT_ID}-01").encode(),  # Arabic-Indic digits, which `\d` on str would take
        ("00-" + TRACE_ID[:31] + "\u0430" + f"-{PARENT_ID}-01").encode(),  # Cyrillic "а" where "a" belongs
        VALID.replace(b"-", b"\x00"),
        b"\xff" * 55,
        b"00-" + b"a" * 1_000_000,  # huge
        VALID + b"-" + b"x" * 1_000_000,  # a valid start, then a megabyte: over the length bound
        (f"cc-{TRACE_ID}-{PARENT_ID}-01-" + "x" * 600).encode(),
    ],
)
def test_hostile_headers_start_a_new_trace(raw: bytes) -> None:
    assert parse_traceparent(raw) is None
    context = continue_or_start([raw], [b"vendor=kept"])
    assert context.trace_id != TRACE_ID
    assert context.parent_id is None
    assert context.tracestate is None  # not read once the traceparent failed


def test_a_higher_version_is_read_by_the_version_00_rules() -> None:
    """The spec: read the 00 fields from the first 55 characters, then require the end or a dash."""
    assert parse_traceparent(f"cc-{TRACE_ID}-{PARENT_ID}-01".encode()) == Parent(TRACE_ID, PARENT_ID, 1)
    assert parse_traceparent(f"cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-holds".encode()) == Parent(
        TRACE_ID, PARENT_ID, 1
    )
    assert parse_traceparent(f"01-{TRACE_ID}-{PARENT_ID}-00-".encode()) == Parent(TRACE_ID, PARENT_ID, 0)
    assert parse_traceparent(f"cc-{TRACE_ID}-{PARENT_ID}-01.what".encode()) is None
    assert parse_traceparent(f"cc-{TRACE_ID}-{PARENT_ID}-0".encode()) is None  # shorter than 55
    assert parse_traceparent(f"cc-{TRACE_ID}-{'0' * 16}-01".encode()) is None


def test_a_valid_caller_keeps_its_trace_and_gets_a_new_span() -> None:
    context = continue_or_start([VALID], [b"rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"])
    assert context.trace_id == TRACE_ID
    assert context.parent_id == PARENT_ID
    assert context.span_id not in (PARENT_ID, "0" * 16)
    assert re.fullmatch(r"[0-9a-f]{16}", context.span_id)
    assert context.flags == 1
    assert context.traceparent == f"00-{TRACE_ID}-{context.span_id}-01"
    assert context.tracestate == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def test_a_higher_version_is_answered_as_version_00() -> None:
    context = continue_or_start([f"cc-{TRACE_ID}-{PARENT_ID}-01-more".encode()], [])
    assert context.traceparent == f"00-{TRACE_ID}-{context.span_id}-01"


@pytest.mark.parametrize("traceparents", [[], [b"garbage"], [VALID, VALID]], ids=["absent", "invalid", "twice"])
def test_otherwise_a_new_unsampled_trace_starts(traceparents: list[bytes]) -> None:
    context = continue_or_start(traceparents, [b"vendor=value"])
    assert V00.fullmatch(context.traceparent)
    assert context.trace_id != TRACE_ID
    assert (context.flags, context.parent_id, context.tracestate) == (0, None, None)


def test_new_ids_are_lowercase_hex_nonzero_and_distinct() -> None:
    trace_ids = {new_trace_id() for _ in range(1000)}
    span_ids = {new_span_id() for _ in range(1000)}
    assert len(trace_ids) == len(span_ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) and value != "0" * 32 for value in trace_ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", value) and value != "0" * 16 for value in span_ids)


# -- tracestate ----------------------------------------------------------------------------------------------
def test_tracestate_members_and_headers_are_combined_in_order() -> None:
    values = [b"rojo=00f067aa0ba902b7,,  ", b"\tcongo=t61rcWkgMzE , tenant1@vendor=x y"]
    assert parse_tracestate(values) == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant1@vendor=x y"


def test_an_empty_tracestate_is_not_passed_on() -> None:
    assert parse_tracestate([]) is None
    assert parse_tracestate([b""]) is None
    assert parse_tracestate([b" , ,\t"]) is None


def test_tracestate_at_its_bounds_is_kept() -> None:
    members = [f"k{index}=v".encode() for index in range(TRACESTATE_MAX_MEMBERS)]
    assert parse_tracestate([b",".join(members)]) is not None
    first, second = b"k=" + b"v" * 256, b"j=" + b"w" * 200  # the first has a value's longest
    padding = b" " * (TRACESTATE_MAX_CHARS - len(first) - len(second) - 2)  # whitespace counts too
    assert parse_tracestate([first, second + b"," + padding]) == f"k={'v' * 256},j={'w' * 200}"


def _over_the_length_bound() -> list[bytes]:
    """Three headers whose combined value (with the commas that join them) is one character too long."""
    first, second = b"k=" + b"v" * 200, b"j=" + b"w" * 200
    third = b"i=" + b"x" * (TRACESTATE_MAX_CHARS + 1 - len(first) - len(second) - 2 - 2)
    assert sum(map(len, (first, second, third))) + 2 == TRACESTATE_MAX_CHARS + 1
    return [first, second, third]


@pytest.mark.parametrize(
    "values",
    [
        [b",".join(f"k{index}=v".encode() for index in range(TRACESTATE_MAX_MEMBERS + 1))],  # 33 members
        _over_the_length_bound(),
        [b"k=" + b"v" * 1_000_000],  # huge
        [b"rojo=1,rojo=2"],  # a key twice
        [b"rojo=1", b"rojo=2"],
        [b"Rojo=1"],  # keys are lowercase
        [b"1rojo=1"],  # a simple key starts with a letter
        [b"k" * 257 + b"=v"],  # key too long
        [b"tenant@Vendor=1"],
        [b"tenant@" + b"v" * 15 + b"=1"],  # system id too long
        [b"k=" + b"v" * 257],  # value too long
        [b"k=a=b"],  # "=" in a value
        [b"k="],  # empty value
        [b"k"],
        [b"=v"],
        [b"k =v"],
        [b"k=v\x7f"],
        ["k=é".encode()],
        ["ключ=v".encode()],
        [b"k=v", b"bad entry"],  # one bad member drops the whole header
    ],
)
def test_tracestate_outside_the_spec_is_dropped_whole(values: list[bytes]) -> None:
    assert parse_tracestate(values) is None
    context = continue_or_start([VALID], values)
    assert context.trace_id == TRACE_ID  # the traceparent still counts
    assert context.tracestate is None


# -- whatever comes in --------------------------------------------------------------------------------------
@given(st.binary(max_size=700), st.lists(st.binary(max_size=300), max_size=4))
def test_no_input_raises_and_every_answer_is_a_valid_version_00_header(traceparent: bytes, states: list[bytes]) -> None:
    context = continue_or_start([traceparent], states)
    assert V00.fullmatch(context.traceparent)
    assert parse_traceparent(context.traceparent.encode()) is not None
    if context.tracestate is not None:
        assert len(context.tracestate) <= TRACESTATE_MAX_CHARS
        assert parse_tracestate([context.tracestate.encode()]) is not None


@given(
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).filter(lambda v: v != "0" * 32),
    st.text(alphabet="0123456789abcdef", min_size=16, max_size=16).filter(lambda v: v != "0" * 16),
    st.integers(0, 255),
)
def test_every_valid_header_is_read_back_exactly(trace_id: str, parent_id: str, flags: int) -> None:
    parsed = parse_traceparent(f"00-{trace_id}-{parent_id}-{flags:02x}".encode())
    assert parsed == Parent(trace_id, parent_id, flags & 1)
    assert TraceContext(trace_id, parent_id, parsed.flags).traceparent == f"00-{trace_id}-{parent_id}-{flags & 1:02x}"
