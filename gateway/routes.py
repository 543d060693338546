"""The gateway's routes: its own endpoints, then everything else to the proxy."""

from aiohttp import web

from gateway import docs, views
from gateway.proxy import no_early_continue, proxy_view


def setup_routes(app: web.Application) -> None:
    # No `100 Continue` before the rate limit and the access rules have had their say: the
    # gateway's own endpoints read no body and never send one; the proxy does once allowed.
    router, wait = app.router, no_early_continue
    router.add_get("/circuit-breaker/status", views.breaker_status, expect_handler=wait)
    router.add_post("/circuit-breaker/reset", views.breakers_reset, expect_handler=wait)
    router.add_post("/circuit-breaker/reset/{service}", views.breaker_reset, expect_handler=wait)
    router.add_get("/circuit-breaker/health", views.breaker_health, expect_handler=wait)
    docs.setup(app, expect_handler=wait)
    # Last: any path the gateway does not answer itself goes through the route table.
    router.add_route("*", "/{tail:.*}", proxy_view, expect_handler=wait)
