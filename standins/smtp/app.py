"""The sink as a process: SMTP on `SMTP_STANDIN_SMTP_PORT`, and an HTTP API to read what arrived.

    GET    /messages            newest last; ?to=<address> filters on the envelope recipient
    GET    /messages/{id}       one message (headers, text and HTML parts)
    GET    /messages/{id}/raw   the message as received (message/rfc822)
    DELETE /messages            forget them all (the .eml files stay)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from common.errors import NotFound
from common.http import json_response, service_app
from common.http.health import HEALTH
from standins.smtp.config import Config
from standins.smtp.sink import Received, SmtpSink

SINK: web.AppKey[SmtpSink] = web.AppKey("smtp_sink", SmtpSink)
ROOT = Path(__file__).resolve().parents[2]


class MessageNotFound(NotFound):
    code, message = "MESSAGE_NOT_FOUND", "No message with this id"


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="SMTP sink",
                      description="A local SMTP server that keeps what it receives.")
    directory = None
    if config.directory:
        directory = Path(config.directory)
        directory = directory if directory.is_absolute() else ROOT / directory
    app[SINK] = SmtpSink(config.host, config.smtp_port, directory=directory,
                         refuse=config.refuse, defer=config.defer, keep=config.keep,
                         smtputf8=config.smtputf8)
    app.cleanup_ctx.append(_smtp_ctx)
    app[HEALTH].add("smtp", _listening(app[SINK]))
    app.router.add_get("/messages", list_messages)
    app.router.add_delete("/messages", clear_messages)
    app.router.add_get("/messages/{id}", get_message)
    app.router.add_get("/messages/{id}/raw", get_raw)
    return app


def _listening(sink: SmtpSink) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        if not sink.running:
            raise RuntimeError("not listening")

    return check


async def _smtp_ctx(app: web.Application) -> AsyncIterator[None]:
    sink = app[SINK]
    await sink.start()
    yield
    await sink.stop()


async def list_messages(request: web.Request) -> web.Response:
    sink = request.app[SINK]
    address = request.query.get("to")
    found = sink.to(address) if address else sink.messages
    return json_response({"items": [m.to_json() for m in found], "total": len(found)})


async def clear_messages(request: web.Request) -> web.Response:
    request.app[SINK].clear()
    return web.Response(status=204)


def _find(request: web.Request) -> Received:
    wanted = request.match_info["id"]
    for message in request.app[SINK].messages:
        if message.id == wanted:
            return message
    raise MessageNotFound()


async def get_message(request: web.Request) -> web.Response:
    return json_response(_find(request).to_json())


async def get_raw(request: web.Request) -> web.Response:
    return web.Response(body=_find(request).raw, content_type="message/rfc822")
