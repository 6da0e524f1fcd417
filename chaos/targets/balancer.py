"""The load balancer's view of the replicas: HAProxy's stats CSV (the `stats` listener of
deploy/haproxy/haproxy.cfg), read into which slot holds which replica address and whether HAProxy routes to it.
chaos.drills.fleet_watch polls it during a drill."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import httpx

STATS_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class ServerState:
    slot: str  # HAProxy's server name (api1 … api16)
    address: str  # IP of the replica in that slot ("" when the slot is empty)
    status: str  # UP, DOWN, MAINT, "UP 1/2", …

    @property
    def in_rotation(self) -> bool:
        return self.status.startswith("UP")  # "UP 1/2": going down, still routed; "DOWN 1/2": not yet

    @property
    def ip(self) -> str:
        return self.address.rsplit(":", 1)[0]


def read_servers(stats_url: str, backend: str, *, client: httpx.Client | None = None) -> list[ServerState]:
    """Every filled slot of `backend` (address known), from the stats CSV."""
    get = client.get if client is not None else httpx.get
    response = get(stats_url, timeout=STATS_TIMEOUT_S)
    response.raise_for_status()
    rows = csv.DictReader(io.StringIO(response.text.lstrip("# ")))
    servers = []
    for row in rows:
        if row.get("pxname") != backend or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        address = row.get("addr") or ""
        if not address or address.startswith("-") or address.startswith("0.0.0.0"):
            continue  # an empty slot (no replica resolved into it)
        servers.append(ServerState(row["svname"], address, row.get("status", "")))
    return servers


def in_rotation(stats_url: str, backend: str) -> dict[str, bool]:
    """Replica IP → whether the balancer routes to it now."""
    return {server.ip: server.in_rotation for server in read_servers(stats_url, backend)}
