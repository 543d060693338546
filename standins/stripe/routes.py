"""The stand-in's routes: wiring only. Paths and methods are Stripe's."""

from aiohttp import web

from standins.stripe import views


def setup_routes(app: web.Application) -> None:
    add = app.router.add_route
    add("POST", "/v1/payment_intents", views.create_payment_intent)
    add("GET", "/v1/payment_intents", views.list_payment_intents)
    add("GET", "/v1/payment_intents/{id}", views.retrieve_payment_intent)
    add("POST", "/v1/payment_intents/{id}", views.update_payment_intent)
    add("POST", "/v1/payment_intents/{id}/confirm", views.confirm_payment_intent)
    add("POST", "/v1/payment_intents/{id}/cancel", views.cancel_payment_intent)
    add("GET", "/v1/charges", views.list_charges)
    add("GET", "/v1/charges/{id}", views.retrieve_charge)
    add("GET", "/v1/payment_methods/{id}", views.retrieve_payment_method)
    add("POST", "/v1/refunds", views.create_refund)
    add("GET", "/v1/refunds", views.list_refunds)
    add("GET", "/v1/refunds/{id}", views.retrieve_refund)
    add("POST", "/v1/refunds/{id}", views.update_refund)
    add("GET", "/v1/events", views.list_events)
    add("GET", "/v1/events/{id}", views.retrieve_event)
    add("POST", "/v1/webhook_endpoints", views.create_webhook_endpoint)
    add("GET", "/v1/webhook_endpoints", views.list_webhook_endpoints)
    add("GET", "/v1/webhook_endpoints/{id}", views.retrieve_webhook_endpoint)
    add("POST", "/v1/webhook_endpoints/{id}", views.update_webhook_endpoint)
    add("DELETE", "/v1/webhook_endpoints/{id}", views.delete_webhook_endpoint)
