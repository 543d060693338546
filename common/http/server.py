"""The HTTP server every service runs: aiohttp's, except that what aiohttp answers by itself, before
any middleware (a request its parser refuses, an error raised outside the handlers), leaves in
the envelope too, quoting none of the client's bytes and naming no library."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    ContentEncodingError,
    InvalidURLError,
    LineTooLong,
)

from common.errors import AppError
from common.http.bodies import UnsupportedEncoding
from common.http.middleware import SERVER, http_error

log = structlog.get_logger("http")

# A request target may be 8 KiB; a header line keeps aiohttp's limit, two bytes less, so that a
# refusal can tell which one was too long (414 or 431). At most 128 headers (aiohttp's limit).
MAX_TARGET_BYTES = 8192
MAX_HEADER_BYTES = 8190
MAX_HEADERS = 128
AUTO_DECOMPRESS: web.AppKey[bool] = web.AppKey("auto_decompress", bool)
"""False for an app that reads request bodies as they were sent (the gateway decodes them
itself); every service lets aiohttp decode gzip and deflate."""


class MalformedRequest(AppError):
    status, code, message = 400, "MALFORMED_REQUEST", "The request is not valid HTTP/1.1"


class UriTooLong(AppError):
    status, code = 414, "URI_TOO_LONG"
    message = f"The request target is longer than {MAX_TARGET_BYTES} bytes"


class HeadersTooLarge(AppError):
    status, code = 431, "REQUEST_HEADERS_TOO_LARGE"
    message = (f"A header is longer than {MAX_HEADER_BYTES} bytes, or there are more than "
               f"{MAX_HEADERS} headers")


class HandlerTimeout(AppError):
    status, code, message = 504, "GATEWAY_TIMEOUT", "The request took too long"


def parser_error(exc: BaseException | None, handler: web.RequestHandler) -> AppError:
    """The envelope for what aiohttp's parser refused: its messages quote the raw bytes, so each
    kind of refusal gets a fixed message of ours instead."""
    text = exc.message if isinstance(exc, BadHttpMessage) else ""
    if isinstance(exc, ContentEncodingError):  # br or zstd, whose decoder is not installed
        error: AppError = UnsupportedEncoding()
    elif isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        too_long_target = limit == handler.max_line_size != handler.max_field_size
        error = UriTooLong() if too_long_target else HeadersTooLarge()
    elif text.startswith("Too many headers"):
        error = HeadersTooLarge()
    elif isinstance(exc, BadHttpMethod):
        error = MalformedRequest("This port speaks plain HTTP, not TLS"
                                 if text.startswith("Received HTTPS traffic")
                                 else "The request line is not valid HTTP/1.1")
    elif isinstance(exc, InvalidURLError):
        error = MalformedRequest("The request target is not a valid URL")
    else:
        error = MalformedRequest()
    return error


def _envelope(error: AppError) -> web.Response:
    response = web.json_response(error.envelope(), status=error.status, headers={
        **error.headers, "X-Request-ID": str(uuid.uuid4()), "Server": SERVER})
    response.force_close()
    return response


class ServiceRequestHandler(web.RequestHandler):
    """One connection, as aiohttp serves it, with its own answers in the envelope."""

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's answer to a request its parser refused (400), or to an error no middleware
        saw (500, 504). Logged as one line without the client's bytes; the stack only for 500."""
        if status == 500:
            error = AppError()
            log.error("request_failed_outside_handlers", remote=request.remote, exc_info=exc)
        elif status == 504:
            error = HandlerTimeout()
            log.warning("request_timed_out_outside_handlers", remote=request.remote)
        else:
            error = parser_error(exc, self)
            log.info("request_refused_by_parser", status=error.status, error=error.code,
                     remote=request.remote)
        if request.writer.output_size > 0:
            # The head of another answer is already out: the connection is all that can go.
            raise ConnectionError("cannot answer: a response was already sent")
        return _envelope(error)

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        """An HTTP error raised where no middleware sees it (an `Expect` aiohttp does not know
        answers 417 before routing) in the envelope too."""
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            resp = _envelope(http_error(resp))
        return await super().finish_response(request, resp, start_time)

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """A body the client broke or abandoned surfaces again when aiohttp drains it after the
        answer: the client's fault, already answered, not a stack trace in our log."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, web.RequestPayloadError | ConnectionError):
            log.info("request_body_unreadable", error=type(exc).__name__)
            return
        super().log_exception(*args, **kwargs)


class _Server(web.Server):
    def __call__(self) -> web.RequestHandler:
        return ServiceRequestHandler(self, loop=self._loop, **self._kwargs)


class ServiceRunner(web.AppRunner):
    """`web.AppRunner` whose connections are `ServiceRequestHandler`s, with the limits above and
    bodies decoded unless the app says otherwise (`AUTO_DECOMPRESS`)."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", MAX_TARGET_BYTES)
        kwargs.setdefault("max_field_size", MAX_HEADER_BYTES)
        kwargs.setdefault("max_headers", MAX_HEADERS)
        kwargs.setdefault("auto_decompress", app.get(AUTO_DECOMPRESS, True))
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # the app started, as aiohttp starts it
        return _Server(made.request_handler, request_factory=made.request_factory,
                       loop=asyncio.get_running_loop(), **self._kwargs)
