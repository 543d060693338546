"""What a request body may be sent as (identity, gzip or deflate, the encodings every service and
the gateway decode), and the errors of a body that cannot be read: always the client's fault."""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError

from common.errors import AppError, BadRequest

SUPPORTED_ENCODINGS = frozenset({"gzip", "deflate"})
ACCEPT_ENCODING = "gzip, deflate"


class UnsupportedEncoding(AppError):
    status, code = 415, "UNSUPPORTED_CONTENT_ENCODING"
    message = "Send the body uncompressed or as gzip or deflate (one Content-Encoding)"

    def __init__(self) -> None:
        # RFC 7694: a 415 for a content coding names the ones the server does take.
        super().__init__(headers={"Accept-Encoding": ACCEPT_ENCODING})


class MalformedBody(BadRequest):
    code, message = "MALFORMED_BODY", "The request body could not be read"


class UndecodableBody(MalformedBody):
    message = "The request body is not valid data of its Content-Encoding"


class ClientGone(AppError):
    """The client went away mid-request: nobody reads the answer, and nothing failed on our side.
    499 as nginx logs it."""

    status, code, message = 499, "CLIENT_CLOSED_REQUEST", "The client closed the connection"


def content_coding(request: web.Request) -> str | None:
    """The body's content coding (`gzip` or `deflate`), None for a plain body; anything else,
    several codings included, is `415`."""
    codings = [c.strip().lower() for value in request.headers.getall("Content-Encoding", [])
               for c in value.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in SUPPORTED_ENCODINGS:
        raise UnsupportedEncoding()
    return codings[0]


def unreadable(exc: web.RequestPayloadError) -> MalformedBody:
    """aiohttp's error for a body it could not read (a broken compressed stream, bad chunking),
    as the client's 400; never its text, which may quote the client's bytes."""
    cause = exc.__cause__
    if isinstance(cause, ContentEncodingError):
        return UndecodableBody()
    return MalformedBody()
