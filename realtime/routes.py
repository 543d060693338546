"""realtime's routes: wiring only."""

from aiohttp import web

from realtime import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/ws", views.websocket)
