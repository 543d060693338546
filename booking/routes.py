"""booking's routes: wiring only."""

from aiohttp import web

from booking import views


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/bookings", views.create_booking)
    app.router.add_get("/api/bookings", views.list_bookings)
    app.router.add_get("/api/bookings/{id}", views.get_booking)
    app.router.add_patch("/api/bookings/{id}", views.change_booking)
    app.router.add_post("/api/bookings/{id}/cancel", views.cancel_booking)
    app.router.add_patch("/api/bookings/{id}/status", views.set_status)
    app.router.add_patch("/api/bookings/{id}/payment-status", views.set_payment_status)
    app.router.add_get("/internal/bookings/{id}", views.internal_booking)
    app.router.add_get("/internal/bookings", views.internal_user_bookings)
