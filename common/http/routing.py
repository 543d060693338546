"""Which methods a path has, matched as OpenAPI matches paths: a concrete path
(`/api/payments/me`) before any template (`/api/payments/{id}`), a template with more fixed
segments before one with fewer, a catch-all last. A method the most specific match lacks is
`405` with exactly its methods in `Allow` (aiohttp's own 405 lists the methods of every
resource the path matches, and routes the method to a template a concrete path shadows)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from common.errors import AppError

ANY = "*"
_PARAMETER = re.compile(r"\{[^}/]+\}")


class MethodNotAllowed(AppError):
    status, code, message = 405, "METHOD_NOT_ALLOWED", "This method is not allowed on this path"

    def __init__(self, allowed: Iterable[str]) -> None:
        super().__init__(headers={"Allow": ", ".join(sorted(allowed))})


@dataclass(frozen=True)
class _Entry:
    pattern: re.Pattern[str]
    rank: tuple[int, int]  # the larger, the more specific (`_rank`)
    methods: frozenset[str]


class PathIndex:
    def __init__(self, entries: Iterable[_Entry], concrete: Mapping[str, Iterable[str]]) -> None:
        """`entries` are the templates; `concrete` the plain paths, found by a lookup."""
        self._entries = sorted(entries, key=lambda e: e.rank, reverse=True)
        self._concrete: dict[str, frozenset[str]] = {}
        for path, methods in concrete.items():
            self._concrete[path] = self._concrete.get(path, frozenset()) | frozenset(methods)

    @classmethod
    def from_templates(cls, paths: Mapping[str, Iterable[str]]) -> PathIndex:
        """From OpenAPI-style templates (`/api/tours/{id}`, a parameter being one segment) and
        their methods; HEAD goes wherever GET does."""
        entries, concrete = [], {}
        for template, methods in paths.items():
            upper = {m.upper() for m in methods}
            if "GET" in upper:
                upper.add("HEAD")
            if _PARAMETER.search(template):
                entries.append(_Entry(_template_regex(template), _rank(template),
                                      frozenset(upper)))
            else:
                concrete[template] = upper
        return cls(entries, concrete)

    @classmethod
    def from_router(cls, router: web.UrlDispatcher) -> PathIndex:
        entries, concrete = [], {}
        for resource in router.resources():
            info = resource.get_info()
            methods = frozenset(route.method.upper() for route in resource)
            if "path" in info:
                concrete[info["path"]] = methods
            elif "pattern" in info:
                entries.append(_Entry(info["pattern"], _rank(info["formatter"]), methods))
            # else a static or sub-app resource: its own business
        return cls(entries, concrete)

    def allowed(self, path: str) -> frozenset[str] | None:
        """The methods of the most specific entries `path` matches (several of equal rank
        share theirs); None when it matches none."""
        concrete = self._concrete.get(path)
        if concrete is not None:
            return concrete
        best: tuple[int, int] | None = None
        found: set[str] = set()
        for entry in self._entries:
            if best is not None and entry.rank < best:
                break
            if entry.pattern.fullmatch(path):
                best = entry.rank
                found |= entry.methods
        return None if best is None else frozenset(found)

    def check(self, method: str, path: str) -> None:
        """Raises `MethodNotAllowed` for a method the path does not have."""
        allowed = self.allowed(path)
        if allowed is not None and ANY not in allowed and method not in allowed:
            raise MethodNotAllowed(allowed)


def _template_regex(template: str) -> re.Pattern[str]:
    parts, last = [], 0
    for parameter in _PARAMETER.finditer(template):
        parts += [re.escape(template[last:parameter.start()]), "[^/]+"]
        last = parameter.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts))


def _rank(template: str) -> tuple[int, int]:
    """(fixed segments, segments): `/a/{x}/c` before `/a/{x}/{y}` before `/{tail}`."""
    segments = [s for s in template.split("/") if s]
    return sum(1 for s in segments if "{" not in s), len(segments)


INDEX: web.AppKey[PathIndex] = web.AppKey("path_index", PathIndex)


async def index_routes(app: web.Application) -> None:
    """on_startup: every route is declared by then."""
    app[INDEX] = PathIndex.from_router(app.router)


@web.middleware
async def allowed_methods(request: web.Request, handler: Handler) -> web.StreamResponse:
    request.app[INDEX].check(request.method, request.path)
    return await handler(request)
