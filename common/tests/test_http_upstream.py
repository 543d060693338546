"""An upstream opened with the app: one pooled session, the client made on it, its circuit in
/health under the client's name (never deciding readiness unless asked), closed on shutdown."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from common.http.health import HEALTH, Health
from common.http.upstream import Upstream, upstream_breaker, upstream_ctx

PEER: web.AppKey[Upstream] = web.AppKey("peer", Upstream)


async def peer() -> TestServer:
    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.headers.get("X-Internal-Token")})

    app.router.add_get("/hello", hello)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_an_upstream_is_opened_with_the_app_and_reported_in_health() -> None:
    server = await peer()
    app = web.Application()
    app[HEALTH] = Health("svc")
    app.cleanup_ctx.append(upstream_ctx(PEER, lambda session: Upstream(
        session, str(server.make_url("")), upstream_breaker("peer", 2.0, 5.0),
        headers={"X-Internal-Token": "t0k"})))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert await app[PEER].request("GET", "/hello") == (200, {"hello": "t0k"})
        assert {name: critical for name, (_, critical) in app[HEALTH].checks.items()} == {
            "peer": False}
        healthy, _ = await app[HEALTH].report()
        assert healthy
        session = app[PEER]._session
    finally:
        await runner.cleanup()
        await server.close()

    assert session.closed


async def test_an_upstream_may_be_left_out_of_health() -> None:
    app = web.Application()
    app[HEALTH] = Health("svc")
    app.cleanup_ctx.append(upstream_ctx(PEER, lambda session: Upstream(
        session, "http://127.0.0.1:9", upstream_breaker("peer", 2.0, 5.0)), health=False))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        assert app[HEALTH].checks == {}
    finally:
        await runner.cleanup()
