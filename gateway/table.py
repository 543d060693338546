"""The gateway's tables, parsed from config: which upstream serves a path, which requests need
no token or an admin, and which rate-limit policy applies."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from common.resilience import Policy

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def prefix_matches(prefix: str, path: str) -> bool:
    """On segment boundaries: `/api/tours` covers `/api/tours/x`, not `/api/toursx`."""
    return prefix in ("/", path) or path.startswith(prefix.rstrip("/") + "/")


def _longest(items: Iterable[tuple[str, object]], path: str) -> object | None:
    best = None
    for prefix, item in items:
        if prefix_matches(prefix, path) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, item)
    return best[1] if best else None


NOWHERE = "-"


@dataclass(frozen=True)
class Route:
    """`prefix=service[:seconds][+stale][+page]`, `prefix=-`, or
    `upgrade:prefix=service[/path][:seconds]`.

    An upgrade route takes WebSocket handshakes only, relayed frame by frame; it may name the
    path its service takes them at, which replaces the prefix. A plain route takes every other
    request, its path unchanged; `+stale` keeps its last good answers to anonymous reads; `+page`
    serves pages, which check their own session: public here, no identity passed on, and no part
    of the API (its documents, its methods). `-` serves nothing under the prefix (404)."""

    prefix: str
    service: str
    timeout: float
    upgrade: bool = False
    target: str | None = None
    stale: bool = False
    page: bool = False

    def upstream_path(self, path: str) -> str:
        """`path` (with its query, if any) as the service is asked for it."""
        if self.target is None:
            return path
        path, mark, query = path.partition("?")
        rest = path if self.prefix == "/" else path[len(self.prefix):]
        return (self.target if rest in ("", "/") else self.target + rest) + mark + query


_UPGRADE = "upgrade:"
_FLAGS = frozenset({"stale", "page"})
_TARGET = re.compile(r"(?:/[A-Za-z0-9._~-]+)+")


def _route(line: str, known: set[str], default_timeout: float) -> Route:
    text = line.strip()
    upgrade = text.startswith(_UPGRADE)
    prefix, sep, target = text.removeprefix(_UPGRADE).partition("=")
    target, *flags = target.strip().split("+")
    target, colon, timeout = target.partition(":")
    service, slash, path = target.partition("/")
    prefix, service = prefix.strip(), service.strip()
    if not sep or not prefix.startswith("/") or service not in known | {NOWHERE} or (
            slash and not _TARGET.fullmatch("/" + path)):
        raise ValueError(f"route {line!r}: expected [upgrade:]/prefix=service[/path][:seconds]"
                         f"[+stale][+page] with a service among {', '.join(sorted(known))}, or "
                         f"/prefix={NOWHERE}")
    if service == NOWHERE and (upgrade or colon or flags):
        raise ValueError(f"route {line!r}: {NOWHERE} serves nothing, so it takes no timeout or "
                         "flag and is a plain route")
    if slash and not upgrade:
        raise ValueError(f"route {line!r}: only an upgrade route names a path (other paths "
                         "pass unchanged)")
    unknown = set(flags) - _FLAGS
    if unknown:
        raise ValueError(f"route {line!r}: unknown flag {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(_FLAGS))})")
    if upgrade and flags:
        raise ValueError(f"route {line!r}: flags are for plain routes")
    if {"stale", "page"} <= set(flags):
        # A page is its visitor's (their session cookie): another visitor must never get it.
        raise ValueError(f"route {line!r}: pages are never served stale")
    try:
        seconds = float(timeout) if timeout else default_timeout
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(f"route {line!r}: the timeout must be a positive number")
    return Route(prefix.rstrip("/") or "/", service, seconds, upgrade=upgrade,
                 target="/" + path if slash else None, stale="stale" in flags,
                 page="page" in flags)


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    @classmethod
    def parse(cls, lines: Iterable[str], services: Iterable[str],
              default_timeout: float) -> RouteTable:
        known = set(services)
        routes: list[Route] = []
        for line in lines:
            route = _route(line, known, default_timeout)
            if any((r.prefix, r.upgrade) == (route.prefix, route.upgrade) for r in routes):
                # Only one of the two could ever match: a silent shadow is an operator's surprise.
                kind = _UPGRADE if route.upgrade else ""
                raise ValueError(f"route {line!r}: {kind}{route.prefix} is routed twice")
            routes.append(route)
        return cls(routes)

    def match(self, path: str, *, upgrade: bool = False) -> Route | None:
        """The route of a request: a WebSocket handshake (`upgrade`) takes the longest upgrade
        prefix, else it is a plain request like any other; others only see plain routes."""
        if upgrade:
            found = _longest(((r.prefix, r) for r in self.routes if r.upgrade), path)
            if isinstance(found, Route):
                return found
        route = _longest(((r.prefix, r) for r in self.routes if not r.upgrade), path)
        return route if isinstance(route, Route) and route.service != NOWHERE else None

    def api_services(self) -> list[str]:
        """The services the API's routes reach (pages and `-` are not the API), in table
        order."""
        found = [r.service for r in self.routes if not r.page and r.service != NOWHERE]
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Rule:
    """`METHODS /pattern`: `*` is one path segment, `**` any number of them (none included)."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    text: str

    @classmethod
    def parse(cls, line: str) -> Rule:
        methods, _, pattern = line.strip().partition(" ")
        wanted = frozenset(m.strip().upper() for m in methods.split(",") if m.strip())
        pattern = pattern.strip()
        if not wanted or not wanted <= METHODS or not pattern.startswith("/"):
            raise ValueError(f"rule {line!r}: expected METHOD[,METHOD] /pattern")
        regex = ""
        for segment in pattern.strip("/").split("/") if pattern != "/" else []:
            if segment == "**":
                regex += "(?:/[^/]*)*"
            elif segment == "*":
                regex += "/[^/]+"
            else:
                regex += "/" + re.escape(segment)
        return cls(wanted, re.compile((regex or "/") + "/?" + r"\Z"), line.strip())

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self.pattern.match(path) is not None


class Rules:
    """A list of rules, asked once per request whether any matches. Answers are remembered per
    method and path (a bounded memory, cleared when full), as clients ask about the same few
    paths again and again."""

    def __init__(self, rules: Iterable[Rule], *, memory: int = 4096) -> None:
        self.rules = tuple(rules)
        self._memory = memory
        self._answers: dict[tuple[str, str], bool] = {}

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Rules:
        return cls(Rule.parse(line) for line in lines)

    def __len__(self) -> int:
        """How many answers are remembered."""
        return len(self._answers)

    def any(self, method: str, path: str) -> bool:
        answer = self._answers.get((method, path))
        if answer is None:
            answer = any(rule.matches(method, path) for rule in self.rules)
            if len(self._answers) >= self._memory:
                self._answers.clear()
            self._answers[method, path] = answer
        return answer


class Limits:
    """Rate-limit policies by path prefix; the longest prefix wins."""

    def __init__(self, policies: list[tuple[str, str, Policy]]) -> None:
        self.policies = policies

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Limits:
        policies = []
        for line in lines:
            prefix, sep, spec = line.partition("=")
            limit, slash, window = spec.partition("/")
            try:
                policy = Policy.per(int(limit), float(window))
            except ValueError:
                policy = None
            prefix = prefix.strip().rstrip("/") or "/"
            if not sep or not slash or policy is None or not prefix.startswith("/"):
                raise ValueError(f"rate limit {line!r}: expected /prefix=limit/window_seconds")
            name = "default" if prefix == "/" else prefix.strip("/").replace("/", ".")
            policies.append((prefix, name, policy))
        return cls(policies)

    def match(self, path: str) -> tuple[str, Policy] | None:
        found = _longest(((p, (name, policy)) for p, name, policy in self.policies), path)
        return found if isinstance(found, tuple) else None


ROUTES: web.AppKey[RouteTable] = web.AppKey("route_table", RouteTable)
