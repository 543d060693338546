"""`POST /api/payments/create-intent` under an `Idempotency-Key`: a key comes back
only with the body it was first used with (the header itself is `common.http.idempotency`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.http.idempotency import IdempotencyKeyReused


def check_same_body(known: Mapping[str, Any], body_hash: str) -> None:
    """422 when the stored request under this key had another body."""
    if known["request_hash"] != body_hash:
        raise IdempotencyKeyReused()
