"""The balancer's lag behind a replica's readiness, measured from the recorded transitions."""

from __future__ import annotations

from chaos.drills.fleet_watch import Transition, rotation_lags


def t(at: float, replica: str, source: str, state: str) -> Transition:
    return Transition(at, replica, source, state)


def test_the_lag_out_and_back_in_is_measured_per_replica() -> None:
    transitions = [
        t(0.0, "api_1", "readiness", "200"),
        t(0.0, "api_1", "balancer", "in"),
        t(0.0, "api_2", "readiness", "200"),
        t(0.0, "api_2", "balancer", "in"),
        t(5.0, "api_1", "readiness", "503 degraded"),
        t(5.8, "api_1", "balancer", "out"),
        t(9.0, "api_1", "readiness", "200"),
        t(10.6, "api_1", "balancer", "in"),
    ]
    lags = rotation_lags(transitions)
    assert [(lag.replica, lag.direction, lag.readiness_at) for lag in lags] == [
        ("api_1", "out", 5.0),
        ("api_1", "in", 9.0),
    ]
    assert [round(lag.balancer_after_s, 2) for lag in lags] == [0.8, 1.6]


def test_a_change_the_balancer_never_followed_or_had_already_made_is_not_a_lag() -> None:
    never = [t(0, "a", "readiness", "200"), t(0, "a", "balancer", "in"), t(1, "a", "readiness", "503 draining")]
    assert rotation_lags(never) == []
    already = [t(0, "a", "readiness", "200"), t(0.5, "a", "balancer", "out"), t(1, "a", "readiness", "503 degraded")]
    assert rotation_lags(already) == []
    first_seen_unready = [t(0, "a", "readiness", "503 degraded"), t(0.2, "a", "balancer", "out")]
    assert rotation_lags(first_seen_unready) == []  # no change seen: the replica was never ready meanwhile
