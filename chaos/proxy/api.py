"""Toxiproxy's HTTP API (routes, JSON shapes, status codes) over the proxy collection.

    GET  /version                          200 {"version": ..., "implementation": ...}
    POST /reset                            204  enable every proxy, remove every toxic
    GET  /proxies                          200 {name: proxy}
    POST /proxies                          201 proxy            (400 bad body, 409 name taken)
    POST /populate                         201 {"proxies": [...]}
    GET  /proxies/{proxy}                  200 proxy            (404 unknown)
    POST|PATCH /proxies/{proxy}            200 proxy            update listen, upstream, enabled
    DELETE /proxies/{proxy}                204
    GET  /proxies/{proxy}/toxics           200 [toxic]
    POST /proxies/{proxy}/toxics           200 toxic            (400 bad toxic, 409 name taken)
    GET  /proxies/{proxy}/toxics/{toxic}   200 toxic            (404 unknown)
    POST|PATCH /proxies/{proxy}/toxics/{toxic}  200 toxic       update attributes, toxicity
    DELETE /proxies/{proxy}/toxics/{toxic} 204

Beyond Toxiproxy (leases.py): a toxic body (add or update) may carry `"lease_s": N`, and so may an update
that leaves a proxy disabled; when the lease ends the proxy removes the toxic or enables the proxy by itself,
a new `lease_s` renews it, and answers show `"lease_expires_in_s"` while one runs. Without `lease_s` (and
without the server's --default-lease-s) nothing differs from Toxiproxy.

Errors are `{"error": "...", "status": N}`. Requests from browsers (a `Mozilla/` user agent) are refused
with 403, as Toxiproxy does, so a web page cannot drive the proxy.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote

from chaos.proxy.errors import BAD_REQUEST_BODY, ApiError
from chaos.proxy.http import Request, Response
from chaos.proxy.registry import ProxyCollection

log = logging.getLogger("chaos.proxy.api")

# The Toxiproxy API version this server implements, and who it is.
TOXIPROXY_API_VERSION = "2.12.0"
IMPLEMENTATION = "chaos.proxy (executable-runbook fault proxy)"


def _json(status: int, payload: Any) -> Response:
    return Response(status, json.dumps(payload).encode())


def _no_constants(name: str) -> Any:
    # Python's json takes NaN, Infinity and -Infinity; JSON (and Go's decoder, so Toxiproxy) does not.
    raise ValueError(f"{name} is not valid JSON")


def _body(request: Request) -> Any:
    if not request.body.strip():
        raise BAD_REQUEST_BODY.joined("EOF")
    try:
        return json.loads(request.body, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BAD_REQUEST_BODY.joined(str(error)) from None
    except RecursionError:  # "[[[[..." deeper than Python's stack; Go's decoder refuses it too (depth 10000)
        raise BAD_REQUEST_BODY.joined("JSON nested too deeply") from None


class ToxiproxyApi:
    """Routes one HTTP request to the collection and renders the answer as Toxiproxy would."""

    def __init__(self, collection: ProxyCollection) -> None:
        self.collection = collection

    async def __call__(self, request: Request) -> Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return Response(403, b"User agent not allowed\n", content_type="text/plain; charset=utf-8")
        try:
            response = await self._route(request)
        except ApiError as error:
            response = _json(error.status, error.as_json())
        log.debug("%s %s -> %s", request.method, request.path, response.status)
        return response

    async def _route(self, request: Request) -> Response:
        segments = [unquote(segment) for segment in request.path.strip("/").split("/")]
        method = request.method
        match segments:
            case ["version"]:
                self._allow(method, "GET")
                return _json(200, {"version": TOXIPROXY_API_VERSION, "implementation": IMPLEMENTATION})
            case ["reset"]:
                self._allow(method, "POST")
                await self.collection.reset()
                return Response(204)
            case ["populate"]:
                self._allow(method, "POST")
                proxies, error = await self.collection.populate(_body(request))
                listed = [proxy.as_json() for proxy in proxies]
                if error is not None:
                    return _json(error.status, {**error.as_json(), "proxies": listed})
                return _json(201, {"proxies": listed})
            case ["proxies"]:
                self._allow(method, "GET", "POST")
                if method == "GET":
                    return _json(200, {name: p.as_json() for name, p in self.collection.proxies.items()})
                proxy = await self.collection.create(_body(request))
                return _json(201, proxy.as_json())
            case ["proxies", name]:
                self._allow(method, "GET", "POST", "PATCH", "DELETE")
                if method == "GET":
                    return _json(200, self.collection.get(name).as_json())
                if method == "DELETE":
                    await self.collection.delete(name)
                    return Response(204)
                self.collection.get(name)  # 404 before 400, as in Toxiproxy
                return _json(200, (await self.collection.update(name, _body(request))).as_json())
            case ["proxies", name, "toxics"]:
                self._allow(method, "GET", "POST")
                proxy = self.collection.get(name)
                if method == "GET":
                    return _json(200, proxy.as_json()["toxics"])
                async with self.collection.lock:
                    return _json(200, proxy.toxic_json(self.collection.add_toxic(proxy, _body(request))))
            case ["proxies", name, "toxics", toxic_name]:
                self._allow(method, "GET", "POST", "PATCH", "DELETE")
                proxy = self.collection.get(name)
                async with self.collection.lock:
                    if method == "GET":
                        return _json(200, proxy.toxic_json(proxy.toxic(toxic_name)))
                    if method == "DELETE":
                        proxy.remove_toxic(toxic_name)
                        return Response(204)
                    proxy.toxic(toxic_name)  # 404 before 400
                    updated = self.collection.update_toxic(proxy, toxic_name, _body(request))
                    return _json(200, proxy.toxic_json(updated))
        raise ApiError("404 page not found", 404)

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(f"method {method} not allowed; use {', '.join(allowed)}", 405)
