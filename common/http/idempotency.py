"""The `Idempotency-Key` header (DESIGN §2) as every service reads it: its format, what makes two
requests "the same", the header a replayed answer carries, and the error for a key reused with
another body. Where a service keeps its keys and answers is its own business."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from aiohttp import web

from common.errors import AppError, ValidationFailed

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces, as in Stripe's keys


class IdempotencyKeyReused(AppError):
    status, code = 422, "IDEMPOTENCY_KEY_REUSED"
    message = "This Idempotency-Key was already used with another request body"


def idempotency_key(request: web.Request) -> str | None:
    """The request's key, None without one; 400 when it is not 1 to 255 printable characters."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.match(key):
        raise ValidationFailed(details=[{
            "field": HEADER, "message": "must be 1 to 255 printable ASCII characters"}])
    return key


def request_hash(body: dict[str, Any]) -> str:
    """The body as validated, in a canonical form: spacing and key order do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
