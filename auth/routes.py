"""auth's routes: wiring only."""

from aiohttp import web

from auth import views


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/register", views.register)
    app.router.add_post("/api/auth/login", views.login)
    app.router.add_post("/api/auth/refresh", views.refresh)
    app.router.add_post("/api/auth/logout", views.logout)
    app.router.add_get("/api/auth/profile", views.get_profile)
    app.router.add_patch("/api/auth/profile", views.patch_profile)
    app.router.add_get("/api/auth/.well-known/jwks.json", views.jwks)
    app.router.add_get("/internal/users/{id}", views.internal_user)
    app.router.add_get("/api/admin/users", views.list_users)
    app.router.add_get("/api/admin/users/{id}", views.get_user)
    app.router.add_patch("/api/admin/users/{id}", views.patch_user)
