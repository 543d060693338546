"""The gateway's routes: its own endpoints, then everything else to the proxy."""

from aiohttp import web

from gateway import docs, views
from gateway.proxy import proxy_view


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/circuit-breaker/status", views.breaker_status)
    app.router.add_post("/circuit-breaker/reset/{service}", views.breaker_reset)
    app.router.add_get("/circuit-breaker/health", views.breaker_health)
    docs.setup(app)
    # Last: any path the gateway does not answer itself goes through the route table.
    app.router.add_route("*", "/{tail:.*}", proxy_view)
