"""A TCP fault proxy that speaks Toxiproxy's HTTP API, so drills written for Toxiproxy run against it.

- `FaultProxy` (server.py): the proxy in this process, awaited or on a background thread.
- `FaultProxyProcess` (process.py): `python -m chaos.proxy` (__main__.py) as a subprocess.
- api.py routes, http.py the HTTP/1.1 server they answer on, errors.py Toxiproxy's error bodies,
  registry.py proxies, link.py the byte relay, toxics.py what each toxic does, leases.py fault leases,
  addresses.py the loopback-only policy.
- `ToxiproxyClient` (client.py): toxiproxy-python bound to one server, this proxy or a real Toxiproxy; what
  drills and stacks use to drive either.

One extension beyond Toxiproxy's API (leases.py, docs/ARCHITECTURE.md "Fault leases"): a toxic or a disabled
proxy may carry `"lease_s"`, after which the proxy undoes it by itself; without it (and without
--default-lease-s) the API behaves as Toxiproxy's.

Where it knowingly differs from Toxiproxy 2.x (each time where Toxiproxy's behaviour is an accident):
- toxicity is rolled once per connection and toxic (and again on update); Toxiproxy also re-rolls a toxic
  whenever another toxic is added to or removed from the same connection;
- a half-close (EOF) is passed on as a half-close; Toxiproxy closes the other side completely;
- removing a `timeout` toxic closes only the connections it was stalling, not every one on the proxy;
- negative attributes, and slicer settings that crash Toxiproxy, are refused with 400;
- `reset_peer` resets connections it meets after they opened too (Toxiproxy sends a FIN to those);
- listeners bind loopback unless allowed otherwise, and upstreams must be loopback unless allowed;
- error bodies are sent as `application/json` (Toxiproxy sends the same JSON as text/plain), a duplicate
  name inside one `/populate` is a 400 (Toxiproxy: 500), and `/metrics` is not served.
"""

from chaos.proxy.addresses import AddressError, AddressPolicy
from chaos.proxy.process import FaultProxyProcess
from chaos.proxy.server import FaultProxy, FaultProxyError

__all__ = ["AddressError", "AddressPolicy", "FaultProxy", "FaultProxyError", "FaultProxyProcess"]
