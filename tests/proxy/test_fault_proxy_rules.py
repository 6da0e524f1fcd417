"""The fault proxy's rules that need no sockets: addresses, the loopback policy, toxic parsing, slicing."""

from __future__ import annotations

import itertools
import math

import pytest

from chaos.proxy import toxics
from chaos.proxy.addresses import AddressError, AddressPolicy, split_host_port
from chaos.proxy.errors import ApiError
from chaos.proxy.toxics import parse_new_toxic, parse_toxic_update, slice_bounds


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:5432", ("127.0.0.1", 5432)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:6379", ("::1", 6379)),
        (":8474", ("", 8474)),
    ],
)
def test_addresses_split_into_host_and_port(address: str, expected: tuple[str, int]) -> None:
    assert split_host_port(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1", "host:port", "::1:5432", "127.0.0.1:70000", ""])
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(AddressError):
        split_host_port(address)


def test_upstreams_must_be_loopback_unless_allowed() -> None:
    policy = AddressPolicy()
    for upstream in ("127.0.0.1:5432", "localhost:6379", "[::1]:6379", "127.8.9.10:1"):
        policy.check_upstream(upstream)
    for upstream in ("10.0.0.5:5432", "db.example.com:5432", "0.0.0.0:5432"):
        with pytest.raises(AddressError, match="not a loopback address"):
            policy.check_upstream(upstream)

    allowing = AddressPolicy(allowed_upstream_hosts=frozenset({"postgres", "172.17.0.0/16"}))
    allowing.check_upstream("postgres:5432")
    allowing.check_upstream("172.17.0.3:5432")
    with pytest.raises(AddressError):
        allowing.check_upstream("172.18.0.3:5432")


def test_listeners_bind_loopback_by_default() -> None:
    policy = AddressPolicy()
    assert policy.bind_host(":0") == ("127.0.0.1", 0)
    assert policy.bind_host("localhost:26379") == ("127.0.0.1", 26379)
    assert policy.bind_host("[::1]:0") == ("::1", 0)
    with pytest.raises(AddressError, match="not loopback"):
        policy.bind_host("0.0.0.0:8474")
    assert AddressPolicy(allow_non_loopback_listen=True).bind_host("0.0.0.0:8474") == ("0.0.0.0", 8474)


def test_a_toxic_gets_toxiproxys_defaults() -> None:
    toxic = parse_new_toxic({"type": "latency", "attributes": {"latency": 300}}, ())
    assert toxic.as_json() == {
        "attributes": {"latency": 300, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    upstream = parse_new_toxic({"type": "limit_data", "stream": "upstream", "toxicity": 0.25}, ())
    assert (upstream.name, upstream.direction, upstream.toxicity) == ("limit_data_upstream", "upstream", 0.25)
    assert upstream.attributes == {"bytes": 0}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ([], 400, "bad request body"),
        ({"type": "latency", "stream": "sideways"}, 400, "stream was invalid"),
        ({"type": "teleport"}, 400, "invalid toxic type"),
        ({}, 400, "invalid toxic type"),
        ({"type": "latency", "name": "taken"}, 409, "toxic already exists"),
        ({"type": "latency", "attributes": {"latency": "slow"}}, 400, "wrong type"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, 400, "wrong type"),
        ({"type": "latency", "attributes": {"latency": True}}, 400, "wrong type"),
        ({"type": "latency", "attributes": {"latency": -1}}, 400, "'latency' must be between 0 and 86400000"),
        ({"type": "latency", "attributes": [300]}, 400, "attributes must be an object"),
        ({"type": "latency", "toxicity": "all"}, 400, "toxicity"),
        ({"type": "slicer", "attributes": {"average_size": 0}}, 400, "average_size"),
        ({"type": "slicer", "attributes": {"average_size": 10, "size_variation": 10}}, 400, "size_variation"),
    ],
)
def test_bad_toxics_get_toxiproxys_errors(body: object, status: int, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_new_toxic(body, {"taken"})
    assert raised.value.status == status
    assert message in raised.value.message


def test_unknown_attributes_are_ignored_like_go_does() -> None:
    toxic = parse_new_toxic({"type": "timeout", "attributes": {"timeout": 5, "enabled": True}}, ())
    assert toxic.attributes == {"timeout": 5}


def test_an_update_merges_attributes_and_keeps_name_type_and_stream() -> None:
    toxic = parse_new_toxic({"type": "latency", "stream": "upstream", "attributes": {"latency": 100}}, ())
    updated = parse_toxic_update(toxic, {"attributes": {"jitter": 20}, "type": "timeout", "name": "other"})
    assert updated.as_json() == {**toxic.as_json(), "attributes": {"latency": 100, "jitter": 20}}
    assert parse_toxic_update(updated, {"toxicity": 0}).toxicity == 0.0
    with pytest.raises(ApiError, match="'latency' must be between 0 and"):
        parse_toxic_update(toxic, {"attributes": {"latency": -5}})


# The documented maxima (toxics.py): times in ms up to 24 h (the slicer's delay in µs), sizes and rates up to
# 2^31 - 1, limit_data's byte count up to Go's int64 (as in Toxiproxy).
MAXIMA = [
    ("latency", "latency", 86_400_000),
    ("latency", "jitter", 86_400_000),
    ("bandwidth", "rate", 2**31 - 1),
    ("slow_close", "delay", 86_400_000),
    ("timeout", "timeout", 86_400_000),
    ("reset_peer", "timeout", 86_400_000),
    ("slicer", "average_size", 2**31 - 1),
    ("slicer", "size_variation", 2**31 - 2),  # must stay below average_size
    ("slicer", "delay", 86_400_000_000),
    ("limit_data", "bytes", 2**63 - 1),
]


@pytest.mark.parametrize(("toxic_type", "attribute", "maximum"), MAXIMA)
def test_every_attribute_is_range_checked_on_create_and_update(toxic_type: str, attribute: str, maximum: int) -> None:
    base = {"average_size": 2**31 - 1} if toxic_type == "slicer" and attribute != "average_size" else {}
    largest = parse_new_toxic({"type": toxic_type, "attributes": {**base, attribute: maximum}}, ())
    assert largest.attributes[attribute] == maximum
    documented = toxics.ATTRIBUTE_MAXIMA[toxic_type][attribute]
    for value in (maximum + 1, 10**400, -1):
        if attribute == "size_variation" and value == maximum + 1:
            continue  # refused as not smaller than average_size; the table's own bound is checked next
        with pytest.raises(ApiError) as created:
            parse_new_toxic({"type": toxic_type, "attributes": {**base, attribute: value}}, ())
        with pytest.raises(ApiError) as updated:
            parse_toxic_update(largest, {"attributes": {attribute: value}})
        for raised in (created.value, updated.value):
            assert raised.status == 400
            assert raised.message == f"bad request body: attribute {attribute!r} must be between 0 and {documented}"
    with pytest.raises(ApiError, match=f"'{attribute}' must be between 0 and {documented}"):
        parse_new_toxic({"type": toxic_type, "attributes": {attribute: documented + 1}}, ())


def test_the_maxima_table_is_the_one_the_docstring_documents() -> None:
    assert set(toxics.ATTRIBUTE_MAXIMA) == set(toxics.TOXIC_ATTRIBUTES)
    docstring = toxics.__doc__ or ""
    for toxic_type, limits in toxics.ATTRIBUTE_MAXIMA.items():
        assert tuple(limits) == toxics.TOXIC_ATTRIBUTES[toxic_type]
        for attribute, maximum in limits.items():
            assert f"{toxic_type}.{attribute}" in docstring
            assert f"{maximum:_}" in docstring, (toxic_type, attribute)


@pytest.mark.parametrize(
    "toxicity",
    [
        math.nan,
        math.inf,
        -math.inf,
        -0.1,
        -1,
        1.000001,
        2,
        pytest.param(10**400, id="10^400"),
        pytest.param(-(10**400), id="-10^400"),
    ],
    ids=str,
)
def test_toxicity_must_be_a_finite_probability(toxicity: float) -> None:
    with pytest.raises(ApiError) as created:
        parse_new_toxic({"type": "latency", "toxicity": toxicity}, ())
    existing = parse_new_toxic({"type": "latency"}, ())
    with pytest.raises(ApiError) as updated:
        parse_toxic_update(existing, {"toxicity": toxicity})
    for raised in (created.value, updated.value):
        assert raised.status == 400
        assert raised.message == "bad request body: toxicity must be a finite number between 0 and 1"


@pytest.mark.parametrize("toxicity", [0, 0.0, 1e-9, 0.5, 1, 1.0])
def test_toxicity_accepts_every_probability(toxicity: float) -> None:
    assert parse_new_toxic({"type": "latency", "toxicity": toxicity}, ()).toxicity == float(toxicity)


@pytest.mark.parametrize(("average", "variation"), [(1, 0), (7, 3), (100, 50), (1000, 999)])
def test_slicing_covers_every_byte_once_in_pieces_of_about_the_average(average: int, variation: int) -> None:
    toxics.rng.seed(average)
    for size in (0, 1, average, 3 * average + 1, 20_000):
        pieces = slice_bounds(size, average, variation)
        assert pieces[0][0] == 0
        assert pieces[-1][1] == size
        assert all(end == start for (_, end), (start, _) in itertools.pairwise(pieces))
        assert all(end - start <= average + variation for start, end in pieces)
        if size >= 4 * (average + variation):
            assert len(pieces) > 1


def test_toxicity_is_a_probability() -> None:
    toxics.rng.seed(1)
    never = [toxics.runtime_for(parse_new_toxic({"type": "latency", "toxicity": 0}, ()), _NoLink()) for _ in range(50)]
    always = [toxics.runtime_for(parse_new_toxic({"type": "latency"}, ()), _NoLink()) for _ in range(50)]
    half = [
        toxics.runtime_for(parse_new_toxic({"type": "latency", "toxicity": 0.5}, ()), _NoLink()) for _ in range(200)
    ]
    assert not any(runtime.active for runtime in never)
    assert all(runtime.active for runtime in always)
    assert 50 < sum(runtime.active for runtime in half) < 150


class _NoLink:
    def close_by_toxic(self, runtime: toxics.ToxicRuntime, *, reset: bool) -> None:
        raise AssertionError("not expected")

    def toxic_failed(self, runtime: toxics.ToxicRuntime, error: Exception) -> None:
        raise AssertionError("not expected")
