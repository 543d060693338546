"""HTTP caching of catalog's reads: a strong ETag over the body, Cache-Control, and 304 Not
Modified when the client already holds this exact body.

The ETag is computed from the answer, so it changes exactly when the answer does (seat counts
included) and no version bookkeeping is needed; the database work is done either way, the bytes
and the client's parsing are saved. Answers that depend on an admin's token are private.
"""

from __future__ import annotations

import hashlib

from aiohttp import web
from pydantic import BaseModel


def cached_json(request: web.Request, payload: BaseModel, *, max_age: int,
                public: bool = True) -> web.Response:
    body = payload.model_dump_json(by_alias=True).encode()
    etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}" if public else "private, no-cache",
        # The same URL answers an admin differently (includeInactive): caches keep them apart.
        "Vary": "Authorization",
    }
    if if_none_match(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def if_none_match(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: `*` or any listed tag, compared weakly (a `W/` prefix is ignored)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))
