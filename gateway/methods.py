"""The methods each upstream path has, learnt from the OpenAPI documents the services publish, so
that a method a path does not have is `405` with the path's `Allow` before any access rule runs:
a customer's `PUT` on a tour is told the method does not exist, not that it is for admins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from common.http.routing import PathIndex
from common.periodic import CleanupContext, Pass, periodic_ctx
from gateway.table import ROUTES
from gateway.upstreams import UPSTREAMS, fetch_openapi

OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
RETRY = 3.0  # seconds between passes; a service without a known document is asked at each
REFRESH = 60.0  # a known document is asked for again after this: it changes with a deployment
FETCH_TIMEOUT = 3.0


class UpstreamMethods:
    """What is known of each service's paths; a service not heard from yet is not judged."""

    def __init__(self) -> None:
        self._indexes: dict[str, PathIndex] = {}
        self._learnt_at: dict[str, float] = {}

    def learn(self, service: str, document: Mapping[str, Any]) -> None:
        paths = {path: [m for m in item if m in OPERATIONS]
                 for path, item in document.get("paths", {}).items() if isinstance(item, dict)}
        self._indexes[service] = PathIndex.from_templates(paths)
        self._learnt_at[service] = time.monotonic()

    def due(self, service: str) -> bool:
        learnt = self._learnt_at.get(service)
        return learnt is None or time.monotonic() - learnt >= REFRESH

    def check(self, service: str, method: str, path: str) -> None:
        """`405` (`common.http.routing.MethodNotAllowed`) for a method `service` does not have on
        `path`; nothing when its document is not known or does not describe the path: the
        service answers for itself then."""
        index = self._indexes.get(service)
        if index is not None:
            index.check(method, path)


METHODS: web.AppKey[UpstreamMethods] = web.AppKey("upstream_methods", UpstreamMethods)


def _learner(app: web.Application) -> Pass:
    async def learn() -> Mapping[str, int]:
        methods, upstreams = app[METHODS], app[UPSTREAMS]
        names = [n for n in app[ROUTES].api_services() if methods.due(n)]
        found = await asyncio.gather(*(fetch_openapi(upstreams[n], FETCH_TIMEOUT) for n in names))
        learnt = 0
        for name, document in zip(names, found, strict=True):
            if isinstance(document, dict):
                methods.learn(name, document)
                learnt += 1
        return {"documents": learnt}

    return learn


def methods_ctx() -> CleanupContext:
    """Learns in the background, from the start: the first requests (while no document is
    known) are judged by the services themselves."""
    return periodic_ctx("upstream_methods", RETRY, _learner, task_name="upstream-methods",
                        correlation_prefix="methods")
