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
    rank: tuple[int, int]  # (concrete, fixed segments): the larger, the more specific
    methods: frozenset[str]


class PathIndex:
    def __init__(self, entries: Iterable[_Entry]) -> None:
        self._entries = sorted(entries, key=lambda e: e.rank, reverse=True)

    @classmethod
    def from_templates(cls, paths: Mapping[str, Iterable[str]]) -> PathIndex:
        """From OpenAPI-style templates (`/api/tours/{id}`, a parameter being one segment) and
        their methods; HEAD goes wherever GET does."""
        entries = []
        for template, methods in paths.items():
            upper = {m.upper() for m in methods}
            if "GET" in upper:
                upper.add("HEAD")
            entries.append(_Entry(_template_regex(template), _rank(template), frozenset(upper)))
        return cls(entries)

    @classmethod
    def from_router(cls, router: web.UrlDispatcher) -> PathIndex:
        entries = []
        for resource in router.resources():
            info = resource.get_info()
            methods = frozenset(route.method.upper() for route in resource)
            if "path" in info:
                pattern = re.compile(re.escape(info["path"]))
                template = info["path"]
            elif "pattern" in info:
                pattern, template = info["pattern"], info["formatter"]
            else:  # a static or sub-app resource: its own business
                continue
            entries.append(_Entry(pattern, _rank(template), methods))
        return cls(entries)

    def allowed(self, path: str) -> frozenset[str] | None:
        """The methods of the most specific entries `path` matches (several of equal rank
        share theirs); None when it matches none."""
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
    segments = [s for s in template.split("/") if s]
    fixed = sum(1 for s in segments if "{" not in s)
    return (0 if "{" in template else 1), fixed


INDEX: web.AppKey[PathIndex] = web.AppKey("path_index", PathIndex)


async def index_routes(app: web.Application) -> None:
    """on_startup: every route is declared by then."""
    app[INDEX] = PathIndex.from_router(app.router)


@web.middleware
async def allowed_methods(request: web.Request, handler: Handler) -> web.StreamResponse:
    request.app[INDEX].check(request.method, request.path)
    return await handler(request)
