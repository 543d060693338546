"""Prometheus metrics of one app: a registry of its own, request count and latency by route."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

# Any other method is counted as OTHER: clients must not be able to mint label values.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """The app's registry (other components register their metrics in it too) and the request
    metrics, labelled by route template and status."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.service = service
        labels = ["service", "method", "route", "status"]
        self.requests = Counter("http_requests_total", "HTTP requests served", labels,
                                registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "HTTP request latency", labels,
                                 registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (self.service, method if method in _METHODS else "OTHER", route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


METRICS: web.AppKey[HttpMetrics] = web.AppKey("http_metrics", HttpMetrics)


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
