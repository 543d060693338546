"""notify's routes: wiring only."""

from aiohttp import web

from notify import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/notifications", views.list_notifications)
    app.router.add_get("/api/notifications/{id}", views.get_notification)
