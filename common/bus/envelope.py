"""The event envelope of DESIGN §5: one frozen `Event`, its JSON form and its AMQP properties.

Parsing is strict: anything that is not a well-formed envelope raises `MalformedEventError`, which
the consumer runtime sends straight to the dead-letter queue.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pamqp.commands import Basic

EVENT_VERSION = "1.0"
CONTENT_TYPE = "application/json"
PERSISTENT = 2
_VERSION = re.compile(r"^\d+\.\d+$")
_MAX_SHORTSTR = 255  # AMQP short strings (routing key, correlation_id) are at most 255 bytes


class MalformedEventError(ValueError):
    """The bytes are not a valid event envelope; the message says what is wrong."""


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with millisecond precision and a `Z`: `2026-11-27T10:00:00.123Z`."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ambient_correlation_id() -> str:
    # Inside a request or a handler the id is already bound for logging; reusing it chains the
    # events of one user action under one id.
    bound = structlog.contextvars.get_contextvars()
    for name in ("correlationId", "requestId"):
        value = bound.get(name)
        if isinstance(value, str) and value:
            return value
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Event:
    """One event as it travels on the bus; `event_type` is also its routing key."""

    event_id: str
    event_type: str
    timestamp: str
    correlation_id: str
    data: dict[str, Any] = field(default_factory=dict)
    event_version: str = EVENT_VERSION

    @classmethod
    def new(cls, event_type: str, data: dict[str, Any],
            correlation_id: str | None = None) -> Event:
        """A fresh event; the correlation id defaults to the one bound in the logging context."""
        event = cls(event_id=str(uuid.uuid4()), event_type=event_type, timestamp=utc_timestamp(),
                    correlation_id=correlation_id or _ambient_correlation_id(), data=data)
        _validate(event.to_dict())
        return event

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "eventVersion": self.event_version,
            "timestamp": self.timestamp,
            "correlationId": self.correlation_id,
            "data": self.data,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_dict(cls, raw: object) -> Event:
        raw = _validate(raw)
        return cls(event_id=raw["eventId"], event_type=raw["eventType"],
                   event_version=raw["eventVersion"], timestamp=raw["timestamp"],
                   correlation_id=raw["correlationId"], data=raw["data"])

    @classmethod
    def from_bytes(cls, body: bytes) -> Event:
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedEventError(f"body is not JSON: {exc}") from None
        return cls.from_dict(raw)

    def properties(self, headers: dict[str, Any] | None = None) -> Basic.Properties:
        """AMQP properties of DESIGN §5: message_id, type, persistent JSON, correlation id, time."""
        return Basic.Properties(
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
            message_id=self.event_id,
            message_type=self.event_type,
            correlation_id=self.correlation_id,
            timestamp=_parse_timestamp(self.timestamp),
            headers=headers or {},
        )


_STRING_FIELDS = ("eventId", "eventType", "eventVersion", "timestamp", "correlationId")


def _validate(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MalformedEventError(f"envelope is a {type(raw).__name__}, not an object")
    missing = [name for name in (*_STRING_FIELDS, "data") if name not in raw]
    if missing:
        raise MalformedEventError(f"missing field(s): {', '.join(missing)}")
    for name in _STRING_FIELDS:
        if not isinstance(raw[name], str) or not raw[name]:
            raise MalformedEventError(f"{name} must be a non-empty string")
    if not isinstance(raw["data"], dict):
        raise MalformedEventError("data must be an object")
    try:
        uuid.UUID(raw["eventId"])
    except ValueError:
        raise MalformedEventError("eventId is not a UUID") from None
    if not _VERSION.match(raw["eventVersion"]):
        raise MalformedEventError("eventVersion must look like 1.0")
    for name in ("eventType", "correlationId"):
        if len(raw[name].encode()) > _MAX_SHORTSTR:
            raise MalformedEventError(f"{name} is longer than {_MAX_SHORTSTR} bytes")
    _parse_timestamp(raw["timestamp"])
    return raw


def _parse_timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedEventError(f"timestamp is not ISO-8601: {value!r}") from None
    if moment.tzinfo is None:
        raise MalformedEventError("timestamp has no time zone")
    return moment.astimezone(UTC)
