"""web's routes: wiring only."""

from aiohttp import web

from web.assets import static_view
from web.covers import cover_view
from web.views import account, bookings, cart, changes, checkout, operator, payments, tours, users


def setup_routes(app: web.Application) -> None:
    _traveller_routes(app)
    _operator_routes(app)


def _traveller_routes(app: web.Application) -> None:
    app.router.add_get("/static/covers/{slug}.svg", cover_view)
    app.router.add_get("/static/{name:.+}", static_view)
    app.router.add_get("/", tours.home)
    app.router.add_get("/tours", tours.tour_list)
    app.router.add_get("/tours/{key}", tours.tour_detail)
    app.router.add_get("/login", account.login_page)
    app.router.add_post("/login", account.login)
    app.router.add_get("/register", account.register_page)
    app.router.add_post("/register", account.register)
    app.router.add_post("/logout", account.logout)
    app.router.add_get("/profile", account.profile_page)
    app.router.add_post("/profile", account.profile)
    app.router.add_get("/notifications", account.notifications)
    app.router.add_post("/language", account.choose_language)
    app.router.add_post("/currency", account.choose_currency)
    app.router.add_get("/book", bookings.booking_form)
    app.router.add_post("/book", bookings.book)
    app.router.add_get("/bookings", bookings.my_bookings)
    app.router.add_get("/bookings/{id}", bookings.booking_page)
    app.router.add_get("/bookings/{id}/state", bookings.booking_state)
    app.router.add_post("/bookings/{id}/cancel", bookings.cancel)
    app.router.add_get("/bookings/{id}/change", changes.change_form)
    app.router.add_post("/bookings/{id}/change", changes.change)
    app.router.add_get("/checkout", checkout.checkout_page)
    app.router.add_post("/checkout", checkout.pay)
    app.router.add_get("/payment/success", checkout.payment_success)
    app.router.add_get("/cart", cart.cart_page)
    app.router.add_post("/cart", cart.add)
    app.router.add_post("/cart/remove", cart.remove)


def _operator_routes(app: web.Application) -> None:
    app.router.add_get("/operator", operator.home)
    app.router.add_get("/operator/status", operator.status)
    app.router.add_post("/operator/breakers/{service}/reset", operator.reset_breaker)
    app.router.add_get("/operator/tours", operator.tours)
    app.router.add_get("/operator/tours/new", operator.tour_form)
    app.router.add_post("/operator/tours/new", operator.save_tour)
    app.router.add_get("/operator/tours/{id}", operator.tour_form)
    app.router.add_post("/operator/tours/{id}", operator.save_tour)
    app.router.add_post("/operator/tours/{id}/active", operator.tour_active)
    app.router.add_post("/operator/tours/{id}/departures", operator.add_departure)
    app.router.add_post("/operator/tours/{id}/departures/{departure}", operator.change_departure)
    app.router.add_get("/operator/bookings", operator.bookings)
    app.router.add_get("/operator/bookings/{id}", operator.booking)
    app.router.add_post("/operator/bookings/{id}/status", operator.booking_status)
    app.router.add_get("/operator/payments", payments.payments)
    app.router.add_post("/operator/payments/{id}/refund", operator.refund)
    app.router.add_post("/operator/payments/{id}/resolve", payments.resolve)
    app.router.add_get("/operator/users", users.users)
    app.router.add_get("/operator/users/{id}", users.user)
    app.router.add_post("/operator/users/{id}", users.change_user)
    app.router.add_get("/operator/notifications", operator.notifications)
    app.router.add_get("/operator/{kind:categories|destinations}", operator.reference)
    app.router.add_post("/operator/{kind:categories|destinations}", operator.save_reference)
    app.router.add_post("/operator/{kind:categories|destinations}/{id}", operator.save_reference)
