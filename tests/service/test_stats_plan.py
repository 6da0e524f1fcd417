"""The stats query's plan: which rollup (or the events themselves) answers each part of a range.

The rollup-based counts are exact only if the pieces tile [since, until) with no gap and no overlap, each
rollup piece covers whole buckets of its width, and no rollup is wider than the requested bucket."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from service.events.repository import Piece, plan_stats_pieces

STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
ORDER = ["minute", "hour", "day"]


def _aligned(moment: datetime, width: str) -> bool:
    base = datetime(2000, 1, 1, tzinfo=UTC)
    return (moment - base) % STEP[width] == timedelta(0)


def _check(since: datetime, until: datetime, bucket: str) -> list[Piece]:
    pieces = plan_stats_pieces(since, until, bucket)  # type: ignore[arg-type]
    assert pieces, "a non-empty range has at least one piece"
    assert pieces[0][1] == since
    assert pieces[-1][2] == until
    for (_, _, end), (_, start, _) in itertools.pairwise(pieces):
        assert end == start, "pieces are contiguous"
    for source, start, end in pieces:
        assert start < end
        if source == "events":
            assert end - start < timedelta(minutes=2), "only the unaligned edges are counted from the events"
        else:
            assert ORDER.index(source) <= ORDER.index(bucket), "no rollup wider than the bucket"
            assert _aligned(start, source)
            assert _aligned(end, source)
    return pieces


def test_whole_days_come_from_the_day_rollup_and_the_edges_from_finer_ones() -> None:
    since = datetime(2026, 10, 27, 5, 29, 29, 500_000, tzinfo=UTC)
    until = datetime(2026, 11, 26, 5, 29, 13, tzinfo=UTC)
    pieces = _check(since, until, "day")
    assert [source for source, _, _ in pieces] == ["events", "minute", "hour", "day", "hour", "minute", "events"]
    assert pieces[3][1:] == (datetime(2026, 10, 28, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))


def test_minute_buckets_never_use_a_wider_rollup() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    pieces = _check(since, since + timedelta(days=3), "minute")
    assert pieces == [("minute", since, since + timedelta(days=3))]


def test_a_range_shorter_than_a_minute_is_counted_from_the_events() -> None:
    since = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    assert _check(since, since + timedelta(seconds=30), "day") == [("events", since, since + timedelta(seconds=30))]


def test_ranges_at_the_end_of_time_do_not_overflow() -> None:
    since = datetime(9999, 12, 31, 23, 58, 30, tzinfo=UTC)
    until = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    _check(since, until, "day")
    _check(datetime(1, 1, 1, tzinfo=UTC), datetime(1, 1, 2, 0, 0, 1, tzinfo=UTC), "day")


@pytest.mark.parametrize("bucket", ORDER)
def test_random_ranges_are_tiled_exactly(bucket: str) -> None:
    rng = random.Random(2026)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(2000):
        since = base + timedelta(seconds=rng.uniform(0, 40 * 86400))
        if rng.random() < 0.3:  # aligned starts and ends happen in practice too
            since = since.replace(second=0, microsecond=0, minute=0 if rng.random() < 0.5 else since.minute)
        length = timedelta(seconds=rng.choice([1, 59, 61, 3599, 3601, 86399, 86401]) * rng.uniform(0.5, 20))
        _check(since, since + length, bucket)
