"""A small service on the common runtime: the HTTP tests serve it in-process, and the shutdown and
Logstash tests run it as a real process with `python -m common.tests.demo_service`."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Annotated, ClassVar

import structlog
from aiohttp import web
from pydantic import Field, StringConstraints

from common.auth import Identity, require_owner
from common.config import BaseConfig
from common.errors import Conflict, NotFound
from common.http import Schema, endpoint, json_response, run_service, service_app, verifier_ctx

log = structlog.get_logger("demo")


class Config(BaseConfig):
    service: ClassVar[str] = "demo"
    env_prefix: ClassVar[str] = "DEMO_"

    release_file: str = Field("", description="`/slow` answers once this file exists")


class Contact(Schema):
    email: str
    phone: str | None = None


class WidgetIn(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    unit_price: Annotated[int, Field(ge=0, description="Minor units")]
    tags: list[str] = []
    contact: Contact | None = None
    featured: bool = False
    weight: float | None = None


class WidgetOut(Schema):
    id: str
    name: str
    unit_price: int
    tags: list[str]


class WidgetQuery(Schema):
    page: Annotated[int, Field(ge=1)] = 1
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    tag: list[str] = []
    q: str | None = None


class WidgetPage(Schema):
    items: list[WidgetOut]
    page: int
    limit: int
    total: int
    tags: list[str]


class WhoAmI(Schema):
    user_id: str
    role: str


class WidgetNotFound(NotFound):
    code, message = "WIDGET_NOT_FOUND", "No such widget"


class WidgetLocked(Conflict):
    code, message = "WIDGET_LOCKED", "The widget is locked"


@endpoint(summary="Create a widget", body=WidgetIn, response=WidgetOut, status=201)
async def create_widget(request: web.Request, body: WidgetIn) -> web.Response:
    log.info("widget_created", name=body.name)
    return json_response(WidgetOut(id=str(uuid.uuid4()), name=body.name,
                                   unit_price=body.unit_price, tags=body.tags), status=201)


class ArchiveIn(Schema):
    reason: str | None = None


@endpoint(summary="Archive a widget (a reason is optional, and so is the body)", body=ArchiveIn)
async def archive_widget(request: web.Request, body: ArchiveIn) -> web.Response:
    return web.json_response({"archived": request.match_info["id"], "reason": body.reason})


@endpoint(summary="Create several widgets at once", body=WidgetIn, status=202)
async def bulk_widgets(request: web.Request, body: WidgetIn) -> web.Response:
    return json_response({"accepted": 1}, status=202)


@endpoint(summary="List widgets", query=WidgetQuery, response=WidgetPage)
async def list_widgets(request: web.Request, query: WidgetQuery) -> web.Response:
    return json_response(WidgetPage(items=[], page=query.page, limit=query.limit, total=0,
                                    tags=query.tag))


@endpoint(summary="One widget", response=WidgetOut, errors=(404, 409))
async def get_widget(request: web.Request) -> web.Response:
    widget_id = request.match_info["id"]
    if widget_id == "locked":
        raise WidgetLocked(details={"widgetId": widget_id})
    if widget_id != "w1":
        raise WidgetNotFound()
    return json_response(WidgetOut(id="w1", name="Anvil", unit_price=999, tags=[]))


@endpoint(summary="Who the caller is", access="user", response=WhoAmI)
async def whoami(request: web.Request, identity: Identity) -> web.Response:
    log.info("whoami_answered")
    return json_response(WhoAmI(user_id=identity.user_id, role=identity.role))


@endpoint(summary="A user's widgets (owner or admin)", access="user", response=WidgetPage)
async def user_widgets(request: web.Request, identity: Identity) -> web.Response:
    require_owner(identity, request.match_info["userId"])
    return json_response(WidgetPage(items=[], page=1, limit=20, total=0, tags=[]))


@endpoint(summary="Administrators only", access="admin", errors=(403,))
async def admin_report(request: web.Request, identity: Identity) -> web.Response:
    return json_response({"reportFor": identity.user_id})


@endpoint(summary="Managers and administrators", access="manager", errors=(403,))
async def manager_report(request: web.Request, identity: Identity) -> web.Response:
    return json_response({"reportFor": identity.user_id})


@endpoint(summary="For other services", access="service", tags=("internal",))
async def internal_ping(request: web.Request) -> web.Response:
    return json_response({"pong": True})


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("connection to postgresql://admin:hunter2@db failed")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/api/widgets")


async def slow(request: web.Request) -> web.Response:
    """Answers once the release file exists: the test decides when the request ends."""
    release = Path(request.app[RELEASE])
    log.info("slow_started")
    deadline = time.monotonic() + 60
    released = False
    # The signal comes from the test process, through a file: there is no event to await.
    while not released and time.monotonic() < deadline:
        released = await asyncio.to_thread(release.exists)
        if not released:
            await asyncio.sleep(0.01)
    return json_response({"released": released})


RELEASE: web.AppKey[str] = web.AppKey("release_file", str)


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="demo", description="The common runtime under test.")
    app.cleanup_ctx.append(verifier_ctx(config))
    app[RELEASE] = config.release_file
    app.router.add_post("/api/widgets", create_widget)
    app.router.add_get("/api/widgets", list_widgets)
    app.router.add_post("/api/widgets/bulk", bulk_widgets)  # before the template it shadows
    app.router.add_get("/api/widgets/{id}", get_widget)
    app.router.add_post("/api/widgets/{id}/archive", archive_widget)
    app.router.add_get("/api/me", whoami)
    app.router.add_get("/api/users/{userId}/widgets", user_widgets)
    app.router.add_get("/api/admin/report", admin_report)
    app.router.add_get("/api/manager/report", manager_report)
    app.router.add_get("/internal/ping", internal_ping)
    app.router.add_get("/api/boom", boom)
    app.router.add_get("/api/redirect", redirect)
    app.router.add_get("/api/slow", slow)
    return app


if __name__ == "__main__":
    run_service(Config, create_app)
