"""The API's documentation: every service's OpenAPI document merged at `/openapi.json` (what the
gateway routes, as the gateway serves it, plus its own operations) and a Swagger UI page at
`/docs` from local files."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from common.errors import NotFound
from common.http.openapi import ERROR_SCHEMA, SECURITY_SCHEMES, build_openapi
from gateway.access import ACCESS, Access
from gateway.table import ROUTES, RouteTable, prefix_matches
from gateway.upstreams import UPSTREAMS, fetch_openapi

Document = dict[str, Any]
_ExpectHandler = Callable[[web.Request], Awaitable[None]]

TITLE = "tourbook API"
FETCH_TIMEOUT = 3.0  # per service; a slow one is left out rather than holding the page up
CACHE_TTL = 10.0  # short: a service that comes back shows up within seconds
# Each service's own endpoints and service-to-service calls: never reachable through the gateway.
NEVER_ROUTED = ("/internal", "/health", "/metrics", "/openapi.json", "/docs")
METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
COMPONENTS = "#/components/"
SCHEMES = COMPONENTS + "securitySchemes/"
ERROR_REF = COMPONENTS + "schemas/Error"
# What the gateway itself may answer on any operation it forwards.
GATEWAY_ERRORS = {
    "429": "Rate limited by the gateway (RATE_LIMITED); see Retry-After",
    "503": "The service is unavailable or its circuit breaker is open (CIRCUIT_OPEN)",
    "504": "The service did not answer in time (GATEWAY_TIMEOUT)",
}


def _walk(node: Any, ref: Callable[[str], str]) -> Any:
    """A copy of `node` with every component reference (`$ref`, discriminator mapping, security
    requirement) passed through `ref`, which sees and returns full `#/components/...` refs."""
    if isinstance(node, list):
        return [_walk(item, ref) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = ref(value)
        elif (key == "discriminator" and isinstance(value, dict)
              and isinstance(value.get("mapping"), dict)):
            out[key] = {**value, "mapping": {
                k: ref(v) if isinstance(v, str) else v for k, v in value["mapping"].items()}}
        elif (key == "security" and isinstance(value, list)
              and all(isinstance(requirement, dict) for requirement in value)):
            out[key] = [{ref(SCHEMES + name).removeprefix(SCHEMES): scopes
                         for name, scopes in requirement.items()} for requirement in value]
        else:
            out[key] = _walk(value, ref)
    return out


def _references(node: Any) -> set[str]:
    found: set[str] = set()

    def see(ref: str) -> str:
        found.add(ref)
        return ref

    _walk(node, see)
    return found


def _flatten(components: dict[str, Any]) -> dict[str, Any]:
    """`{"schemas": {"A": ...}}` → `{"#/components/schemas/A": ...}`."""
    return {f"{COMPONENTS}{kind}/{name}": value for kind, entries in components.items()
            if isinstance(entries, dict) for name, value in entries.items()}


def _reachable(components: dict[str, Any], roots: Any) -> dict[str, Any]:
    """The components that `roots` use, directly or through other components."""
    todo, kept = list(_references(roots)), {}
    while todo:
        ref = todo.pop()
        if ref in components and ref not in kept:
            kept[ref] = components[ref]
            todo.extend(_references(components[ref]))
    return kept


def routed_paths(document: Document, service: str, routes: RouteTable) -> dict[str, Any]:
    """The paths of a service's document that the gateway forwards to that service."""
    kept = {}
    for path, item in document.get("paths", {}).items():
        route = routes.match(path)
        if (route is not None and route.service == service
                and not any(prefix_matches(p, path) for p in NEVER_ROUTED)):
            kept[path] = item
    return kept


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": ERROR_REF}}}}


def _as_forwarded(operation: dict[str, Any], method: str, path: str, access: Access) -> None:
    """What the gateway adds to an operation it forwards: its token check (which may be stricter
    than the service's, never looser) and its own errors."""
    responses = operation.setdefault("responses", {})
    wanted = method.upper()
    admin = access.admin.any(wanted, path)
    manager = access.manager.any(wanted, path)
    if admin or manager or not access.public.any(wanted, path):
        if not operation.get("security"):
            operation["security"] = [{"bearerAuth": []}]
        responses.setdefault("401", _error("Missing, expired, invalid or revoked access token"))
    if admin:
        responses.setdefault("403", _error("Admins only"))
    elif manager:
        responses.setdefault("403", _error("Managers and admins only"))
    for status, description in GATEWAY_ERRORS.items():
        responses.setdefault(status, _error(description))


class _Merged:
    """The document under construction: paths, flat components, tags and operation ids."""

    def __init__(self) -> None:
        self.paths: dict[str, Any] = {}
        # The gateway's own error envelope and token scheme keep their names, whoever comes next.
        self.components: dict[str, Any] = {ERROR_REF: ERROR_SCHEMA,
                                           SCHEMES + "bearerAuth": SECURITY_SCHEMES["bearerAuth"]}
        self.tags: dict[str, Any] = {}
        self.operation_ids: set[str] = set()

    def add(self, source: str, document: Document, paths: dict[str, Any],
            access: Access | None = None) -> None:
        """Adds `paths` of `source`'s document with the components they use; `access` is given
        for forwarded operations, which then carry the gateway's checks and errors."""
        paths = {p: item for p, item in paths.items() if p not in self.paths}
        top_security = document.get("security")
        if top_security is not None:  # it would apply to the other services' operations too
            paths = {p: {m: ({"security": top_security, **op} if m in METHODS else op)
                         for m, op in item.items()} for p, item in paths.items()}
        own = _reachable(_flatten(document.get("components", {})), paths)
        renames = self._renames(source, own)

        def rename(ref: str) -> str:
            return renames.get(ref, ref)

        for ref, value in own.items():
            self.components.setdefault(rename(ref), _walk(value, rename))
        for path, item in _walk(paths, rename).items():
            for method, operation in item.items():
                if method not in METHODS:
                    continue
                if access is not None:
                    _as_forwarded(operation, method, path, access)
                self._unique_operation_id(operation, source)
            self.paths[path] = item
        for tag in document.get("tags", []):
            self.tags.setdefault(tag.get("name"), tag)

    def _renames(self, source: str, own: dict[str, Any]) -> dict[str, str]:
        """New names for the components whose name is taken by a different one. Repeated until
        stable, because renaming one changes every component that refers to it."""
        renames: dict[str, str] = {}
        changed = True
        while changed:
            changed = False
            for ref, value in own.items():
                if ref in renames or ref not in self.components:
                    continue
                if _walk(value, lambda r: renames.get(r, r)) != self.components[ref]:
                    renames[ref] = self._free_name(ref, source, set(own) | set(renames.values()))
                    changed = True
        return renames

    def _free_name(self, ref: str, source: str, taken: set[str]) -> str:
        kind_path, _, name = ref.rpartition("/")
        base = f"{kind_path}/{source[:1].upper()}{source[1:]}{name}"
        candidate, n = base, 2
        while candidate in self.components or candidate in taken:
            candidate, n = f"{base}{n}", n + 1
        return candidate

    def _unique_operation_id(self, operation: dict[str, Any], source: str) -> None:
        operation_id = operation.get("operationId")
        if operation_id is None:
            return
        if operation_id in self.operation_ids:
            operation_id = operation["operationId"] = f"{source}_{operation_id}"
        self.operation_ids.add(operation_id)

    def document(self, info: dict[str, Any]) -> Document:
        used = _reachable(self.components, self.paths)
        components: dict[str, dict[str, Any]] = {}
        for ref in sorted(used):
            kind, _, name = ref.removeprefix(COMPONENTS).partition("/")
            components.setdefault(kind, {})[name] = used[ref]
        document: Document = {"openapi": "3.1.0", "info": info, "paths": self.paths,
                              "components": components}
        if self.tags:
            document["tags"] = list(self.tags.values())
        return document


def merge(gateway: Document, services: dict[str, Document], problems: dict[str, str],
          routes: RouteTable, access: Access) -> Document:
    """The gateway's own operations, then each service's routed ones; `problems` names the
    services left out and why, in `info.description` and `x-tourbook-services`."""
    merged = _Merged()
    merged.add("gateway", gateway, gateway.get("paths", {}))
    for name, document in services.items():
        merged.add(name, document, routed_paths(document, name, routes), access)
    description = ("Every tourbook service's API as the gateway serves it: the routes it "
                   "forwards, with its token check and its own errors, and its own endpoints.")
    if problems:
        description += " Left out for now: " + ", ".join(
            f"{name} ({problem})" for name, problem in problems.items()) + "."
    document = merged.document({"title": TITLE, "version": gateway["info"]["version"],
                                "description": description})
    document["x-tourbook-services"] = {**dict.fromkeys(services, "included"), **problems}
    return document


class ApiDocs:
    """The merged document, rebuilt at most every `ttl` seconds, by one request at a time (the
    others wait for it rather than asking every service again)."""

    def __init__(self, ttl: float = CACHE_TTL, timeout: float = FETCH_TIMEOUT) -> None:
        self.ttl, self.timeout = ttl, timeout
        self._body, self._expires = b"", 0.0
        self._lock = asyncio.Lock()

    async def body(self, app: web.Application) -> bytes:
        async with self._lock:
            if time.monotonic() >= self._expires:
                self._body = json.dumps(await self._build(app)).encode()
                self._expires = time.monotonic() + self.ttl
            return self._body

    async def _build(self, app: web.Application) -> Document:
        routes, upstreams = app[ROUTES], app[UPSTREAMS]
        names = routes.api_services()  # pages are not part of the API
        results = await asyncio.gather(*(fetch_openapi(upstreams[n], self.timeout)
                                       for n in names))
        services = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, dict)}
        problems = {n: r for n, r in zip(names, results, strict=True) if isinstance(r, str)}
        own = build_openapi(app, title=TITLE)
        return merge(own, services, problems, routes, app[ACCESS])


DOCS: web.AppKey[ApiDocs] = web.AppKey("api_docs", ApiDocs)


async def openapi_view(request: web.Request) -> web.Response:
    return web.Response(body=await request.app[DOCS].body(request.app),
                        content_type="application/json")


def _swagger_ui_dir() -> Path:
    # Located, not imported: the package's __init__ loads its framework glue, which we never use.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package (Swagger UI's files) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


STATIC = Path(__file__).parent / "static"
SWAGGER_UI = _swagger_ui_dir()
JS, CSS, PNG = "text/javascript; charset=utf-8", "text/css; charset=utf-8", "image/png"
# Named types, not guessed ones: the guess reads the host's /etc/mime.types, and
# `X-Content-Type-Options: nosniff` makes a browser refuse a script of another type.
ASSETS = {
    "docs.js": (STATIC / "docs.js", JS),
    "swagger-ui.css": (SWAGGER_UI / "swagger-ui.css", CSS),
    "swagger-ui-bundle.js": (SWAGGER_UI / "swagger-ui-bundle.js", JS),
    "favicon-16x16.png": (SWAGGER_UI / "favicon-16x16.png", PNG),
    "favicon-32x32.png": (SWAGGER_UI / "favicon-32x32.png", PNG),
}
# Scripts only from here (no inline script); Swagger UI sets inline styles and draws its icons
# from data: URIs.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


async def docs_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "docs.html", headers={
        "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": PAGE_CSP,
        "Cache-Control": "no-cache"})


async def docs_asset(request: web.Request) -> web.FileResponse:
    asset = ASSETS.get(request.match_info["name"])
    if asset is None:
        raise NotFound("No such documentation file")
    path, content_type = asset
    return web.FileResponse(path, headers={"Content-Type": content_type,
                                           "Cache-Control": "public, max-age=3600"})


async def docs_slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/docs")


def setup(app: web.Application, expect_handler: _ExpectHandler | None = None) -> None:
    """The `/docs` routes (the gateway's own, so no access rule applies to them) and the cache
    behind `/openapi.json`."""
    app[DOCS] = ApiDocs()
    app.router.add_get("/docs", docs_page, expect_handler=expect_handler)
    app.router.add_get("/docs/", docs_slash, expect_handler=expect_handler)
    app.router.add_get("/docs/{name}", docs_asset, expect_handler=expect_handler)
