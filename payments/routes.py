"""payments' routes: wiring only. The fixed paths come before `/api/payments/{id}`."""

from aiohttp import web

from payments import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/payments", views.list_payments)
    app.router.add_get("/api/payments/config", views.get_config)
    app.router.add_post("/api/payments/create-intent", views.create_intent)
    app.router.add_get("/api/payments/me", views.my_payments)
    app.router.add_get("/api/payments/booking/{bookingId}", views.booking_payments)
    app.router.add_get("/api/payments/{id}", views.get_payment)
    app.router.add_post("/api/payments/{id}/refund", views.refund_payment)
    app.router.add_post("/api/payments/{id}/anomalies/resolve", views.resolve_anomalies)
    app.router.add_post("/webhooks/stripe", views.stripe_webhook)
    # Where the original's guide points `stripe listen --forward-to`: the same webhook.
    app.router.add_post("/api/webhooks/stripe", views.stripe_webhook)
    app.router.add_put("/internal/payments/booking/{bookingId}/amount", views.change_amount)
