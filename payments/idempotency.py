"""The `Idempotency-Key` header of `POST /api/payments/create-intent` (DESIGN §2): its format,
and what makes two requests "the same"."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
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


def check_same_body(known: Mapping[str, Any], body_hash: str) -> None:
    if known["request_hash"] != body_hash:
        raise IdempotencyKeyReused()
