"""The benchmark profiles (profiles.toml beside this file): the target, its credentials, the dataset, the
concurrency, the warm-up and how long to run; read and validated here (a remote profile never seeds)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from conformance.perf.errors import UsageError

PROFILES_FILE = Path(__file__).resolve().parent / "profiles.toml"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    target: str
    concurrency: int
    warmup_s: float
    duration_s: float
    max_requests: int
    max_error_rate: float
    request_timeout_s: float
    rate_per_s: float | None = None
    workers: int = 2
    dataset_events: int = 0
    dataset_days: int = 30
    url: str | None = None
    url_env: str = "BENCH_BASE_URL"
    allowed_urls: tuple[str, ...] = ()
    api_key_env: str = "API_KEY"
    span_days: int = 30

    @property
    def embedded(self) -> bool:
        return self.target == "embedded"


_EMBEDDED_ONLY = {"workers", "dataset_events", "dataset_days"}
_URL_ONLY = {"url", "url_env", "allowed_urls", "api_key_env"}


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read the profiles in {path}: {error}") from None
    profiles: dict[str, Profile] = {}
    known = {f for f in Profile.__dataclass_fields__ if f != "name"}
    for name, raw in document.get("profiles", {}).items():
        unknown = set(raw) - known
        if unknown:
            raise UsageError(f"profile {name!r} in {path}: unknown keys {sorted(unknown)}")
        target = raw.get("target")
        if target not in {"embedded", "url"}:
            raise UsageError(f"profile {name!r}: target must be 'embedded' or 'url', not {target!r}")
        wrong = (_URL_ONLY if target == "embedded" else _EMBEDDED_ONLY) & set(raw)
        if wrong:
            reason = "a remote profile never seeds" if target == "url" else "the embedded stack has its own"
            raise UsageError(f"profile {name!r}: {sorted(wrong)} not allowed for target {target!r} ({reason})")
        values = {**raw, "allowed_urls": tuple(raw.get("allowed_urls", ()))}
        try:
            profile = Profile(name=name, **values)
        except TypeError as error:
            raise UsageError(f"profile {name!r}: {error}") from None
        if profile.embedded and profile.dataset_events < 1000:
            raise UsageError(f"profile {name!r}: dataset_events must be at least 1000")
        if profile.concurrency < 1 or profile.max_requests < 1 or profile.duration_s <= 0:
            raise UsageError(f"profile {name!r}: concurrency, max_requests and duration_s must be positive")
        profiles[name] = profile
    return profiles


def urls_named_by_profiles(path: Path | None = None) -> list[str]:
    """Every URL a profile in profiles.toml names explicitly (`url`, `allowed_urls`)."""
    document = tomllib.loads((path or PROFILES_FILE).read_text())
    named: list[str] = []
    for profile in document.get("profiles", {}).values():
        if profile.get("url"):
            named.append(str(profile["url"]))
        named += [str(url) for url in profile.get("allowed_urls", [])]
    return named
