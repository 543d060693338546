"""catalog's routes: wiring only. Paths are the public ones (the gateway passes them unchanged),
plus `/internal` for booking, which the gateway never routes."""

from aiohttp import web

from catalog.views import holds, reference, tours


def setup_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/api/tours", tours.search_tours)
    router.add_post("/api/tours", tours.create_tour)
    router.add_get("/api/tours/{tour}", tours.get_tour)
    router.add_patch("/api/tours/{tour}", tours.update_tour)
    router.add_delete("/api/tours/{tour}", tours.delete_tour)
    router.add_post("/api/tours/{tour}/departures", tours.create_departure)
    router.add_patch("/api/tours/{tour}/departures/{departure}", tours.update_departure)
    router.add_delete("/api/tours/{tour}/departures/{departure}", tours.delete_departure)

    router.add_get("/api/categories", reference.list_categories)
    router.add_post("/api/categories", reference.create_category)
    router.add_get("/api/categories/{category}", reference.get_category)
    router.add_patch("/api/categories/{category}", reference.update_category)
    router.add_delete("/api/categories/{category}", reference.delete_category)
    router.add_get("/api/destinations", reference.list_destinations)
    router.add_post("/api/destinations", reference.create_destination)
    router.add_get("/api/destinations/{destination}", reference.get_destination)
    router.add_patch("/api/destinations/{destination}", reference.update_destination)
    router.add_delete("/api/destinations/{destination}", reference.delete_destination)

    router.add_post("/internal/holds", holds.create_hold)
    router.add_get("/internal/holds/{booking}", holds.get_hold)
    router.add_post("/internal/holds/{booking}/resize", holds.resize_hold)
    router.add_post("/internal/holds/{booking}/confirm", holds.confirm_hold)
    router.add_post("/internal/holds/{booking}/release", holds.release_hold)
