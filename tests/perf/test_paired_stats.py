"""The paired comparison's statistics and bookkeeping on synthetic rounds (no servers): a known slowdown is
REGRESSED, identical builds PASSED even under heavy drift shared by each pair, too few noisy rounds INCONCLUSIVE
with an estimate of the rounds that would decide; the ABBA order, the pairing of rounds, REF parsing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chaos.stack.migrations import REPO_ROOT
from conformance.perf.baseline import BaselineRef, docker_engine_answers, parse_baseline, require_same_schema
from conformance.perf.errors import TargetError, UsageError
from conformance.perf.paired import ALL_QUERIES, Round, RoundPlan, abba_order, pairs_by_query, pooled_stats
from conformance.perf.paired_stats import (
    MAX_PAIRS_SUGGESTED,
    Metric,
    Pair,
    RoundFigures,
    Verdict,
    bootstrap_ratio,
    compare_query,
    judge,
    max_regression_from_env,
)
from conformance.perf.profiles import load_profiles
from conformance.perf.regression import _conclude, render
from conformance.perf.runner import QueryStats
from conformance.perf.targets import TargetRefused
from conformance.perf.thresholds import Thresholds


def _pairs(count: int, *, slowdown: float, noise: float, drift: float, seed: int = 1) -> list[Pair]:
    """`count` pairs: each pair's machine speed drifts by up to `drift` (shared by both sides), each side adds
    its own noise, and the candidate is `slowdown` times slower (latency up, throughput down)."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        machine = 1 + rng.uniform(-drift, drift)
        pairs.append((_side(rng, machine * slowdown, noise), _side(rng, machine, noise)))
    return pairs


def _side(rng: random.Random, slowness: float, noise: float) -> RoundFigures:
    own = slowness * (1 + rng.gauss(0, noise))
    return RoundFigures(mean_ms=10 * own, p95_ms=25 * own * (1 + rng.gauss(0, noise)), per_s=400 / own)


def test_a_known_slowdown_is_regressed_on_every_metric() -> None:
    found = compare_query("q", _pairs(6, slowdown=1.3, noise=0.03, drift=0.2), bound=0.10)
    assert found.verdict is Verdict.REGRESSED
    for metric in Metric:
        comparison = found.metrics[metric]
        assert comparison.verdict is Verdict.REGRESSED, comparison
        assert comparison.low is not None
        assert comparison.high is not None
        assert comparison.ratio is not None
        assert comparison.low <= comparison.ratio <= comparison.high
    assert found.metrics[Metric.MEAN].ratio == pytest.approx(1.3, abs=0.06)
    assert found.metrics[Metric.THROUGHPUT].ratio == pytest.approx(1 / 1.3, abs=0.05)


def test_identical_builds_pass_although_the_machine_drifts_by_half_between_pairs() -> None:
    # Pairing is what makes this pass: the drift (+/-50 %) is shared by both sides of a pair.
    found = compare_query("q", _pairs(10, slowdown=1.0, noise=0.02, drift=0.5), bound=0.10)
    assert found.verdict is Verdict.PASSED, found
    assert found.pairs_needed is None


def test_too_few_noisy_rounds_are_inconclusive_and_say_how_many_would_decide() -> None:
    found = compare_query("q", _pairs(3, slowdown=1.0, noise=0.25, drift=0.1, seed=3), bound=0.10)
    assert found.verdict is Verdict.INCONCLUSIVE, found
    assert found.pairs_needed is not None
    assert 3 < found.pairs_needed <= MAX_PAIRS_SUGGESTED
    # More of the same rounds do decide it, as the estimate says they would (order of magnitude).
    more = compare_query("q", _pairs(found.pairs_needed * 2, slowdown=1.0, noise=0.25, drift=0.1, seed=3), bound=0.10)
    assert more.verdict is Verdict.PASSED, more


def test_the_interval_is_reproducible_and_resamples_pairs_together() -> None:
    candidate, baseline = [10.0, 20.0, 40.0, 11.0], [10.0, 20.0, 40.0, 11.0]
    first = bootstrap_ratio(candidate, baseline)
    assert first == bootstrap_ratio(candidate, baseline)  # fixed seed
    # Identical pairs: whatever rounds are drawn, the ratio of means is exactly 1 (independent resampling of
    # the two sides would give a wide interval here, the rounds differing fourfold).
    assert first == pytest.approx((1.0, 1.0, 1.0))
    assert bootstrap_ratio([1.0, 2.0], [0.0, 0.0]) is None


def test_the_verdict_reads_each_interval_against_the_bound_in_its_direction() -> None:
    assert judge(Metric.MEAN, 1.2, 1.11, 1.3, bound=0.1, pairs=6).verdict is Verdict.REGRESSED
    assert judge(Metric.MEAN, 0.8, 0.7, 1.1, bound=0.1, pairs=6).verdict is Verdict.PASSED  # faster passes
    assert judge(Metric.THROUGHPUT, 0.8, 0.7, 0.9, bound=0.1, pairs=6).verdict is Verdict.REGRESSED
    assert judge(Metric.THROUGHPUT, 1.0, 0.92, 1.1, bound=0.1, pairs=6).verdict is Verdict.PASSED
    wide = judge(Metric.MEAN, 1.0, 0.8, 1.2, bound=0.1, pairs=6)
    # The high side (0.2 from the estimate) must shrink below the distance to 1.1 (0.1): 6 * (0.2/0.1)^2 = 24.
    assert (wide.verdict, wide.pairs_needed) == (Verdict.INCONCLUSIVE, 24)
    on_the_bound = judge(Metric.MEAN, 1.1, 1.0, 1.2, bound=0.1, pairs=6)
    assert on_the_bound.pairs_needed == MAX_PAIRS_SUGGESTED


def test_the_bound_comes_from_bench_max_regression() -> None:
    assert max_regression_from_env({}) == pytest.approx(0.10)
    assert max_regression_from_env({"BENCH_MAX_REGRESSION": "0.05"}) == pytest.approx(0.05)
    assert max_regression_from_env({"BENCH_MAX_REGRESSION": "15%"}) == pytest.approx(0.15)
    for bad in ("zero", "0", "-0.1", "nan"):
        with pytest.raises(ValueError, match="BENCH_MAX_REGRESSION"):
            max_regression_from_env({"BENCH_MAX_REGRESSION": bad})


def test_rounds_alternate_abba_so_a_trend_cancels() -> None:
    order = [side[0].upper() for pair in range(4) for side in abba_order(pair)]
    assert "".join(order) == "CBBCCBBC"


def _round(index: int, pair: int, side: str, latencies: list[float], errors: int = 0) -> Round:
    stats = {"get by id": QueryStats(latencies_ms=list(latencies), errors=errors), "list": QueryStats([5.0, 7.0])}
    return Round(index, pair, side, float(index), 2.0, stats)  # type: ignore[arg-type]


def test_rounds_become_pairs_per_query_and_the_candidate_pools_for_the_absolute_gate() -> None:
    rounds = [
        _round(0, 0, "candidate", [10.0, 30.0]),
        _round(1, 0, "baseline", [10.0, 10.0]),
        _round(2, 1, "baseline", [20.0]),
        _round(3, 1, "candidate", [40.0], errors=1),
        _round(4, 2, "candidate", [1.0]),  # a pair cut short: no baseline round, so no pair
    ]
    paired = pairs_by_query(rounds)
    assert set(paired) == {"get by id", "list", ALL_QUERIES}
    assert [(c.mean_ms, b.mean_ms) for c, b in paired["get by id"]] == [(20.0, 10.0), (40.0, 20.0)]
    assert paired["get by id"][0][0].per_s == pytest.approx(1.0)  # 2 requests in a 2 s round
    pooled = pooled_stats(rounds, "candidate")
    assert pooled["get by id"].latencies_ms == [10.0, 30.0, 40.0, 1.0]
    assert pooled["get by id"].errors == 1


def test_the_table_shows_ratios_with_intervals_and_the_verdict() -> None:
    profile = load_profiles()["smoke"]
    rounds = []
    for pair in range(4):
        for offset, side in enumerate(abba_order(pair)):
            slow = 2.0 if side == "candidate" else 1.0
            rounds.append(_round(2 * pair + offset, pair, side, [10.0 * slow, (12.0 + pair) * slow]))
    result = _conclude(
        profile, parse_baseline("."), 0.1, Thresholds(), RoundPlan(4, 2.0, 0.0, 60.0), "2024-01-01T00:00:00+00:00",
        {"commit": "c" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": False}, rounds, None, {}, [], {},
    )  # fmt: skip
    lines = render(result)
    row = next(line for line in lines if line.startswith("get by id"))
    assert "2.00 [2.00, 2.00]" in row
    assert row.endswith("REGRESSED")
    assert lines[-1].startswith("REGRESSED beyond 10%")
    assert int(result.exit_code) == 1
    report = result.as_dict()
    assert report["verdict"] == "regressed"
    assert len(report["rounds"]) == 8
    assert report["comparisons"]["get by id"]["mean_ms"]["ratio"] == 2.0


def test_baseline_refs_are_told_apart() -> None:
    head = parse_baseline("HEAD")
    assert head.kind == "git"
    assert len(head.target) == 40
    assert parse_baseline(str(REPO_ROOT)).kind == "directory"
    assert parse_baseline("image:events-api").target == "events-api"
    assert parse_baseline("events-api:1.4.0").kind == "image"
    assert parse_baseline("http://127.0.0.1:8001/").target == "http://127.0.0.1:8001"
    with pytest.raises(TargetRefused):
        parse_baseline("https://example.com")
    with pytest.raises(UsageError, match="not a URL, a directory"):
        parse_baseline("no-such-ref-anywhere")


def test_a_schema_mismatch_names_both_revisions() -> None:
    ref = BaselineRef("HEAD~3", "git", "0" * 40)
    with pytest.raises(TargetError, match="baseline HEAD~3 needs schema 0002, the database has 0003"):
        require_same_schema(ref, "0002", "0003")
    require_same_schema(ref, "0003", "0003")


def test_an_image_baseline_without_a_docker_engine_could_not_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    with pytest.raises(TargetError, match="needs a Docker engine and none answers"):
        docker_engine_answers()
