"""The gateway's tables, parsed from config: which upstream serves a path, which requests need
no token or an admin, and which rate-limit policy applies."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

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
    prefix: str
    service: str
    """An upstream's name, or `-`: nothing is served under the prefix."""
    timeout: float


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    @classmethod
    def parse(cls, lines: Iterable[str], services: Iterable[str],
              default_timeout: float) -> RouteTable:
        known = {*services, NOWHERE}
        routes: list[Route] = []
        for line in lines:
            prefix, sep, target = line.partition("=")
            service, _, timeout = target.strip().partition(":")
            prefix, service = prefix.strip(), service.strip()
            if not sep or not prefix.startswith("/") or service not in known:
                raise ValueError(f"route {line!r}: expected /prefix=service[:seconds] with a "
                                 f"service among {', '.join(sorted(known))}")
            try:
                seconds = float(timeout) if timeout else default_timeout
                if service == NOWHERE and timeout:
                    seconds = math.nan  # nothing to wait for
            except ValueError:
                seconds = math.nan
            if not 0 < seconds < math.inf:
                raise ValueError(f"route {line!r}: the timeout must be a positive number")
            prefix = prefix.rstrip("/") or "/"
            if any(r.prefix == prefix for r in routes):
                # Only one of the two could ever match: a silent shadow is an operator's surprise.
                raise ValueError(f"route {line!r}: {prefix} is routed twice")
            routes.append(Route(prefix, service, seconds))
        return cls(routes)

    def match(self, path: str) -> Route | None:
        route = _longest(((r.prefix, r) for r in self.routes), path)
        return route if isinstance(route, Route) and route.service != NOWHERE else None


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
