"""The performance gates' own rules: thresholds from the environment, where load may go, profile validation
(a remote profile never seeds), and the verdict that names each breaching query."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.perf import queries
from conformance.perf.errors import UsageError
from conformance.perf.gate import verdicts
from conformance.perf.profiles import load_profiles
from conformance.perf.targets import TargetRefused, check_target
from conformance.perf.thresholds import Thresholds, percentile


def test_thresholds_default_to_the_runbooks_and_refuse_nonsense() -> None:
    assert Thresholds.from_env({}) == Thresholds(mean_ms=250, p95_ms=400)
    assert Thresholds.from_env({"BENCH_FAIL_THRESHOLD_MS": "25", "BENCH_FAIL_P95_THRESHOLD_MS": "50"}) == Thresholds(
        25, 50
    )
    for bad in ("-1", "0", "abc", "nan", "inf"):
        with pytest.raises(ValueError, match="BENCH_FAIL_THRESHOLD_MS"):
            Thresholds.from_env({"BENCH_FAIL_THRESHOLD_MS": bad})


def test_load_goes_only_to_loopback_or_a_url_a_profile_names() -> None:
    for url in ("http://127.0.0.1:8000", "http://localhost:8000/", "http://[::1]:9000", "http://127.4.5.6"):
        assert check_target(url) == url.rstrip("/")
    for url in ("http://10.0.0.5:8000", "https://staging.example.com", "http://192.168.1.2", "ftp://127.0.0.1"):
        with pytest.raises(TargetRefused):
            check_target(url)
    assert check_target("https://staging.example.com/", named_by_profile=["https://staging.example.com"]) == (
        "https://staging.example.com"
    )


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50.0, 95.0, 99.0)
    assert percentile([], 0.95) == 0.0
    assert percentile([7.0], 0.95) == 7.0


def test_the_shipped_profiles_load_and_the_runbooks_staging_profile_is_remote() -> None:
    profiles = load_profiles()
    assert {"local", "ci", "smoke", "staging"} <= set(profiles)
    assert not profiles["staging"].embedded
    assert profiles["local"].dataset_events == 1_000_000
    assert profiles["local"].concurrency == 32


def _profiles(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(body)
    return path


def test_a_remote_profile_may_not_name_a_dataset(tmp_path: Path) -> None:
    path = _profiles(
        tmp_path,
        '[profiles.bad]\ndescription = "x"\ntarget = "url"\ndataset_events = 1000\nconcurrency = 1\n'
        "warmup_s = 0\nduration_s = 1\nmax_requests = 10\nmax_error_rate = 0\nrequest_timeout_s = 1\n",
    )
    with pytest.raises(UsageError, match="never seeds"):
        load_profiles(path)


def test_a_remote_profile_refuses_an_unnamed_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _profiles(
        tmp_path,
        '[profiles.remote]\ndescription = "x"\ntarget = "url"\nconcurrency = 1\nwarmup_s = 0\nduration_s = 1\n'
        "max_requests = 10\nmax_error_rate = 0\nrequest_timeout_s = 1\n",
    )
    monkeypatch.setenv("BENCH_BASE_URL", "http://10.20.30.40:8000")
    monkeypatch.setenv("API_KEY", "k" * 20)
    assert queries.main(["--profile", "remote", "--profiles-file", str(path)]) == 2
    monkeypatch.delenv("BENCH_BASE_URL")
    assert queries.main(["--profile", "remote", "--profiles-file", str(path)]) == 2  # no URL at all


def test_unknown_profile_and_bad_threshold_are_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert queries.main(["--profile", "nope"]) == 2
    monkeypatch.setenv("BENCH_FAIL_P95_THRESHOLD_MS", "fast")
    assert queries.main(["--profile", "smoke"]) == 2


def test_verdicts_name_what_breached() -> None:
    profile = load_profiles()["smoke"]
    summaries = {
        "fine": {"count": 10, "mean_ms": 5.0, "p95_ms": 9.0, "errors": 0, "error_rate": 0.0, "failures_by_status": {}},
        "slow": {
            "count": 10,
            "mean_ms": 300.0,
            "p95_ms": 450.0,
            "errors": 0,
            "error_rate": 0.0,
            "failures_by_status": {},
        },
        "failing": {
            "count": 10,
            "mean_ms": 5.0,
            "p95_ms": 9.0,
            "errors": 1,
            "error_rate": 0.1,
            "failures_by_status": {"503": 1},
        },
    }
    found = verdicts(summaries, Thresholds(), profile)
    assert found["fine"] == []
    assert found["slow"] == ["mean 300.0 ms > 250 ms", "p95 450.0 ms > 400 ms"]
    assert found["failing"][0].startswith("errors 1/10")
