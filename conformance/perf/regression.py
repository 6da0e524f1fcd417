"""The paired regression run behind `scripts/benchmark_queries.py --baseline REF` (issue 17, RB-PERF-REGRESSION):
the candidate (this checkout's service) beside a baseline REF on the same dataset, in alternating rounds, with
the ratio candidate/baseline per query and a 95 % interval, and beside both the raw-SQL ceiling
(conformance/perf/ceiling.py) when the profile is embedded.

REF: a git ref (HEAD~1, a tag), a directory (a checkout: `.` compares this build with itself), `image:TAG`
(a Docker image), or a loopback URL of a running baseline (with a `target = "url"` profile whose candidate
shares its database). conformance/perf/baseline.py says how each is run; conformance/perf/paired.py how the
rounds alternate; conformance/perf/paired_stats.py how the interval and the verdict are computed.

An embedded profile (ci, smoke, local) starts one stack (PostgreSQL, Redis), seeds the profile's dataset, serves
the candidate and the baseline beside each other on their own loopback ports against the same database and
Redis with the same environment, warms them up, and runs `pairs` pairs of `round_s` second rounds (with the
ceiling: candidate, baseline, raw SQL, then the reverse order, and so on).

Verdict per query and overall, bound r = BENCH_MAX_REGRESSION (default 0.10): REGRESSED when a metric's
interval lies wholly beyond the bound (mean or p95 ratio > 1 + r, throughput ratio < 1/(1 + r)); PASSED
when every interval lies wholly within it; else INCONCLUSIVE, with the pairs of rounds that would decide.
The absolute gate (BENCH_FAIL_THRESHOLD_MS 250 mean, BENCH_FAIL_P95_THRESHOLD_MS 400 p95, the profile's error
budget) still applies to the candidate's pooled requests.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import uvloop

from chaos.stack.migrations import REPO_ROOT
from conformance import provenance
from conformance.perf import cpu_accounting
from conformance.perf.baseline import BaselineRef, parse_baseline, readiness, running_baseline, serve_tree
from conformance.perf.ceiling import CeilingSource, Share, alternate, render_shares, shares
from conformance.perf.console import Progress, stderr
from conformance.perf.discovery import discover, skipped_queries
from conformance.perf.errors import TargetError, UsageError
from conformance.perf.gate import verdicts
from conformance.perf.machine import machine_description
from conformance.perf.paired import (
    Endpoint,
    Round,
    RoundPlan,
    RoundRunner,
    Side,
    http_rounds,
    pairs_by_query,
    pooled_stats,
)
from conformance.perf.paired_stats import (
    MIN_PAIRS,
    VERDICT_EXIT,
    Metric,
    QueryComparison,
    Verdict,
    combined,
    compare_query,
    max_regression_from_env,
)
from conformance.perf.profiles import Profile, urls_named_by_profiles
from conformance.perf.seeding import DatasetSpec, seed_events
from conformance.perf.suite import Dataset, utc_iso
from conformance.perf.targets import check_target
from conformance.perf.thresholds import Thresholds
from conformance.tls import shared_tls_context
from conformance.verdicts import Exit

if TYPE_CHECKING:
    from chaos.stack.local import LocalStack

DEFAULT_PAIRS = 6
MAX_PAIRS = 100
BASELINE_API_KEY_ENV = "BENCH_BASELINE_API_KEY"
USER_AGENT = "benchmark_queries.py --baseline"


@dataclass
class PairedResult:
    """Everything one paired run measured and concluded (render() shows it; as_dict() is the JSON)."""

    profile: Profile
    baseline_ref: BaselineRef
    bound: float
    thresholds: Thresholds
    plan: RoundPlan
    started_at: str
    candidate_version: dict[str, object]
    baseline_version: dict[str, object]
    rounds: list[Round]
    comparisons: dict[str, QueryComparison]
    absolute: dict[str, list[str]]  # the candidate's breaches of the absolute gate, per query (empty: none)
    skipped: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None
    notes: list[str] = field(default_factory=list)
    dataset: dict[str, object] = field(default_factory=dict)
    ceiling: dict[str, dict[str, Share]] = field(default_factory=dict)  # per side: its share of the raw ceiling

    @property
    def verdict(self) -> Verdict:
        return combined([c.verdict for c in self.comparisons.values()])

    @property
    def absolute_failures(self) -> dict[str, list[str]]:
        return {name: problems for name, problems in self.absolute.items() if problems}

    @property
    def exit_code(self) -> Exit:
        return Exit.FAILED if self.absolute_failures else VERDICT_EXIT[self.verdict]

    @property
    def pairs_needed(self) -> int | None:
        needed = [c.pairs_needed for c in self.comparisons.values() if c.pairs_needed is not None]
        return max(needed) if needed else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "machine": machine_description(),
            "profile": asdict(self.profile),
            "bound": self.bound,
            "thresholds": asdict(self.thresholds),
            "plan": asdict(self.plan),
            "candidate": self.candidate_version,
            "baseline": self.baseline_version,
            "dataset": self.dataset,
            "skipped": self.skipped,
            "stopped": self.stopped,
            "notes": self.notes,
            "comparisons": {name: c.as_dict() for name, c in self.comparisons.items()},
            "absolute_gate": {"failed": self.absolute_failures, "passed": not self.absolute_failures},
            "verdict": self.verdict.value,
            "pairs_needed": self.pairs_needed,
            "exit": int(self.exit_code),
            "candidate_figures": self.candidate_summaries(),
            "ceiling": {
                side: {n: share.as_dict() for n, share in found.items()} for side, found in self.ceiling.items()
            },
            "cpu_per_request_us": cpu_accounting.by_side(self.rounds),
            "rounds": [r.as_dict() for r in self.rounds],
        }

    def candidate_summaries(self) -> dict[str, dict[str, Any]]:
        """The candidate's pooled figures per query (count, mean, p95, ...), those the absolute gate judged."""
        return {name: stats.summary() for name, stats in pooled_stats(self.rounds, "candidate").items()}


def default_round_s(profile: Profile) -> float:
    """A third of the profile's measured time, between 1 and 5 s: long enough for a p95 per query per round
    (hundreds of requests at the profile's concurrency), short enough that a pair sees the same machine."""
    return min(5.0, max(1.0, profile.duration_s / 3))


def plan_for(profile: Profile, pairs: int, round_s: float | None, max_seconds: float | None) -> RoundPlan:
    if not MIN_PAIRS <= pairs <= MAX_PAIRS:
        raise UsageError(f"--rounds must be between {MIN_PAIRS} and {MAX_PAIRS} pairs of rounds, not {pairs}")
    seconds = round_s if round_s is not None else default_round_s(profile)
    if seconds <= 0:
        raise UsageError("--round-s must be positive")
    bound = max_seconds if max_seconds is not None else 3 * 2 * pairs * seconds
    return RoundPlan(pairs=pairs, round_s=seconds, warmup_s=profile.warmup_s, max_seconds=bound)


async def _measure(
    sides: Mapping[Side, Endpoint],
    discover_through: Endpoint,
    profile: Profile,
    plan: RoundPlan,
    seed: int,
    ceiling: CeilingSource | None,
    progress: Progress,
) -> tuple[Dataset, list[Round], str | None]:
    rng = random.Random(seed)  # noqa: S311 (query parameters, not secrets)
    headers = dict(discover_through.headers)
    async with httpx.AsyncClient(
        verify=shared_tls_context(), base_url=discover_through.base_url, headers=headers, timeout=10
    ) as client:
        data = await discover(client, profile.span_days, rng)
    runners: dict[Side, RoundRunner] = {side: http_rounds(endpoint, data, profile) for side, endpoint in sides.items()}
    rounds, stopped = await alternate(runners, data, profile, plan, seed=seed, ceiling=ceiling, progress=progress)
    return data, rounds, stopped


def _headers(api_key: str) -> dict[str, str]:
    return {"X-API-Key": api_key, "User-Agent": USER_AGENT}


@contextlib.contextmanager
def _candidate_service(stack: LocalStack, workers: int, application: str | None) -> Iterator[str]:
    """The candidate, served exactly as the baseline is (conformance/perf/baseline.py serve_tree: a fresh
    `python -m service` of this checkout, started after seeding, same environment), so that nothing but the
    code differs between the two; `application` (MODULE:ATTR) serves that app instead, e.g. a test's
    deliberately slowed mutant. The stack's own service is stopped: it would only take memory and CPU."""
    stack.service.stop()
    with serve_tree(REPO_ROOT, stack.service_env, workers, label="the candidate", application=application) as url:
        yield url


def run_paired(
    profile: Profile,
    baseline: str,
    *,
    pairs: int = DEFAULT_PAIRS,
    round_s: float | None = None,
    max_seconds: float | None = None,
    seed: int = 7,
    candidate_app: str | None = None,
    bound: float | None = None,
    thresholds: Thresholds | None = None,
    with_ceiling: bool = True,
    progress: Progress = stderr,
) -> PairedResult:
    """One paired run. UsageError / TargetRefused: bad usage (exit 2); TargetError: could not run (exit 3)."""
    bound = max_regression_from_env() if bound is None else bound
    thresholds = thresholds or Thresholds.from_env()
    plan = plan_for(profile, pairs, round_s, max_seconds)
    ref = parse_baseline(baseline, named_urls=tuple(urls_named_by_profiles()))
    started_at = provenance.now_iso()
    candidate_version: dict[str, object] = dict(provenance.current().as_dict())
    if candidate_app:
        candidate_version["application"] = candidate_app
    progress(f"profile {profile.name}: {profile.description}")
    progress(f"machine: {machine_description()}")
    progress(f"bound: {bound:.0%} (BENCH_MAX_REGRESSION); {plan.pairs} pairs of {plan.round_s:g} s rounds, ABBA")
    if with_ceiling and not profile.embedded:
        progress(f"raw-SQL ceiling: not measured (profile {profile.name!r} has no database of its own to read)")
    notes: list[str] = []
    if profile.embedded:
        if ref.kind == "url":
            raise UsageError(
                f"--baseline {ref.given}: a running baseline serves its own database, and the embedded profile "
                f"{profile.name!r} seeds a new one; use a git ref, a directory or image:TAG, or a url profile"
            )
        from conformance.perf.embedded import start_embedded_stack

        stack = start_embedded_stack(workers=profile.workers, progress=progress)
        try:
            spec = DatasetSpec(events=profile.dataset_events, days=profile.dataset_days)
            progress(f"seeding {spec.events:,} events over {spec.days} days")
            seeded = uvloop.run(seed_events(stack.database_url, spec, progress=progress))
            env = stack.service_env
            with (
                _candidate_service(stack, profile.workers, candidate_app) as candidate_url,
                running_baseline(
                    ref, env=env, workers=profile.workers, database_url=stack.database_url, progress=progress
                ) as running,
            ):
                candidate = Endpoint(candidate_url, _headers(stack.api_key))
                sides: dict[Side, Endpoint] = {
                    "candidate": candidate,
                    "baseline": Endpoint(running.base_url, _headers(stack.api_key)),
                }
                ceiling = CeilingSource(env, profile.workers) if with_ceiling else None
                data, rounds, stopped = uvloop.run(_measure(sides, candidate, profile, plan, seed, ceiling, progress))
                baseline_version = running.version
                notes += running.notes
        finally:
            progress("stopping the stack")
            stack.stop()
        dataset: dict[str, object] = {"seeded": seeded}
    else:
        sides, baseline_version = _remote_sides(profile, ref)
        data, rounds, stopped = uvloop.run(_measure(sides, sides["candidate"], profile, plan, seed, None, progress))
        dataset = {}
    dataset |= {"newest": utc_iso(data.newest), "start": utc_iso(data.start), "sources": len(data.sources)}
    return _conclude(
        profile, ref, bound, thresholds, plan, started_at, candidate_version, baseline_version, rounds, stopped,
        skipped_queries(data), notes, dataset,
    )  # fmt: skip


def _remote_sides(profile: Profile, ref: BaselineRef) -> tuple[dict[Side, Endpoint], dict[str, object]]:
    """A url profile's target as the candidate beside a running baseline URL: both must serve one database."""
    if ref.kind != "url":
        raise UsageError(
            f"profile {profile.name!r} measures a running deployment; its baseline must be a running one too (a URL)"
        )
    url = os.environ.get(profile.url_env) or profile.url
    if not url:
        raise UsageError(f"profile {profile.name!r} needs a URL: set {profile.url_env} (or `url` in the profile)")
    candidate_url = check_target(url, named_by_profile=[u for u in (profile.url, *profile.allowed_urls) if u])
    api_key = os.environ.get(profile.api_key_env)
    if not api_key:
        raise UsageError(f"profile {profile.name!r} needs the API key in ${profile.api_key_env}")
    baseline_key = os.environ.get(BASELINE_API_KEY_ENV) or api_key
    seen = {}
    for name, base_url, key in (("candidate", candidate_url, api_key), ("baseline", ref.target, baseline_key)):
        ready = readiness(base_url)
        try:
            newest = httpx.get(
                f"{base_url}/api/v1/events",
                params={"limit": "1"},
                headers=_headers(key),
                timeout=10,
                verify=shared_tls_context(),
            )
            newest.raise_for_status()
            first = [item["id"] for item in newest.json()["items"]]
        except (httpx.HTTPError, ValueError, KeyError) as error:
            raise TargetError(f"the {name} at {base_url} cannot be read: {error}") from None
        seen[name] = (ready.get("schema_revision"), first, ready.get("version"))
    if seen["candidate"][:2] != seen["baseline"][:2]:
        raise TargetError(
            f"baseline {ref.given} does not serve the candidate's data (schema {seen['baseline'][0]} vs "
            f"{seen['candidate'][0]}, newest event {seen['baseline'][1]} vs {seen['candidate'][1]}): "
            "a paired comparison needs both on one database"
        )
    sides: dict[Side, Endpoint] = {
        "candidate": Endpoint(candidate_url, _headers(api_key)),
        "baseline": Endpoint(ref.target, _headers(baseline_key)),
    }
    return sides, {"kind": "url", "ref": ref.given, "version": seen["baseline"][2]}


def _conclude(
    profile: Profile,
    ref: BaselineRef,
    bound: float,
    thresholds: Thresholds,
    plan: RoundPlan,
    started_at: str,
    candidate_version: dict[str, object],
    baseline_version: dict[str, object],
    rounds: list[Round],
    stopped: str | None,
    skipped: dict[str, str],
    notes: list[str],
    dataset: dict[str, object],
) -> PairedResult:
    paired = pairs_by_query(rounds)
    if not paired or min(len(p) for p in paired.values()) < MIN_PAIRS:
        raise TargetError(f"only {min((len(p) for p in paired.values()), default=0)} complete pairs of rounds ran")
    comparisons = {name: compare_query(name, pairs, bound=bound) for name, pairs in paired.items()}
    candidate = {name: stats.summary() for name, stats in pooled_stats(rounds, "candidate").items()}
    baseline_errors = sum(s.errors for s in pooled_stats(rounds, "baseline").values())
    if baseline_errors:
        notes.append(f"the baseline answered {baseline_errors} requests with errors (their latencies count)")
    return PairedResult(
        profile=profile,
        baseline_ref=ref,
        bound=bound,
        thresholds=thresholds,
        plan=plan,
        started_at=started_at,
        candidate_version=candidate_version,
        baseline_version=baseline_version,
        rounds=rounds,
        comparisons=comparisons,
        absolute=verdicts(candidate, thresholds, profile),
        skipped=skipped,
        stopped=stopped,
        notes=notes,
        dataset=dataset,
        ceiling={side: found for side in ("candidate", "baseline") if (found := shares(rounds, side))},
    )


def _interval(comparison: QueryComparison, metric: Metric) -> str:
    found = comparison.metrics[metric]
    if found.ratio is None or found.low is None or found.high is None:
        return f"{'n/a':>20}"
    return f"{found.ratio:5.2f} [{found.low:4.2f}, {found.high:4.2f}]".rjust(20)


def _side_mean(rounds: list[Round], side: str, name: str) -> float:
    values = [r.figures()[name].mean_ms for r in rounds if r.side == side and name in r.figures()]
    return sum(values) / len(values) if values else 0.0


def render(result: PairedResult) -> list[str]:
    """The table per query (baseline and candidate mean, the three ratios with their intervals, the verdict),
    then the absolute gate and the overall verdict."""
    names = list(result.comparisons)
    width = max(len(name) for name in [*names, *result.skipped, "query"])
    header = (
        f"{'query':{width}} {'base ms':>8} {'cand ms':>8} {'mean ratio [95% CI]':>20} {'p95 ratio [95% CI]':>20} "
        f"{'req/s ratio [95% CI]':>20}  verdict"
    )
    base, cand = result.baseline_version, result.candidate_version
    lines = [
        f"baseline {result.baseline_ref.given}: {base.get('commit') or base.get('image_id') or base.get('version')}"
        f"{' (dirty)' if base.get('dirty') else ''}",
        f"candidate: {cand.get('commit')}{' (dirty)' if cand.get('dirty') else ''}"
        + (f", app {cand['application']}" if cand.get("application") else ""),
        "",
        header,
        "-" * len(header),
    ]
    for name in names:
        comparison = result.comparisons[name]
        verdict = comparison.verdict.value.upper()
        if comparison.pairs_needed is not None:
            verdict += f" (~{comparison.pairs_needed} pairs would decide)"
        lines.append(
            f"{name:{width}} {_side_mean(result.rounds, 'baseline', name):8.2f} "
            f"{_side_mean(result.rounds, 'candidate', name):8.2f} {_interval(comparison, Metric.MEAN)} "
            f"{_interval(comparison, Metric.P95)} {_interval(comparison, Metric.THROUGHPUT)}  {verdict}"
        )
    for name, reason in result.skipped.items():
        lines.append(f"{name:{width}} {reason}")
    pairs = min(c.pairs for c in result.comparisons.values())
    lines.append("")
    lines.append(
        f"{pairs} pairs of {result.plan.round_s:g} s rounds (ABBA); paired bootstrap, 95 % intervals; bound "
        f"{result.bound:.0%}: mean/p95 ratio > {1 + result.bound:.2f} or req/s ratio < {1 / (1 + result.bound):.2f}"
    )
    for side, found in result.ceiling.items():
        lines += ["", *render_shares(found, f"the {side}")]
    if cpu := cpu_accounting.render_cpu(cpu_accounting.by_side(result.rounds)):
        lines += ["", *cpu]
    lines.append("")
    lines += [f"note: {note}" for note in ([result.stopped] if result.stopped else []) + result.notes]
    for query, problems in result.absolute_failures.items():
        lines.append(f"FAIL (absolute gate) {query}: {'; '.join(problems)}")
    if not result.absolute_failures:
        lines.append(
            f"absolute gate: every query's mean <= {result.thresholds.mean_ms:g} ms and p95 <= "
            f"{result.thresholds.p95_ms:g} ms on the candidate"
        )
    regressed = [n for n, c in result.comparisons.items() if c.verdict is Verdict.REGRESSED]
    if result.verdict is Verdict.REGRESSED:
        lines.append(f"REGRESSED beyond {result.bound:.0%} with 95 % confidence: {', '.join(regressed)}")
    elif result.verdict is Verdict.INCONCLUSIVE:
        needed = result.pairs_needed or MAX_PAIRS
        advice = (
            f"--rounds {needed}"
            if needed <= MAX_PAIRS
            else f"more than --rounds allows ({MAX_PAIRS}): longer rounds (--round-s) or a quieter machine"
        )
        lines.append(
            f"INCONCLUSIVE: the intervals are too wide to decide; about {needed} pairs of rounds would ({advice})"
        )
    else:
        lines.append(f"PASSED: no query slower than the bound ({result.bound:.0%}) with 95 % confidence")
    return lines
