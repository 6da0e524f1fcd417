"""Every route is either authenticated with a scope or deliberately public (tozo's policy test, extended)."""

from __future__ import annotations

from quart import Quart

from service.auth import ALL_SCOPES
from service.openapi import PROBLEMS_ATTRIBUTE
from service.route_policy import route_auth_policy, route_rate_limit_policy

PUBLIC_PATHS = {"/health/live", "/health/ready", "/metrics", "/openapi.json"}


def test_every_route_has_an_auth_policy(offline_app: Quart) -> None:
    unmarked = [
        rule.rule
        for rule in offline_app.url_map.iter_rules()
        if route_auth_policy(offline_app.view_functions[rule.endpoint]) is None
    ]
    assert unmarked == [], "mark these routes with @require_scope(...) or @public"


def test_api_routes_require_a_scope_and_only_operational_routes_are_public(offline_app: Quart) -> None:
    public = set()
    for rule in offline_app.url_map.iter_rules():
        policy = route_auth_policy(offline_app.view_functions[rule.endpoint])
        if rule.rule.startswith("/api/"):
            assert policy in ALL_SCOPES, rule.rule
        if policy == "public":
            public.add(rule.rule)
    assert public == PUBLIC_PATHS


def test_api_routes_declare_their_problem_statuses(offline_app: Quart) -> None:
    for rule in offline_app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            statuses = set(getattr(offline_app.view_functions[rule.endpoint], PROBLEMS_ATTRIBUTE, ()))
            assert {401, 403, 422, 429, 503} <= statuses, rule.rule
            if "POST" in (rule.methods or ()):
                assert {400, 413, 415} <= statuses, rule.rule


def test_api_routes_are_rate_limited_by_their_scope_and_public_routes_are_not(offline_app: Quart) -> None:
    for rule in offline_app.url_map.iter_rules():
        view = offline_app.view_functions[rule.endpoint]
        policy = route_auth_policy(view)
        expected = policy if policy in ALL_SCOPES else None
        assert route_rate_limit_policy(view) == expected, rule.rule
